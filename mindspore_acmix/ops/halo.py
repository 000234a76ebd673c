"""Blocked ("halo") sliding windows: dense batched matmuls instead of kernel_size**2 offsets.

Any sliding-window operator over a k x k (dilated, strided) window can be computed block by
block: cut the query grid into b x b blocks; every window of a block's queries lies inside one
square "halo" of the padded map, of side

    L = (b - 1) * stride + (k - 1) * dilation + 1,

so a block's queries against its halo is one dense (b*b, L*L) problem (a batched matmul on
Ascend's Cube units and GPUs' tensor cores), and a constant (b*b, L*L) pattern says which
halo positions are in which query's window. Memory is bounded by the shapes: one tile of L*L
per block instead of k*k copies of the map.

Every function here uses only batched matmuls with constant 0/1 matrices and reshapes (no
Transpose, Im2Col, PadV3, Gather, loops over blocks), so each map costs a fixed number of graph
operators whatever the number of blocks, and exports to MindIR and ONNX. The tiles are
HaloNet's (Vaswani et al., 2021) blocked halos, cut out along each axis by one matmul with a
constant 0/1 matrix that also does the reflection padding (see halo_tiles).

API (used by ops.local_attention "halo" and meant for any other windowed operator):

    grid = BlockGrid(height, width, kernel_size, stride, dilation, block)
    qb = query_blocks(x, grid)           # (N, C, out_h, out_w) -> (N*nb, b*b, C)
    tiles = halo_tiles(x, grid, p)       # (N, C, H, W) reflect-padded by p -> (N*nb, L*L, C)
    x = halo_tiles_adjoint(tiles, grid, H, W, p)   # its adjoint (the gradient of halo_tiles)
    y = blocks_to_map(yb, grid)          # (N*nb, b*b, C) -> (N, C, out_h, out_w)
    window_mask(grid)                    # (b*b, L*L) float32: 0 in the window, MASK_VALUE out
    window_index(grid)                   # (b*b, k*k) int: halo position of window offset j
    window_selector(grid)                # (L*L, b*b*k*k) one-hot: S.T @ tiles = the k*k windows

where nb = grid.blocks_y * grid.blocks_x, block index = (n, block column, block row) in that
order (what lets halo_tiles avoid transposing the tiles), halo and block positions are
row-major, and window offset j = a * k + c is window row a, column c (row-major, as
ops.unfold). Tiles and blocks are channel-last: (.., positions, C) is what the batched
matmuls of an attention take without a transpose.

None of these functions contains an `if` on the traced path: a Cell's construct and its
bprop may both call them (MindSpore 2.10's graph mode fails with "The func graph is empty"
on a helper with an `if` shared by the two).
"""
import numpy as np
from mindspore import Tensor, ops


# The additive mask: exp(MASK_VALUE - max) is 0 in float32 and float16, and the value itself
# is finite in float16 (max 65504), so a mask cast to half precision stays a mask.
MASK_VALUE = -30000.0


