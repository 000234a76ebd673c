"""A PyTorch statement of mmsegmentation's FPN neck, FPNHead, UPerHead and FCNHead (as PVT's
Semantic FPN and Swin's UperNet recipes configure them), used only by the tests.

Written from mmseg's structure (ConvModule = conv [+ BN + ReLU], module names as mmseg's so
state-dict keys are the official ones); the upsamplings are mmseg's: nearest in the FPN's
top-down path, Upsample(scale_factor=2, bilinear) in FPNHead's scale heads, bilinear with
align_corners=False everywhere else."""
import math

import torch
import torch.nn as tnn
import torch.nn.functional as F


def resize(x, size):
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


class ConvModule(tnn.Module):
    def __init__(self, cin, cout, k, norm=True):
        super().__init__()
        self.conv = tnn.Conv2d(cin, cout, k, padding=k // 2, bias=not norm)
        self.norm = norm
        if norm:
            self.bn = tnn.BatchNorm2d(cout)

    def forward(self, x):
        x = self.conv(x)
        return F.relu(self.bn(x)) if self.norm else x


class FPN(tnn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.lateral_convs = tnn.ModuleList(ConvModule(c, out_channels, 1, norm=False)
                                            for c in in_channels)
        self.fpn_convs = tnn.ModuleList(ConvModule(out_channels, out_channels, 3, norm=False)
                                        for _ in in_channels)

    def forward(self, inputs):
        lat = [conv(x) for conv, x in zip(self.lateral_convs, inputs)]
        for i in range(len(lat) - 1, 0, -1):
            lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[2:],
                                                    mode="nearest")
        return [conv(x) for conv, x in zip(self.fpn_convs, lat)]


class Head(tnn.Module):
    def __init__(self, channels, num_classes):
        super().__init__()
        self.conv_seg = tnn.Conv2d(channels, num_classes, 1)

    def forward(self, inputs):
        return self.conv_seg(self.fuse(inputs))  # dropout: identity in eval


class FPNHead(Head):
    def __init__(self, in_channels, strides, channels, num_classes):
        super().__init__(channels, num_classes)
        self.scale_heads = tnn.ModuleList()
        for i, stride in enumerate(strides):
            length = max(1, int(math.log2(stride) - math.log2(strides[0])))
            layers = []
            for k in range(length):
                layers.append(ConvModule(in_channels[i] if k == 0 else channels, channels, 3))
                if stride != strides[0]:
                    layers.append(tnn.Upsample(scale_factor=2, mode="bilinear",
                                               align_corners=False))
            self.scale_heads.append(tnn.Sequential(*layers))

    def fuse(self, x):
        out = self.scale_heads[0](x[0])
        for i in range(1, len(x)):
            out = out + resize(self.scale_heads[i](x[i]), out.shape[2:])
        return out


class UPerHead(Head):
    def __init__(self, in_channels, channels, num_classes, pool_scales=(1, 2, 3, 6)):
        super().__init__(channels, num_classes)
        self.psp_modules = tnn.ModuleList(
            tnn.Sequential(tnn.AdaptiveAvgPool2d(s), ConvModule(in_channels[-1], channels, 1))
            for s in pool_scales)
        self.bottleneck = ConvModule(in_channels[-1] + len(pool_scales) * channels, channels, 3)
        self.lateral_convs = tnn.ModuleList(ConvModule(c, channels, 1) for c in in_channels[:-1])
        self.fpn_convs = tnn.ModuleList(ConvModule(channels, channels, 3)
                                        for _ in in_channels[:-1])
        self.fpn_bottleneck = ConvModule(len(in_channels) * channels, channels, 3)

    def fuse(self, x):
        top = x[-1]
        psp = [top] + [resize(m(top), top.shape[2:]) for m in self.psp_modules]
        lat = [conv(x[i]) for i, conv in enumerate(self.lateral_convs)]
        lat.append(self.bottleneck(torch.cat(psp, 1)))
        for i in range(len(lat) - 1, 0, -1):
            lat[i - 1] = lat[i - 1] + resize(lat[i], lat[i - 1].shape[2:])
        outs = [self.fpn_convs[i](lat[i]) for i in range(len(lat) - 1)] + [lat[-1]]
        outs = [outs[0]] + [resize(o, outs[0].shape[2:]) for o in outs[1:]]
        return self.fpn_bottleneck(torch.cat(outs, 1))


class FCNHead(Head):
    def __init__(self, in_channels, channels, num_classes, in_index=2):
        super().__init__(channels, num_classes)
        self.in_index = in_index
        self.convs = tnn.Sequential(ConvModule(in_channels[in_index], channels, 3))

    def fuse(self, x):
        return self.convs(x[self.in_index])
