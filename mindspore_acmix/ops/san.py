"""The three neighbourhood operators of SAN (Zhao et al., CVPR 2020), hszhao/SAN's `lib/sa`.

Every implementation is a Cell built as `cls(kernel_size, stride, dilation)` with three
methods; x, x1, x2 are (N, C, H, W), w is (N, Cw, k*k, Ho*Wo) with C a multiple of Cw,
Ho = ceil(H / stride), Wo = ceil(W / stride):

    windows(x) -> (N, C, k*k, Ho*Wo)          x's k x k window around each query
    subtraction2(x1, x2) -> (N, C, k*k, Ho*Wo)  x1 at the query minus x2's window
                                                (SAN's `subtraction(x)` is subtraction2(x, x))
    aggregation(x, w) -> (N, C, Ho, Wo)       sum over the window of w * x's window, output
                                                channel c weighted by weight channel c % Cw

Query (y, x) sits at input pixel (y*stride, x*stride); window position j = a*k + b reads
pixel (y*stride + a*dilation - pad, x*stride + b*dilation - pad), pad = dilation*(k-1)/2,
through a reflection padding (torch ReflectionPad2d: the edge is not repeated, reflected
only once, so pad < H and pad < W). These are the semantics of SAN's CUDA kernels
(`*_refpad`); `windows` is the patchwise SAM's `unfold_j(pad(x))` (channel-major: channel
c*k*k + j once viewed as (N, C*k*k, Ho*Wo)), dilated consistently.

The sharing of `aggregation` is interleaved: output channels c, c + Cw, c + 2*Cw ... share
weight channel c, so x is read as (N, C/Cw, Cw, ...).

Implementations (SAM(san_impl=...) picks one by name):
- "unfold": the reference, with ops.unfold (Im2Col). `windows` and `subtraction2` are
  k*k times their input by definition, but `aggregation` materialises k*k copies of
  all C channels of x, forward and backward: the k**2 blow-up of the official PyTorch
  fallback.
"""
import mindspore as ms
from mindspore import nn, ops

from .local_attention import subsample, window_padding
from .shift import reflect_pad2d


def out_size(n, stride):
    return -(-n // stride)


def windows_unfold(x, kernel_size, stride, dilation):
    """(N, C, k*k, Ho*Wo): the reflection-padded window of every query, by ops.unfold."""
    n, c = x.shape[0], x.shape[1]
    cols = ops.unfold(reflect_pad2d(x, window_padding(kernel_size, dilation)), kernel_size,
                      dilation, 0, stride)
    return cols.view(n, c, kernel_size * kernel_size, cols.shape[2])


def subtraction2_unfold(x1, x2, kernel_size, stride, dilation):
    centre = subsample(x1, stride)
    n, c = centre.shape[0], centre.shape[1]
    return (centre.reshape(n, c, 1, centre.shape[2] * centre.shape[3])
            - windows_unfold(x2, kernel_size, stride, dilation))


def aggregation_unfold(x, w, kernel_size, stride, dilation):
    n, c, h, wd = x.shape
    cw, kk = w.shape[1], w.shape[2]
    cols = windows_unfold(x, kernel_size, stride, dilation)
    out = (cols.view(n, c // cw, cw, kk, cols.shape[3]) * w.expand_dims(1)).sum(3)
    return out.view(n, c, out_size(h, stride), out_size(wd, stride))


class SanOps(nn.Cell):
    """Base of the implementations: the window geometry."""

    def __init__(self, kernel_size, stride=1, dilation=1):
        super().__init__()
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.padding = window_padding(kernel_size, dilation)


class UnfoldSanOps(SanOps):
    """The reference formulation, by ops.unfold."""

    def windows(self, x):
        return windows_unfold(x, self.kernel_size, self.stride, self.dilation)

    def subtraction2(self, x1, x2):
        return subtraction2_unfold(x1, x2, self.kernel_size, self.stride, self.dilation)

    def aggregation(self, x, w):
        return aggregation_unfold(x, w, self.kernel_size, self.stride, self.dilation)


SAN_OPS = {
    "unfold": UnfoldSanOps,
}


def resolve_san_ops(name="auto"):
    """The implementation name that `name` stands for here ("auto" resolved)."""
    if name != "auto" and name not in SAN_OPS:
        raise ValueError(f"san_impl must be 'auto' or one of {sorted(SAN_OPS)}, got {name!r}")
    if name != "auto":
        return name
    return "unfold"


def get_san_ops(name="auto"):
    """The implementation class registered under `name`, built as cls(kernel_size, stride,
    dilation)."""
    return SAN_OPS[resolve_san_ops(name)]


__all__ = ["SAN_OPS", "SanOps", "get_san_ops", "resolve_san_ops", "windows_unfold",
           "subtraction2_unfold", "aggregation_unfold"]