def out_size(n, stride):
    """Query positions along an axis of n pixels: ceil(n / stride)."""
    return -(-n // stride)


def default_block(kernel_size, stride=1, dilation=1):
    """The block side used when none is given: 4.

    The trade-off: the logits cost L*L per query (L = (b - 1) * stride + (k - 1) * dilation
    + 1, so they grow with b) and the tiles (L / b)**2 pixels per pixel of the map (they shrink
    with b). Measured for the ACmix layer at 64@56x56, batch 8, kernel 7 (graph mode, 2-core
    CPU, fwd+bwd, peak memory growth of the whole layer, with the transpose-free tiles and
    the recomputing backward): b = 4 799 MB, b = 6 832 MB, b = 8 853 MB (head_dim 16: at b = 4
    the logits and a tile are the same size, 6.25 map sizes); with the earlier autodiff
    version b = 4 1380 MB and b = 8 1616 MB in the same time, b = 2 1.7x slower than b = 8
    for the attention alone. 4 is also what stride 2 wants (L = 13 for kernel 7)."""
    return 4


class BlockGrid:
    """Geometry of a blocked k x k window operator on an height x width map.

    Query (i, j) of the out_h x out_w grid reads the padded map at rows i*stride + a*dilation
    and columns j*stride + c*dilation, a, c in [0, kernel_size). The block side is capped at
    the grid's size, so a small map is one block.
    """

    def __init__(self, height, width, kernel_size, stride=1, dilation=1, block=None):
        for name, value in (("height", height), ("width", width), ("kernel_size", kernel_size),
                            ("stride", stride), ("dilation", dilation)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if block is None:
            block = default_block(kernel_size, stride, dilation)
        if not isinstance(block, (int, np.integer)) or isinstance(block, bool) or block < 1:
            raise ValueError(f"block must be a positive integer, got {block!r}")
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.out_h, self.out_w = out_size(height, stride), out_size(width, stride)
        self.block = int(min(block, max(self.out_h, self.out_w)))
        b = self.block
        self.blocks_y, self.blocks_x = out_size(self.out_h, b), out_size(self.out_w, b)
        self.halo = (b - 1) * stride + (kernel_size - 1) * dilation + 1
        self.chunk = b * stride  # the halos of neighbouring blocks start this far apart
        # chunks after its own that a halo reaches into
        self.neighbours = max(0, out_size(self.halo - self.chunk, self.chunk))

    def halo_selector(self, axis, n, padding=0, fill="reflect"):
        """(1, blocks * L, n): axis_selector of the halos along `axis` (0: rows, 1: columns)
        of an n-pixel axis, transposed, as _cut takes it."""
        blocks = self.blocks_y if axis == 0 else self.blocks_x
        return axis_selector(n, blocks, self.chunk, self.halo, padding, fill).T[None]

    def block_selector(self, axis):
        """(1, blocks * b, out): the same for the query blocks (zero-extended, no padding)."""
        blocks, n = (self.blocks_y, self.out_h) if axis == 0 else (self.blocks_x, self.out_w)
        return axis_selector(n, blocks, self.block, self.block, 0, "zero").T[None]

    @property
    def num_blocks(self):
        return self.blocks_y * self.blocks_x

    def __repr__(self):
        return (f"BlockGrid(out={self.out_h}x{self.out_w}, k={self.kernel_size}, "
                f"s={self.stride}, d={self.dilation}, b={self.block}, L={self.halo})")


def axis_selector(n, blocks, chunk, span, padding=0, fill="reflect"):
    """(n, blocks * span) 0/1 matrix: column t*span + r picks, from an axis of n pixels padded
    by `padding` (reflect: torch's ReflectionPad, the edge not repeated; zero), padded
    position t*chunk + r. Positions past the padded axis (reached by no query's window) are
    zero. Halos: chunk = grid.chunk, span = grid.halo; query blocks: both grid.block."""
    if fill not in ("reflect", "zero"):
        raise ValueError(f"fill must be 'reflect' or 'zero', got {fill!r}")
    if fill == "reflect" and padding > n - 1:
        raise ValueError(f"reflect padding of {padding} needs a size of at least "
                         f"{padding + 1}, got {n}")
    # vectorised, no Python loop: graph mode would unroll one over the blocks
    padded = (np.arange(blocks)[:, None] * chunk + np.arange(span)[None, :]).reshape(-1)
    src = padded - padding
    if fill == "zero":
        valid = (src >= 0) & (src < n)
    else:
        valid = src < n + padding
        src = np.where(src < 0, -src, np.where(src >= n, 2 * (n - 1) - src, src))
    return ((np.arange(n)[:, None] == src[None, :]) & valid[None, :]).astype(np.float32)


def _cut(x, sel_h, sel_w, span):
    """x (N, C, H, W) cut by the constant selectors sel_h (1, by*span, H) and sel_w
    (1, bx*span, W) (transposed axis_selector matrices) into (N * bx * by, span*span, C):
    blocks in (n, tx, ty) order, positions row-major, channel-last.

    Nothing is transposed but by the batched matmuls' own flags: selecting W on x seen as
    (N, C*H, W) with transpose_b gives (N, bx, span, C, H), and selecting H again with
    transpose_b gives the final layout. (A Transpose on MindSpore 2.10's CPU keeps index
    buffers of twice its tensor's size for the graph's lifetime.) The adjoint is _uncut."""
    n, c, h, w = x.shape
    by, bx = sel_h.shape[1] // span, sel_w.shape[1] // span
    t = ops.BatchMatMul(transpose_b=True)(ops.broadcast_to(sel_w, (n, bx * span, w)),
                                          x.reshape(n, c * h, w))           # (n, bx S, C H)
    t = ops.BatchMatMul(transpose_b=True)(ops.broadcast_to(sel_h, (n * bx, by * span, h)),
                                          t.reshape(n * bx, span * c, h))   # (n bx, by S, S C)
    return t.reshape(n * bx * by, span * span, c)


def _uncut(t, sel_h, sel_w, span):
    """The adjoint of _cut: (N * bx * by, span*span, C) -> (N, C, H, W), each block summed
    back onto the pixels its selectors took it from."""
    h, w, c = sel_h.shape[2], sel_w.shape[2], t.shape[2]
    by, bx = sel_h.shape[1] // span, sel_w.shape[1] // span
    n = t.shape[0] // (by * bx)
    t = ops.BatchMatMul(transpose_a=True)(t.reshape(n * bx, by * span, span * c),
                                          ops.broadcast_to(sel_h, (n * bx, by * span, h)))
    t = ops.BatchMatMul(transpose_a=True)(t.reshape(n, bx * span, c * h),
                                          ops.broadcast_to(sel_w, (n, bx * span, w)))
    return t.reshape(n, c, h, w)


# The selectors are BlockGrid methods: graph mode evaluates a method of a plain Python object
# in Python at compile time, where it would compile a function of constant integers as a
# graph (and fail on its `if`s).

def halo_tiles(x, grid, padding=0, fill="reflect"):
    """Tiles of the map x (N, C, H, W) padded by `padding` (reflect or zero fill; 0: x is
    already the padded map), channel-last: (N * num_blocks, L*L, C), position r*L + c of
    block (ty, tx) being padded_x[:, :, ty * chunk + r, tx * chunk + c] (zero past the padded
    map), blocks in (n, tx, ty) order.

    Each axis is one batched matmul with a constant 0/1 selection matrix (axis_selector)
    that does the padding and the overlapping cut into halos at once, whatever the number
    of blocks (see _cut), where slicing halos out costs an operator per block (or, HaloNet's
    chunk-and-concatenate, a dozen slices and copies per map); the backward is the
    transposed matmul, which adds each mirrored pixel's gradient back onto its source
    exactly."""
    return _cut(x, Tensor(grid.halo_selector(0, x.shape[2], padding, fill), x.dtype),
                Tensor(grid.halo_selector(1, x.shape[3], padding, fill), x.dtype), grid.halo)


def halo_tiles_adjoint(tiles, grid, height, width, padding=0, fill="reflect"):
    """The adjoint of halo_tiles (its gradient): tiles (N * num_blocks, L*L, C) summed back
    onto the (N, C, height, width) map they were cut from, mirrored pixels onto their source."""
    return _uncut(tiles, Tensor(grid.halo_selector(0, height, padding, fill), tiles.dtype),
                  Tensor(grid.halo_selector(1, width, padding, fill), tiles.dtype), grid.halo)


def query_blocks(x, grid):
    """Queries x (N, C, out_h, out_w) as (N * num_blocks, b*b, C) in halo_tiles' block order;
    the grid is zero-extended to whole blocks (those queries' results are dropped by
    blocks_to_map)."""
    return _cut(x, Tensor(grid.block_selector(0), x.dtype), Tensor(grid.block_selector(1), x.dtype),
                grid.block)


def blocks_to_map(y, grid):
    """Inverse of query_blocks (and its adjoint): (N * num_blocks, b*b, C) -> (N, C, out_h,
    out_w)."""
    return _uncut(y, Tensor(grid.block_selector(0), y.dtype), Tensor(grid.block_selector(1), y.dtype),
                  grid.block)


def window_index(grid):
    """(b*b, k*k) int64: for query (qy, qx) of a block (row qy*b + qx) and window offset
    j = a*k + c, the flat halo position (qy*s + a*d) * L + qx*s + c*d."""
    b, k, s, d, L = grid.block, grid.kernel_size, grid.stride, grid.dilation, grid.halo
    q = np.arange(b)
    a = np.arange(k)
    rows = q[:, None, None, None] * s + a[None, None, :, None] * d       # (b, 1, k, 1)
    cols = q[None, :, None, None] * s + a[None, None, None, :] * d       # (1, b, 1, k)
    return (rows * L + cols).reshape(b * b, k * k)


def window_mask(grid, value=MASK_VALUE):
    """(b*b, L*L) float32 additive mask: 0 at each query's k*k window positions, `value`
    elsewhere; add it to (..., b*b, L*L) logits before a softmax over the last axis."""
    mask = np.full((grid.block ** 2, grid.halo ** 2), value, np.float32)
    np.put_along_axis(mask, window_index(grid), 0.0, axis=1)
    return mask


def window_selector(grid, dtype=np.float32):
    """(L*L, b*b*k*k) one-hot: selector.T @ tiles (.., L*L, C) -> (.., b*b*k*k, C), every
    query's window in unfold order; the selector itself scatters per-window values back
    onto the halo (for weights per window position, e.g. an aggregation)."""
    index = window_index(grid).reshape(-1)
    sel = np.zeros((grid.halo ** 2, index.size), dtype)
    sel[index, np.arange(index.size)] = 1
    return sel
