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
- "aot": C++ CPU kernels (kernels/san_cpu.cc, OpenMP, one channel per task) as MindSpore
  AOT Custom ops with their own backward; compiled on first use (see aot_build). Nothing
  is k*k times a feature map but the outputs that are so by definition.
- "halo": standard graph operators only (reshape, transpose, slice, concat, batched matmul:
  Ascend, GPU, MindIR and ONNX export), on the blocked ("halo") machinery of ops.halo that
  ACmix's local attention uses too. `windows` and `subtraction2` multiply each block's halo
  tile by the constant one-hot window selector. `aggregation` spreads each block's weights
  over its halo, w (Cw, b*b, k*k) -> (Cw, b*b, L*L), with a constant one-hot matmul and
  then aggregates all C channels of the block with one batched matmul against the tile:
  memory about Cw * L**2 + C * (L / b)**2 per query instead of C * k**2, the block side b
  chosen to minimise it (aggregation_block); backward by autodiff. Caveat measured on
  MindSpore 2.10 CPU (benchmarks/results/san-2core-cpu.json): the graph executor keeps the
  forward intermediates, so the SAM's peak is only 1.0-1.6x below "unfold" there and it is
  slower than "unfold"; on CPU use "aot". Not measured on Ascend or GPU.
- "auto": "aot" on CPU when the kernels build, else "halo" (with a warning, once, on CPU).
"""
import warnings

import numpy as np
import mindspore as ms
from mindspore import Tensor, ops

from . import halo
from .aot_build import aot_op, kernel_unavailable_reason, require_kernel
from .local_attention import SlidingWindow, subsample, window_padding
from .shift import reflect_pad2d


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
    return out.view(n, c, halo.out_size(h, stride), halo.out_size(wd, stride))


class SanOps(SlidingWindow):
    """Base of the implementations (the window geometry: SlidingWindow)."""


class UnfoldSanOps(SanOps):
    """The reference formulation, by ops.unfold."""

    def windows(self, x):
        return windows_unfold(x, self.kernel_size, self.stride, self.dilation)

    def subtraction2(self, x1, x2):
        return subtraction2_unfold(x1, x2, self.kernel_size, self.stride, self.dilation)

    def aggregation(self, x, w):
        return aggregation_unfold(x, w, self.kernel_size, self.stride, self.dilation)


def aggregation_block(kernel_size, stride, dilation, share):
    """Block side of the halo aggregation: the b minimising the per-query memory
    L**2 * (Cw + C / b**2) ~ L**2 * (1 + share / b**2), L = (b-1)*stride + (k-1)*dilation + 1."""
    best, best_cost = 1, -1.0
    for b in range(1, 17):  # a plain loop: graph mode cannot parse min(key=...)
        span = (b - 1) * stride + (kernel_size - 1) * dilation + 1
        cost = span * span * (1.0 + share / (b * b))
        if best_cost < 0 or cost < best_cost:
            best, best_cost = b, cost
    return best


def window_spreader(grid):
    """(b*b, k*k, L*L) one-hot: for query q of a block, window position j -> its halo position."""
    index = halo.window_index(grid)
    bb, kk = index.shape
    out = np.zeros((bb, kk, grid.halo ** 2), np.float32)
    out[np.arange(bb)[:, None], np.arange(kk)[None, :], index] = 1.0
    return out


class HaloSanOps(SanOps):
    """Standard graph operators on ops.halo's blocks (see the module docstring)."""

    def __init__(self, kernel_size, stride=1, dilation=1):
        super().__init__(kernel_size, stride, dilation)
        self.select = ops.matmul  # a constant matrix times every block: broadcast batch
        self.spread = ops.BatchMatMul()
        self.aggregate = ops.BatchMatMul()

    def _tiles(self, x, grid):
        return halo.halo_tiles(x, grid, self.padding)                # (N*nb, L*L, C)

    def windows(self, x):
        n, c, h, w = x.shape
        grid = halo.BlockGrid(h, w, self.kernel_size, self.stride, self.dilation)
        tiles = self._tiles(x, grid)
        blocks, bb = tiles.shape[0], grid.block ** 2
        selector = Tensor(halo.window_selector(grid).T.copy(), x.dtype)  # (b*b*k*k, L*L)
        win = self.select(selector, tiles)                            # (N*nb, b*b*k*k, C)
        win = win.reshape(blocks, bb, -1, c).transpose(0, 1, 3, 2)
        win = halo.blocks_to_map(win.reshape(blocks, bb, -1), grid)
        return win.reshape(n, c, self.kernel_size ** 2, grid.out_h * grid.out_w)

    def subtraction2(self, x1, x2):
        centre = subsample(x1, self.stride)
        n, c = centre.shape[0], centre.shape[1]
        return centre.reshape(n, c, 1, centre.shape[2] * centre.shape[3]) - self.windows(x2)

    def aggregation(self, x, w):
        n, c, h, wd = x.shape
        cw, kk = w.shape[1], w.shape[2]
        grid = halo.BlockGrid(h, wd, self.kernel_size, self.stride, self.dilation,
                              aggregation_block(self.kernel_size, self.stride, self.dilation,
                                                c // cw))
        bb = grid.block ** 2
        # the weights of each block's queries, spread over its halo: query q's batch is
        # (its k*k weights of every block and channel) @ (its k*k -> L*L one-hot)
        wb = halo.query_blocks(w.reshape(n, cw * kk, grid.out_h, grid.out_w), grid)
        blocks = wb.shape[0]
        wb = wb.reshape(blocks, bb, cw, kk).transpose(1, 0, 2, 3).reshape(bb, blocks * cw, kk)
        dense = self.spread(wb, Tensor(window_spreader(grid), w.dtype))  # (b*b, N*nb*Cw, L*L)
        dense = dense.reshape(bb, blocks, cw, -1).transpose(1, 2, 0, 3)    # (N*nb, Cw, b*b, L*L)
        # channel t*Cw + g of the tile is aggregated with weight channel g
        tiles = self._tiles(x, grid).reshape(blocks, -1, c // cw, cw).transpose(0, 3, 1, 2)
        out = self.aggregate(dense, tiles)                            # (N*nb, Cw, b*b, C/Cw)
        out = out.transpose(0, 2, 3, 1).reshape(blocks, bb, c)
        return halo.blocks_to_map(out, grid)


AOT_SOURCE = "san_cpu.cc"


def aot_unavailable_reason():
    """Why san_impl="aot" cannot be used here, or None when it can."""
    return kernel_unavailable_reason(AOT_SOURCE)


class AotSanOps(SanOps):
    """The C++ CPU kernels of kernels/san_cpu.cc as Custom ops (float32 inside)."""

    def __init__(self, kernel_size, stride=1, dilation=1):
        super().__init__(kernel_size, stride, dilation)
        lib = require_kernel(AOT_SOURCE, "san_impl")
        kk = kernel_size * kernel_size

        def windows_shape(x1, x2, cfg):
            return [x2[0], x2[1], kk,
                    halo.out_size(x2[2], stride) * halo.out_size(x2[3], stride)]

        def aggregation_shape(x, w, cfg):
            return [x[0], x[1], halo.out_size(x[2], stride), halo.out_size(x[3], stride)]

        def first_dtype(*args):
            return args[0]

        def pair_shape(a, b, *rest):
            return a, b

        def pair_dtype(a, b, *rest):
            return a, b

        geometry = (kernel_size, stride, dilation)
        windows_bwd = aot_op(lib, "SanWindowsBwd", pair_shape, pair_dtype, geometry)
        aggregation_bwd = aot_op(lib, "SanAggregationBwd", pair_shape, pair_dtype, geometry)

        def windows_bprop(x1, x2, cfg, out, dout):
            dx1, dx2 = windows_bwd(x1, x2, cfg, dout)
            return dx1, dx2, ops.zeros_like(cfg)

        def aggregation_bprop(x, w, cfg, out, dout):
            dx, dw = aggregation_bwd(x, w, cfg, dout)
            return dx, dw, ops.zeros_like(cfg)

        self.windows_fwd = aot_op(lib, "SanWindowsFwd", windows_shape, first_dtype, geometry,
                                  windows_bprop)
        self.aggregation_fwd = aot_op(lib, "SanAggregationFwd", aggregation_shape, first_dtype,
                                      geometry, aggregation_bprop)
        # the kernels' cfg inputs: [k, stride, dilation, mode]
        self.cfg_windows = Tensor(np.array(geometry + (0,), np.int32))
        self.cfg_subtraction = Tensor(np.array(geometry + (1,), np.int32))

    def windows(self, x):
        x32 = x.astype(ms.float32)
        return self.windows_fwd(x32, x32, self.cfg_windows).astype(x.dtype)

    def subtraction2(self, x1, x2):
        return self.windows_fwd(x1.astype(ms.float32), x2.astype(ms.float32),
                                self.cfg_subtraction).astype(x1.dtype)

    def aggregation(self, x, w):
        return self.aggregation_fwd(x.astype(ms.float32), w.astype(ms.float32),
                                    self.cfg_windows).astype(x.dtype)


SAN_OPS = {
    "unfold": UnfoldSanOps,
    "aot": AotSanOps,
    "halo": HaloSanOps,
}
_warned = set()


def resolve_san_ops(name="auto"):
    """The implementation name that `name` stands for here ("auto" resolved)."""
    if name != "auto" and name not in SAN_OPS:
        raise ValueError(f"san_impl must be 'auto' or one of {sorted(SAN_OPS)}, got {name!r}")
    if name != "auto":
        return name
    reason = aot_unavailable_reason()
    if reason is None:
        return "aot"
    fallback = "halo"
    if ms.get_context("device_target") == "CPU" and reason not in _warned:
        _warned.add(reason)
        warnings.warn(f"SAN: the C++ kernels are unavailable ({reason}); using the slower "
                      f"graph-operator path san_impl={fallback!r}.", stacklevel=3)
    return fallback


def get_san_ops(name="auto"):
    """The implementation class registered under `name`, built as cls(kernel_size, stride,
    dilation)."""
    return SAN_OPS[resolve_san_ops(name)]


__all__ = ["SAN_OPS", "SanOps", "get_san_ops", "resolve_san_ops", "windows_unfold",
           "subtraction2_unfold", "aggregation_unfold"]
