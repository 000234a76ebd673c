"""Bottleneck ResNets (torchvision v1.5: the stride sits in the 3x3 position) with the
3x3 convolution either plain or replaced by ACmix, as in the official ACmix_ResNet.

Names mirror the official modules (conv1, bn1, layer1.0.conv2.rate1, downsample.0, fc),
so official weights map one to one (see mindspore_acmix.convert).
"""
from mindspore import nn, ops
from mindspore.common.initializer import HeNormal, One, Zero, initializer

from ..layers import ACmix
from ..layers.conv import SameConv2d
from ..layers.transformer import DropPath, linspace
from ..registry import register_model
from .base import ACMIX_TABLE, Backbone, feature, model_cfg, paper


class StemMaxPool(nn.Cell):
    """torch's MaxPool2d(3, 2, padding=1) as a -inf border (concatenations) and an unpadded
    max-pool: same numbers forward and backward, but MindSpore lowers a padded nn.MaxPool2d
    to MaxPool3DWithArgmax, which its ONNX exporter cannot translate."""

    def __init__(self, kernel_size=3, stride=2, padding=1):
        super().__init__()
        self.padding = padding
        self.pool = nn.MaxPool2d(kernel_size, stride, pad_mode="valid")

    def construct(self, x):
        p = self.padding
        rows = ops.zeros_like(x[:, :, :p, :]) + float("-inf")
        x = ops.concat((rows, x, rows), 2)
        cols = ops.zeros_like(x[:, :, :, :p]) + float("-inf")
        return self.pool(ops.concat((cols, x, cols), 3))


def conv1x1(in_planes, out_planes, stride=1):
    return SameConv2d(in_planes, out_planes, 1, stride=stride)


def conv3x3(in_planes, out_planes, stride=1, dilation=1):
    return SameConv2d(in_planes, out_planes, 3, stride=stride, dilation=dilation)


