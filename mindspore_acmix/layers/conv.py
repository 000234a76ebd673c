"""Convolution with 'same' zero padding that can compute itself as per-tap matmuls.

MindSpore 2.10's CPU Conv2D kernels are slow on some processors: on the AMD EPYC of our CI a
dense 3x3 convolution runs at ~1 GMAC/s, a grouped one slower still, and even a 1x1
convolution's backward is ~20x slower than the equivalent matmul. So on CPU a convolution is
computed tap by tap: for each kernel position the (grouped) 1x1 mixing is one broadcast
matmul, and the tap's offset is applied with a zero-fill shift, which is exactly the 'same'
zero padding.

- stride 1: the products are shifted, so backward keeps the input once;
- stride > 1: the input is shifted and subsampled first, so the matmuls run at the output
  resolution.

Same parameters as nn.Conv2d (a subclass), same numbers; on Ascend and GPU the native kernel
is used.
"""
import mindspore as ms
from mindspore import nn, ops

from ..ops.local_attention import subsample
from ..ops.shift import shift2d
from .placement import DevicePlaced, check_placement, current_device

CONV_IMPLS = ("auto", "native", "matmul")


def resolve_conv_impl(impl, device=None):
    """The implementation `impl` stands for on `device` (default: the current target)."""
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {impl!r}")
    if impl == "auto":
        return "matmul" if (device or ms.get_context("device_target")) == "CPU" else "native"
    return impl


class SameConv2d(DevicePlaced, nn.Conv2d):
    """nn.Conv2d with an odd square kernel and padding = dilation * (kernel_size // 2)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, dilation=1, group=1,
                 has_bias=False, weight_init=None, bias_init=None, impl="auto"):
        if kernel_size % 2 == 0:
            raise ValueError(f"SameConv2d needs an odd kernel_size, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, pad_mode="pad",
                         padding=dilation * (kernel_size // 2), dilation=dilation, group=group,
                         has_bias=has_bias, weight_init=weight_init, bias_init=bias_init)
        self.impl_request, self.impl = impl, resolve_conv_impl(impl)
        self.placed_for = current_device()
        self.ksize, self.step, self.groups = kernel_size, stride, group
        # (tap row, tap column, dy, dx): tap (a, c) reads x[i + (a - k // 2) * dilation]
        half = kernel_size // 2
        self.offsets = tuple((a, c, (half - a) * dilation, (half - c) * dilation)
                             for a in range(kernel_size) for c in range(kernel_size))

    def place(self, device):
        """Resolve conv_impl "auto" for `device` (see layers.placement)."""
        self.impl = resolve_conv_impl(self.impl_request, device)
        self.placed_for = device

    def implementation(self):
        return "convolution", self.impl

    @property
    def adaptive(self):
        return self.impl_request == "auto"

    def construct(self, x):
        check_placement("SameConv2d", self.placed_for, self.adaptive)
        if self.impl == "native":
            out = self.conv2d(x, self.weight)
        elif self.step > 1 and self.ksize > 1:
            out = self._taps_strided(x)
        else:
            out = self._taps(subsample(x, self.step))  # a strided 1x1 reads every s-th pixel
        if self.has_bias:
            out = self.bias_add(out, self.bias)
        return out

    def _tap_weights(self):
        k, g = self.ksize, self.groups
        return self.weight.reshape(g, self.out_channels // g, self.in_channels // g, k, k)

    def _taps(self, x):
        """Stride 1: shift each tap's product, so backward keeps only x."""
        b, _, h, w = x.shape
        taps, g = self._tap_weights(), self.groups
        f = x.reshape(b, g, self.in_channels // g, h * w)
        out = None
        for a, c, dy, dx in self.offsets:
            y = shift2d(ops.matmul(taps[:, :, :, a, c], f).reshape(b, self.out_channels, h, w),
                        dy, dx)
            out = y if out is None else out + y
        return out

    def _taps_strided(self, x):
        """Stride > 1: shift and subsample the input, so the matmuls run at output size."""
        b, s, g = x.shape[0], self.step, self.groups
        ho, wo = -(-x.shape[2] // s), -(-x.shape[3] // s)
        taps = self._tap_weights()
        out = None
        for a, c, dy, dx in self.offsets:
            xt = subsample(shift2d(x, dy, dx), s).reshape(b, g, self.in_channels // g, ho * wo)
            y = ops.matmul(taps[:, :, :, a, c], xt).reshape(b, self.out_channels, ho, wo)
            out = y if out is None else out + y
        return out
