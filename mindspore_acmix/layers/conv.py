"""Convolution with 'same' zero padding that can compute itself as matmuls.

MindSpore 2.10's CPU Conv2D kernels are slow on some processors: on the AMD EPYC of our CI a
dense 3x3 convolution runs at ~1 GMAC/s, a grouped one slower still (16x slower than matmuls
on a Xeon), and even a 1x1 convolution's backward is ~20x slower than the equivalent matmul.
So on CPU a convolution is computed as (grouped) broadcast matmuls plus zero-fill shifts of
the taps, which is exactly the 'same' zero padding:

- with the C++ kernels of cpu/kernels/conv_taps_cpu.cc (cpu.taps; the default on CPU): one matmul for
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
is used, and export switches to it (layers.placement.make_portable): the tap kernels are host code that
a MindIR cannot carry.
"""
import mindspore as ms
from mindspore import nn, ops

from ..checks import ceil_div
from ..cpu import taps
from ..ops.local_attention import subsample
from ..ops.shift import shift2d
from .placement import DevicePlaced, check_placement



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
        self.init_placement(impl)

    impl_kind = "convolution"

    def use_implementation(self, name, device):
        """conv_impl `name` on `device` (layers.placement): the C++ tap kernels when it is
        "matmul" on CPU and they build here."""
        self.impl = name
        self.use_tap_kernels = False
        if self.impl == "matmul" and self.ksize > 1:
            if self.tap_ops is None:
                lib = taps.tap_kernel_path(device)
                if lib is not None:
                    self.tap_ops = taps.TapOps(lib, self.ksize, self.step, self.dil,
                                               self.groups, flip=self.fold_products)
            self.use_tap_kernels = self.tap_ops is not None and device == "CPU"

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
        ho, wo = ceil_div(x.shape[2], s), ceil_div(x.shape[3], s)
        taps = self._tap_weights()
        out = None
        for a, c, dy, dx in self.offsets:
            xt = subsample(shift2d(x, dy, dx), s).reshape(b, g, self.in_channels // g, ho * wo)
            y = self.matmul(taps[:, :, :, a, c], xt).reshape(b, self.out_channels, ho, wo)
            out = y if out is None else out + y
        return out
