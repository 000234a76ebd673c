"""Decode heads of mmsegmentation: FPNHead (Semantic FPN), UPerHead (UperNet) and FCNHead
(UperNet's auxiliary head), on one base that owns what every head shares: the input
selection (`in_index`), dropout and the 1x1 classifier (`cls_seg`). A head writes only
its fusion (`fuse`). Bilinear resizing is align_corners=False throughout, as in the
recipes; convolutions followed by BatchNorm have no bias (mmcv's ConvModule). Every
convolution is a SameConv2d: on CPU it computes itself as matmuls, several times faster
than MindSpore's CPU Conv2D (layers/conv.py); export switches it to the native operator.
Parameter names are mmseg's (ConvModule's `conv` / `bn`), so its checkpoints map one to one."""
import math

from mindspore import nn, ops
from mindspore.common.initializer import HeNormal, Normal, One, Zero, initializer

from ..layers.conv import SameConv2d
from ..layers.stochastic import Dropout2d


def resize(x, size):
    """Bilinear resize of an NCHW map to `size` (H, W), align_corners=False (mmseg's resize)."""
    return ops.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


class ConvModule(nn.Cell):
    """mmcv's ConvModule with norm BN and act ReLU: conv (no bias), BatchNorm, ReLU; conv
    initialised Kaiming normal (fan_out, relu), BN weight 1 and bias 0, as mmcv does."""

    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv = SameConv2d(in_channels, out_channels, kernel_size)
        self.conv.weight.set_data(initializer(HeNormal(mode="fan_out", nonlinearity="relu"),
                                              self.conv.weight.shape, self.conv.weight.dtype))
        self.bn = nn.BatchNorm2d(out_channels, momentum=0.9, eps=1e-5,
                                 gamma_init=One(), beta_init=Zero())
        self.relu = nn.ReLU()

    def construct(self, x):
        return self.relu(self.bn(self.conv(x)))


class DecodeHead(nn.Cell):
    """Base of every decode head: selects `in_index` from the input list, fuses them
    (`fuse`, written by each head) into `channels` maps, then dropout (2-D, p=0.1) and the
    1x1 classifier `conv_seg` (normal init, std 0.01, bias 0, as mmseg's BaseDecodeHead)."""

    def __init__(self, in_channels, in_index, channels, num_classes, dropout_ratio=0.1):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.in_index = tuple(in_index)
        self.in_channels = [in_channels[i] for i in self.in_index]
        self.channels = channels
        self.num_classes = num_classes
        # keyed draws (layers.stochastic): a resumed run drops the channels the original did
        self.dropout = Dropout2d(p=dropout_ratio) if dropout_ratio > 0 else nn.Identity()
        self.conv_seg = SameConv2d(channels, num_classes, 1, has_bias=True,
                                   weight_init=Normal(0.01), bias_init=Zero())

    def fuse(self, inputs):
        raise NotImplementedError

    def cls_seg(self, x):
        return self.conv_seg(self.dropout(x))

    def construct(self, inputs):
        selected = []
        for i in self.in_index:
            selected.append(inputs[i])
        return self.cls_seg(self.fuse(selected))


class Upsample2x(nn.Cell):
    """2x bilinear upsampling (mmseg's Upsample(scale_factor=2) in FPNHead's scale heads)."""

    def construct(self, x):
        return resize(x, (x.shape[2] * 2, x.shape[3] * 2))


