"""mmsegmentation's FPN neck, as Semantic FPN uses it (PVT's segmentation recipe)."""
from mindspore import nn, ops
from mindspore.common.initializer import XavierUniform, Zero, initializer

from ..layers.conv import SameConv2d


class PlainConv(nn.Cell):
    """mmcv's ConvModule without norm and activation: a biased convolution ("same" padding)
    held as `conv` (so parameter names are mmseg's), mmseg FPN's init: Xavier uniform, bias 0."""

    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv = SameConv2d(in_channels, out_channels, kernel_size, has_bias=True)
        weight = self.conv.weight
        weight.set_data(initializer(XavierUniform(), weight.shape, weight.dtype))
        self.conv.bias.set_data(initializer(Zero(), self.conv.bias.shape, self.conv.bias.dtype))

    def construct(self, x):
        return self.conv(x)


class FPN(nn.Cell):
    """Feature pyramid (Lin et al., 2017) with mmseg's defaults for Semantic FPN: a 1x1
    lateral and a 3x3 output convolution per level, no norm, no activation, nearest
    upsampling in the top-down path, one output per input (num_outs = len(in_channels))."""

    def __init__(self, in_channels, out_channels=256):
        super().__init__()
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.lateral_convs = nn.CellList([PlainConv(c, out_channels, 1) for c in in_channels])
        self.fpn_convs = nn.CellList([PlainConv(out_channels, out_channels, 3)
                                      for _ in in_channels])

    def construct(self, inputs):
        laterals = []
        for i, conv in enumerate(self.lateral_convs):
            laterals.append(conv(inputs[i]))
        # top-down: each level gets the nearest-upsampled sum of the level above
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + ops.interpolate(
                laterals[i], size=laterals[i - 1].shape[2:], mode="nearest")
        outs = []
        for i, conv in enumerate(self.fpn_convs):
            outs.append(conv(laterals[i]))
        return outs
