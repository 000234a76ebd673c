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

Implementations (SAM(san_impl=...) picks one by name; mindspore_acmix.implementations lists
them and resolves "auto"):
- "halo" (here): standard graph operators only (Ascend, GPU, MindIR and ONNX export), on the
  blocked ("halo") machinery of ops.halo that ACmix's local attention uses too. `windows`
  and `subtraction2` gather each query's window along both axes (constant indices, the
  reflection folded in; no multiply-accumulate). `aggregation` spreads each block's weights over its halo, w (Cw, b*b, k*k) ->
  (Cw, b*b, L*L), with a constant one-hot matmul and then aggregates all C channels of the
  block with one batched matmul against the tile: memory about Cw * L**2 + C * (L / b)**2
  per query instead of C * k**2, the block side b chosen to minimise it
  (aggregation_block); backward by autodiff. On CPU slower than "unfold" and "aot"
  (benchmarks/bench_acmix.py --mode san).
- "aot" (mindspore_acmix.cpu.san): C++ CPU kernels as AOT Custom ops with their own backward.
- "unfold" (ops.references): the reference, with ops.unfold (Im2Col); `aggregation`
  materialises k*k copies of all C channels of x, forward and backward: the k**2 blow-up
  of the official PyTorch fallback.
- "auto": "aot" on CPU when the kernels build, "halo" everywhere else, resolved for the
  device the layer runs on (layers.placement).
"""
import numpy as np
from mindspore import Tensor, ops

from . import halo
from .local_attention import SlidingWindow, subsample


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


class HaloSanOps(SlidingWindow):
    """Standard graph operators on ops.halo's blocks (see the module docstring)."""

    def __init__(self, kernel_size, stride=1, dilation=1):
        super().__init__(kernel_size, stride, dilation)
        self.spread = ops.BatchMatMul()
        self.aggregate = ops.BatchMatMul()

    def windows(self, x):
        """Two Gathers with constant (out, k) indices (halo.window_pixels, the reflection
        folded in) and one Transpose: no multiply-accumulate, k*k values per query, what
        the output holds anyway."""
        n, c, h, w = x.shape
        k, s, d = self.kernel_size, self.stride, self.dilation
        cols = ops.gather(x, Tensor(halo.window_pixels(w, k, s, d)), 3)         # (N, C, H, Wo, k)
        win = ops.gather(cols, Tensor(halo.window_pixels(h, k, s, d)), 2)      # (N, C, Ho, k, Wo, k)
        ho, wo = win.shape[2], win.shape[4]
        return win.transpose(0, 1, 3, 5, 2, 4).reshape(n, c, k * k, ho * wo)

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
        tiles = halo.halo_tiles(x, grid, self.padding).reshape(blocks, -1, c // cw, cw).transpose(0, 3, 1, 2)
        out = self.aggregate(dense, tiles)                            # (N*nb, Cw, b*b, C/Cw)
        out = out.transpose(0, 2, 3, 1).reshape(blocks, bb, c)
        return halo.blocks_to_map(out, grid)
