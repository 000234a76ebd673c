"""The tap passes of the matmul convolutions (layers.conv, conv_impl="matmul" on CPU):
TapUnfold / TapFold of kernels/conv_taps_cpu.cc, each other's adjoint, as AOT Custom ops."""
import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops

from ..checks import ceil_div
from .build import aot_op, kernel_library, kernel_unavailable_reason

SOURCE = "conv_taps_cpu.cc"


def tap_kernel_path(device=None):
    """Path of the compiled tap kernels, or None when they cannot be used on `device`."""
    if kernel_unavailable_reason(SOURCE, device) is not None:
        return None
    return kernel_library(SOURCE)


class TapOps(nn.Cell):
    """TapUnfold / TapFold (see kernels/conv_taps_cpu.cc) of one layer's geometry, as AOT
    Custom ops whose gradients are each other."""

    def __init__(self, lib, kernel_size, stride, dilation, groups, flip):
        super().__init__()
        kk, s = kernel_size * kernel_size, stride
        geometry = (kernel_size, stride, dilation, groups, int(flip))
        self.cfg = Tensor(np.array(geometry, np.int32))

        def unfold_shape(x, cfg, like):
            return [x[0], x[1] * kk, ceil_div(x[2], s), ceil_div(x[3], s)]

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