class FPNHead(DecodeHead):
    """Semantic FPN's head (Kirillov et al., 2019; mmseg FPNHead): the level of stride s gets
    max(1, log2(s / s0)) conv-BN-ReLU blocks, each but the finest level's followed by a 2x
    bilinear upsampling, so every level reaches the finest stride s0; the levels are summed.
    Each level's blocks are one SequentialCell as in mmseg (same parameter names)."""

    def __init__(self, in_channels, feature_strides, num_classes, channels=128,
                 in_index=(0, 1, 2, 3), dropout_ratio=0.1):
        super().__init__(in_channels, in_index, channels, num_classes, dropout_ratio)
        strides = [feature_strides[i] for i in self.in_index]
        if strides != sorted(strides):
            raise ValueError(f"FPNHead needs feature strides in increasing order, got {strides}")
        heads = []
        for chs, stride in zip(self.in_channels, strides):
            steps = int(round(math.log2(stride / strides[0])))
            cells = []
            for k in range(max(1, steps)):
                cells.append(ConvModule(chs if k == 0 else channels, channels, 3))
                if steps > 0:
                    cells.append(Upsample2x())
            heads.append(nn.SequentialCell(cells))
        self.scale_heads = nn.CellList(heads)

    def fuse(self, inputs):
        out = self.scale_heads[0](inputs[0])
        for i in range(1, len(inputs)):
            # a level whose size is not a power-of-two fraction of the finest lands off by
            # a pixel or so after its 2x upsamplings: resized to the finest, as mmseg does
            out = out + resize(self.scale_heads[i](inputs[i]), out.shape[2:])
        return out


class UPerHead(DecodeHead):
    """UperNet's head (Xiao et al., 2018; mmseg UPerHead): pyramid pooling on the last level, a 1x1
    lateral per other level, top-down bilinear sums, a 3x3 conv per level, every level
    upsampled to the finest and concatenated, then a 3x3 fusion conv."""

    def __init__(self, in_channels, num_classes, channels=512, pool_scales=(1, 2, 3, 6),
                 in_index=(0, 1, 2, 3), dropout_ratio=0.1):
        super().__init__(in_channels, in_index, channels, num_classes, dropout_ratio)
        chs = self.in_channels
        # pyramid pooling (PSPNet): adaptive average pooling, 1x1 conv-BN-ReLU per scale
        self.psp_modules = nn.CellList([nn.SequentialCell([nn.AdaptiveAvgPool2d(s),
                                                           ConvModule(chs[-1], channels, 1)])
                                        for s in pool_scales])
        self.bottleneck = ConvModule(chs[-1] + len(pool_scales) * channels, channels, 3)
        self.lateral_convs = nn.CellList([ConvModule(c, channels, 1) for c in chs[:-1]])
        self.fpn_convs = nn.CellList([ConvModule(channels, channels, 3) for _ in chs[:-1]])
        self.fpn_bottleneck = ConvModule(len(chs) * channels, channels, 3)

    def psp_forward(self, x):
        outs = [x]
        for branch in self.psp_modules:
            outs.append(resize(branch(x), x.shape[2:]))
        return self.bottleneck(ops.concat(outs, axis=1))

    def fuse(self, inputs):
        laterals = []
        for i, conv in enumerate(self.lateral_convs):
            laterals.append(conv(inputs[i]))
        laterals.append(self.psp_forward(inputs[len(inputs) - 1]))
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + resize(laterals[i], laterals[i - 1].shape[2:])
        outs = []
        for i, conv in enumerate(self.fpn_convs):
            outs.append(conv(laterals[i]))
        outs.append(laterals[len(laterals) - 1])
        size = outs[0].shape[2:]
        for i in range(1, len(outs)):
            outs[i] = resize(outs[i], size)
        return self.fpn_bottleneck(ops.concat(outs, axis=1))


class FCNHead(DecodeHead):
    """FCN head (mmseg FCNHead) as UperNet's auxiliary head: `num_convs` 3x3 conv-BN-ReLU on
    one level (in_index 2 by default, the third stage), no concatenation of the input."""

    def __init__(self, in_channels, num_classes, channels=256, num_convs=1, in_index=2,
                 dropout_ratio=0.1):
        super().__init__(in_channels, (in_index,), channels, num_classes, dropout_ratio)
        self.convs = nn.SequentialCell([ConvModule(self.in_channels[0] if k == 0 else channels,
                                                   channels, 3) for k in range(num_convs)])

    def fuse(self, inputs):
        return self.convs(inputs[0])