class Bottleneck(nn.Cell):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, dilation=1, acmix=None,
                 drop_path=0.0):
        """acmix: None for a plain 3x3 convolution, else ACmix keyword arguments
        (kernel_att, head, kernel_conv, dep_conv_init, attn_impl, conv_impl); drop_path:
        stochastic depth of the residual branch (timm's ResNet)."""
        super().__init__()
        width = planes
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        if acmix is None:
            self.conv2 = conv3x3(width, width, stride, dilation)
        else:
            self.conv2 = ACmix(width, width, stride=stride, dilation=dilation, **acmix)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample
        self.drop_path = DropPath(drop_path)
        self.stride = stride

    def construct(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.drop_path(self.bn3(self.conv3(out)))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class ResNet(Backbone):
    """Bottleneck ResNet; `acmix` (ACmix keyword arguments) swaps every 3x3 for ACmix.

    `width` is the first stage's planes (64 in the ImageNet models; stages double it), and
    `small_stem` replaces the 7x7/2 convolution and max-pool by one 3x3/1 convolution, for
    small inputs such as 32x32, where the ImageNet stem would leave stage 4 at 1x1 (its
    stages then sit at reductions 1/2/4/8 instead of 4/8/16/32: feature_info says so).
    `drop_rate` is dropout before `fc`, `drop_path_rate` stochastic depth on the residual
    branches rising linearly to that rate over the blocks (timm's ResNet); both 0 by default.

    Initialisation follows the official code (Kaiming normal, fan_out, on every
    convolution; BatchNorm 1 and 0) except that ACmix's dep_conv keeps the shift kernels
    and rates stay 0.5, as the paper intends; `dep_conv_init="kaiming"` in `acmix`
    reproduces the official re-initialisation of dep_conv.
    """

    classifier_name = "fc"

    def __init__(self, layers, num_classes=1000, acmix=None, zero_init_residual=False, width=64,
                 small_stem=False, in_chans=3, drop_rate=0.0, drop_path_rate=0.0):
        super().__init__()
        if len(layers) != 4 or any(not isinstance(n, int) or n < 1 for n in layers):
            raise ValueError(f"layers must be four positive block counts, got {layers!r}")
        for name, value in (("width", width), ("in_chans", in_chans)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(drop_path_rate, bool) or not isinstance(drop_path_rate, (int, float)) \
                or not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be a probability in [0, 1), got "
                             f"{drop_path_rate!r}")
        self.acmix = dict(acmix) if acmix is not None else None
        self.inplanes = width
        if small_stem:
            self.conv1 = conv3x3(in_chans, width)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = SameConv2d(in_chans, width, 7, stride=2)
            self.maxpool = StemMaxPool(3, 2, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        dpr = iter(linspace(0.0, drop_path_rate, sum(layers)))
        self.layer1 = self._make_layer(width, layers[0], dpr)
        self.layer2 = self._make_layer(2 * width, layers[1], dpr, stride=2)
        self.layer3 = self._make_layer(4 * width, layers[2], dpr, stride=2)
        self.layer4 = self._make_layer(8 * width, layers[3], dpr, stride=2)
        stem = 1 if small_stem else 4
        self.feature_info = [feature(width * 2 ** i * Bottleneck.expansion, stem * 2 ** i,
                                     f"layer{i + 1}") for i in range(4)]
        self.min_input_size = self._smallest_input(stem)
        self._init_head(8 * width * Bottleneck.expansion, num_classes, drop_rate)
        self._init_weights(zero_init_residual)

    def _make_layer(self, planes, blocks, drop_paths, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.SequentialCell([conv1x1(self.inplanes, planes * Bottleneck.expansion,
                                                    stride),
                                            nn.BatchNorm2d(planes * Bottleneck.expansion)])
        cells = [Bottleneck(self.inplanes, planes, stride, downsample, acmix=self.acmix,
                            drop_path=next(drop_paths))]
        self.inplanes = planes * Bottleneck.expansion
        cells += [Bottleneck(self.inplanes, planes, acmix=self.acmix, drop_path=next(drop_paths))
                  for _ in range(1, blocks)]
        return nn.SequentialCell(cells)

    def _smallest_input(self, reduction):
        """The smallest H (and W) every ACmix layer can take: every stride rounds up here
        (torch-style padded convolutions and pools), so a layer fed at reduction r sees
        ceil(H / r) pixels, which its reflection padding p needs to exceed (H >= r * p + 1).
        Plain convolutions take any size."""
        smallest = 1
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in layer:
                if isinstance(block.conv2, ACmix):
                    smallest = max(smallest, reduction * block.conv2.padding_att + 1)
                reduction *= block.stride
        return smallest

    def _init_weights(self, zero_init_residual):
        keep_shift = self.acmix is not None and self.acmix.get("dep_conv_init", "shift") == "shift"
        for name, cell in self.cells_and_names():
            if isinstance(cell, nn.Conv2d):
                if keep_shift and name.endswith("dep_conv"):
                    continue
                cell.weight.set_data(initializer(HeNormal(mode="fan_out", nonlinearity="relu"),
                                                 cell.weight.shape, cell.weight.dtype))
            elif isinstance(cell, nn.BatchNorm2d):
                cell.gamma.set_data(initializer(One(), cell.gamma.shape, cell.gamma.dtype))
                cell.beta.set_data(initializer(Zero(), cell.beta.shape, cell.beta.dtype))
        if zero_init_residual:
            for _, cell in self.cells_and_names():
                if isinstance(cell, Bottleneck):
                    cell.bn3.gamma.set_data(initializer(Zero(), cell.bn3.gamma.shape))

    def forward_features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def pool_features(self, x):
        # mean over H, W rather than AdaptiveAvgPool2d, which ONNX export lacks
        return x.mean(axis=(2, 3))

    def forward_intermediates(self, x):
        x1 = self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))
        x2 = self.layer2(x1)
        x3 = self.layer3(x2)
        return self.select_features((x1, x2, x3, self.layer4(x3)))


class ACmixResNet(ResNet):
    """ResNet whose every bottleneck 3x3 is ACmix(width, width, k_att, head, k_conv, stride)."""

    def __init__(self, layers, k_att=7, head=4, k_conv=3, num_classes=1000,
                 dep_conv_init="shift", attn_impl="auto", conv_impl="auto", **resnet_kwargs):
        super().__init__(layers, num_classes,
                         acmix=dict(kernel_att=k_att, head=head, kernel_conv=k_conv,
                                    dep_conv_init=dep_conv_init, attn_impl=attn_impl,
                                    conv_impl=conv_impl),
                         **resnet_kwargs)


DEPTHS = {26: [1, 2, 4, 1], 38: [2, 3, 5, 2], 50: [3, 4, 6, 3]}
ACMIX_SOURCE = "ACmix-ResNet (Pan et al., CVPR 2022), LeapLabTHU/ACmix ResNet/"
SAN_SOURCE = "SAN's bottleneck ResNet baseline (Zhao et al., CVPR 2020), hszhao/SAN"
SAN_TABLE = "SAN README"
# the digits data of the default run, on timm's 0-1 scale (configs/digits: 40 / 75 of 255)
DIGITS_MEAN, DIGITS_STD = (40 / 255,) * 3, (75 / 255,) * 3
TINY_CFG = dict(input_size=(3, 32, 32), crop_pct=1.0, mean=DIGITS_MEAN, std=DIGITS_STD)


@register_model(default_cfg=model_cfg(ACMIX_SOURCE, paper=paper("10.6M", "2.3G", 76.1,
                                                                 ACMIX_TABLE)))
def acmix_resnet26(num_classes=1000, **kwargs):
    return ACmixResNet(DEPTHS[26], num_classes=num_classes, **kwargs)


@register_model(default_cfg=model_cfg(ACMIX_SOURCE, paper=paper("14.6M", "2.9G", 77.4,
                                                                 ACMIX_TABLE)))
def acmix_resnet38(num_classes=1000, **kwargs):
    return ACmixResNet(DEPTHS[38], num_classes=num_classes, **kwargs)


@register_model(default_cfg=model_cfg(ACMIX_SOURCE, paper=paper("18.6M", "3.6G", 77.8,
                                                                 ACMIX_TABLE)))
def acmix_resnet50(num_classes=1000, **kwargs):
    return ACmixResNet(DEPTHS[50], num_classes=num_classes, **kwargs)


@register_model(default_cfg=model_cfg(SAN_SOURCE, paper=paper("13.7M", "2.4G", 73.6, SAN_TABLE)))
def resnet26(num_classes=1000, **kwargs):
    return ResNet(DEPTHS[26], num_classes=num_classes, **kwargs)


@register_model(default_cfg=model_cfg(SAN_SOURCE, paper=paper("19.6M", "3.2G", 76.0, SAN_TABLE)))
def resnet38(num_classes=1000, **kwargs):
    return ResNet(DEPTHS[38], num_classes=num_classes, **kwargs)


@register_model(default_cfg=model_cfg(SAN_SOURCE, paper=paper("25.6M", "4.1G", 76.9, SAN_TABLE)))
def resnet50(num_classes=1000, **kwargs):
    return ResNet(DEPTHS[50], num_classes=num_classes, **kwargs)


@register_model(default_cfg=model_cfg("this project: ACmix-ResNet for 32x32 inputs", **TINY_CFG))
def acmix_resnet_tiny(num_classes=1000, **kwargs):
    """For 32x32 inputs (the built-in digits runs): one block per stage, width 16, 3x3 stem
    (small_stem=False: ResNet's stride-4 stem, for larger inputs)."""
    kwargs.setdefault("small_stem", True)
    return ACmixResNet([1, 1, 1, 1], num_classes=num_classes, width=16, **kwargs)


@register_model(default_cfg=model_cfg("this project: the plain twin of acmix_resnet_tiny",
                                      **TINY_CFG))
def resnet_tiny(num_classes=1000, **kwargs):
    """The plain-convolution twin of acmix_resnet_tiny."""
    kwargs.setdefault("small_stem", True)
    return ResNet([1, 1, 1, 1], num_classes=num_classes, width=16, **kwargs)
