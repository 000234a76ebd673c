"""Convolution with 'same' zero padding that can compute itself as matmuls.

MindSpore 2.10's CPU Conv2D kernels are slow on some processors: on the AMD EPYC of our CI a
dense 3x3 convolution runs at ~1 GMAC/s, a grouped one slower still (16x slower than matmuls
on a Xeon), and even a 1x1 convolution's backward is ~20x slower than the equivalent matmul.
So on CPU a convolution is computed as (grouped) broadcast matmuls plus zero-fill shifts of
the taps, which is exactly the 'same' zero padding:

- with the C++ kernels of ops/kernels/conv_taps_cpu.cc (the default on CPU): one matmul for
  all taps and one pass that moves the taps (TapFold / TapUnfold, each other's adjoint).
  Stride 1 with no more outputs than inputs: the k*k per-tap products z_t = W_t x come from
  one matmul and are folded (shifted and summed) into the output, so backward keeps only x;
  otherwise (stride > 1, or widening): the input is unfolded into its k*k taps at the output
  resolution (im2col) and one matmul mixes them.
- without a C++ compiler (or for other dtypes, or "matmul" asked for off CPU): the same per
  tap with slices and concatenations (shift2d), one matmul per tap; several times slower,
  because MindSpore's CPU slice/concat kernels and their gradients cost more than the
  arithmetic.

Same parameters as nn.Conv2d (a subclass), same numbers; on Ascend and GPU the native kernel
is used, and export switches to it (deploy.make_portable): the tap kernels are host code that
a MindIR cannot carry.
"""
import numpy as np
import mindspore as ms
from mindspore import Tensor, nn, ops

from ..ops.aot_build import aot_op, kernel_library, kernel_unavailable_reason
from ..ops.local_attention import subsample
from ..ops.shift import shift2d
from .placement import DevicePlaced, check_placement, current_device

CONV_IMPLS = ("auto", "native", "matmul")
TAP_KERNEL_SOURCE = "conv_taps_cpu.cc"


def resolve_conv_impl(impl, device=None):
    """The implementation `impl` stands for on `device` (default: the current target)."""
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {impl!r}")
    if impl == "auto":
        return "matmul" if (device or ms.get_context("device_target")) == "CPU" else "native"
    return impl


def tap_kernel_path(device=None):
    """Path of the compiled tap kernels, or None when they cannot be used on `device`."""
    if kernel_unavailable_reason(TAP_KERNEL_SOURCE, device) is not None:
        return None
    return kernel_library(TAP_KERNEL_SOURCE)


class _TapOps(nn.Cell):
    """TapUnfold / TapFold (see ops/kernels/conv_taps_cpu.cc) of one layer's geometry, as AOT
    Custom ops whose gradients are each other."""

    def __init__(self, lib, kernel_size, stride, dilation, groups, flip):
        super().__init__()
        kk, s = kernel_size * kernel_size, stride
        geometry = (kernel_size, stride, dilation, groups, int(flip))
        self.cfg = Tensor(np.array(geometry, np.int32))

        def unfold_shape(x, cfg, like):
            return [x[0], x[1] * kk, -(-x[2] // s), -(-x[3] // s)]

        def fold_shape(cols, cfg, like):
            return [cols[0], cols[1] // kk, like[-2], like[-1]]

        def same_dtype(x, cfg, like):
            return x

        def custom(name, shape, bprop=None):
            return aot_op(lib, f"AcmixTap{name}", shape, same_dtype, geometry, bprop)

        unfold_raw, fold_raw = custom("Unfold", unfold_shape), custom("Fold", fold_shape)

        def unfold_bprop(x, cfg, like, out, dout):
            return fold_raw(dout, cfg, like), ops.zeros_like(cfg), ops.zeros_like(like)

        def fold_bprop(cols, cfg, like, out, dout):
            return unfold_raw(dout, cfg, like), ops.zeros_like(cfg), ops.zeros_like(like)

        self.unfold_op = custom("Unfold", unfold_shape, unfold_bprop)
        self.fold_op = custom("Fold", fold_shape, fold_bprop)

    def unfold(self, x):
        """(B, G*C, H, W) -> (B, G*k*k*C, Ho, Wo): every tap of every output pixel."""
        return self.unfold_op(x, self.cfg, ops.zeros(x.shape[2:], ms.uint8))

    def fold(self, cols, height, width):
        """The adjoint of unfold: (B, G*k*k*C, Ho, Wo) -> (B, G*C, height, width)."""
        return self.fold_op(cols, self.cfg, ops.zeros((height, width), ms.uint8))


class GroupedMatmul(nn.Cell):
    """out[b, g] = w[g] @ x[b, g] for w (G, M, K) and x (B, G, K, L), with a backward made of
    BatchMatMul's transpose flags: autodiff of ops.matmul's broadcast instead materialises a
    transposed copy of x and of the output gradient for every product (measured: ~12% of a
    training step of acmix_resnet_tiny on CPU went to those Transpose ops)."""

    def __init__(self):
        super().__init__()
        self.bmm = ops.BatchMatMul()
        self.bmm_ta = ops.BatchMatMul(transpose_a=True)
        self.bmm_tb = ops.BatchMatMul(transpose_b=True)

    def construct(self, w, x):
        # under AMP O2 x arrives in float16 and the weights stay float32: compute in x's dtype
        return self.bmm(ops.broadcast_to(w.astype(x.dtype), (x.shape[0],) + w.shape), x)

    def bprop(self, w, x, out, dout):
        dout = dout.astype(x.dtype)
        return (self.bmm_tb(dout, x).sum(0).astype(w.dtype),
                self.bmm_ta(ops.broadcast_to(w.astype(x.dtype), (x.shape[0],) + w.shape), dout))


class SameConv2d(DevicePlaced, nn.Conv2d):
    """nn.Conv2d with an odd square kernel and padding = dilation * (kernel_size // 2)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, dilation=1, group=1,
                 has_bias=False, weight_init=None, bias_init=None, impl="auto"):
        if kernel_size % 2 == 0:
            raise ValueError(f"SameConv2d needs an odd kernel_size, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, pad_mode="pad",
                         padding=dilation * (kernel_size // 2), dilation=dilation, group=group,
                         has_bias=has_bias, weight_init=weight_init, bias_init=bias_init)
        self.matmul = GroupedMatmul()
        self.ksize, self.step, self.dil, self.groups = kernel_size, stride, dilation, group
        # (tap row, tap column, dy, dx): tap (a, c) reads x[i + (a - k // 2) * dilation]
        half = kernel_size // 2
        self.offsets = tuple((a, c, (half - a) * dilation, (half - c) * dilation)
                             for a in range(kernel_size) for c in range(kernel_size))
        # stride 1 folds the products unless there are more of them than input channels
        self.fold_products = stride == 1 and out_channels <= in_channels
        self.tap_ops = None
        self.use_tap_kernels = False
        self.impl_request = impl
        self.place(current_device())

    def place(self, device):
        """Resolve conv_impl "auto" for `device` (see layers.placement); the C++ tap kernels
        when the result is "matmul" on CPU and they build here."""
        self.impl = resolve_conv_impl(self.impl_request, device)
        self.placed_for = device
        self.use_tap_kernels = False
        if self.impl == "matmul" and self.ksize > 1:
            if self.tap_ops is None:
                lib = tap_kernel_path(device)
                if lib is not None:
                    self.tap_ops = _TapOps(lib, self.ksize, self.step, self.dil, self.groups,
                                           flip=self.fold_products)
            self.use_tap_kernels = self.tap_ops is not None and device == "CPU"

    def implementation(self):
        return "convolution", self.impl

    @property
    def adaptive(self):
        return self.impl_request == "auto"

    def construct(self, x):
        check_placement("SameConv2d", self.placed_for, self.adaptive)
        if self.impl == "native":
            out = self.conv2d(x, self.weight)
        elif self.use_tap_kernels and x.dtype == ms.float32:
            out = self._fold(x) if self.fold_products else self._unfold(x)
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

    def _fold(self, x):
        """Stride 1: z_t = W_t x for every tap in one matmul, then shifted and summed."""
        b, _, h, w = x.shape
        g, kk = self.groups, self.ksize * self.ksize
        og, ig = self.out_channels // g, self.in_channels // g
        weights = self.weight.reshape(g, og, ig, kk).transpose(0, 3, 1, 2).reshape(g, kk * og, ig)
        z = self.matmul(weights, x.reshape(b, g, ig, h * w))
        return self.tap_ops.fold(z.reshape(b, g * kk * og, h, w), h, w)

    def _unfold(self, x):
        """The taps of every output pixel (im2col), mixed by one matmul."""
        g, kk = self.groups, self.ksize * self.ksize
        og, ig = self.out_channels // g, self.in_channels // g
        cols = self.tap_ops.unfold(x)
        b, _, ho, wo = cols.shape
        weights = self.weight.reshape(g, og, ig, kk).transpose(0, 1, 3, 2).reshape(g, og, kk * ig)
        return self.matmul(weights, cols.reshape(b, g, kk * ig, ho * wo)).reshape(
            b, self.out_channels, ho, wo)

    def _taps(self, x):
        """Stride 1: shift each tap's product, so backward keeps only x."""
        b, _, h, w = x.shape
        taps, g = self._tap_weights(), self.groups
        f = x.reshape(b, g, self.in_channels // g, h * w)
        out = None
        for a, c, dy, dx in self.offsets:
            y = shift2d(self.matmul(taps[:, :, :, a, c], f).reshape(b, self.out_channels, h, w),
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
            y = self.matmul(taps[:, :, :, a, c], xt).reshape(b, self.out_channels, ho, wo)
            out = y if out is None else out + y
        return out
