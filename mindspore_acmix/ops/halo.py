"""Blocked ("halo") sliding windows: dense batched matmuls instead of kernel_size**2 offsets.

Any sliding-window operator over a k x k (dilated, strided) window can be computed block by
block: cut the query grid into b x b blocks; every window of a block's queries lies inside one
square "halo" of the padded map, of side

    L = (b - 1) * stride + (k - 1) * dilation + 1,

so a block's queries against its halo is one dense (b*b, L*L) problem (a batched matmul on
Ascend's Cube units and GPUs' tensor cores), and a constant (b*b, L*L) pattern says which
halo positions are in which query's window. Memory is bounded by the shapes: one tile of L*L
per block instead of k*k copies of the map.

The tiles are HaloNet's (Vaswani et al., 2021) blocked halos, cut block-locally: along each
axis one Gather with a constant (blocks, L) index takes halo t's L pixels from padded position
t * chunk on (chunk = b * stride, where neighbouring halos start), the reflection padding
folded into the index. So the work per pixel is O(L), independent of the map's size (the
earlier cut, a 0/1 selection matmul over a whole axis broadcast to every batch x head slice,
cost O(H + W) per pixel: 27x the attention itself at 256x256), no constant is larger than
blocks x L, and each map costs a fixed number of graph operators (Gather, one Transpose,
reshapes; the adjoint UnsortedSegmentSum and Transposes: no Im2Col, PadV3 or loop over
blocks), which export to MindIR and ONNX (Gather).

API (used by ops.local_attention "halo" and ops.san "halo"):

    grid = BlockGrid(height, width, kernel_size, stride, dilation, block)
    qb = query_blocks(x, grid)           # (N, C, out_h, out_w) -> (N*nb, b*b, C)
    tiles = halo_tiles(x, grid, p)       # (N, C, H, W) reflect-padded by p -> (N*nb, L*L, C)
    x = halo_tiles_adjoint(tiles, grid, H, W, p)   # its adjoint (the gradient of halo_tiles)
    y = blocks_to_map(yb, grid)          # (N*nb, b*b, C) -> (N, C, out_h, out_w)
    window_mask(grid)                    # (b*b, L*L) float32: 0 in the window, MASK_VALUE out
    window_index(grid)                   # (b*b, k*k) int: halo position of window offset j
    window_pixels(n, k, stride, dilation) # (out, k): the pixel window position a of query i reads

where nb = grid.blocks_y * grid.blocks_x, block index = (n, block column, block row) in that
order (the column is cut first, while the channels still lead), halo and block positions are
row-major, and window offset j = a * k + c is window row a, column c (row-major, as
ops.unfold). Tiles and blocks are channel-last: (.., positions, C) is what the batched
matmuls of an attention take without a transpose.

The constants come from BlockGrid methods (graph mode runs a plain Python object's method in
Python while it compiles), so a Cell's construct and its bprop may both call these functions.
"""
import numpy as np
from mindspore import Tensor, ops

from ..checks import ceil_div


# The additive mask: exp(MASK_VALUE - max) is 0 in float32 and float16, and the value itself
# is finite in float16 (max 65504), so a mask cast to half precision stays a mask.
MASK_VALUE = -30000.0


def out_size(n, stride):
    """Query positions along an axis of n pixels: ceil(n / stride)."""
    return ceil_div(n, stride)


def default_block(kernel_size, stride=1, dilation=1):
    """The block side used when none is given: 4 at stride 1, 3 at larger strides.

    The trade-off: the logits and the aggregation cost L*L per query (L = (b - 1) * stride
    + (k - 1) * dilation + 1 grows with b), the tiles (L / (b * stride))**2 pixels per pixel
    of the map (they shrink with b). For kernel 7, b = 4 makes the blocked attention
    (10/7)**2 = 2.0 times the sliding window's multiply-accumulates at stride 1; at stride 2
    it would be (13/7)**2 = 3.4, b = 3 gives (11/7)**2 = 2.5. Measured for the ACmix layer
    at 64@56x56, batch 8, kernel 7 (stride 1, graph mode, 2-core CPU, fwd+bwd, peak memory
    growth of the layer, with the recomputing backward): b = 4 799 MB, b = 6 832 MB,
    b = 8 853 MB."""
    return 4 if stride == 1 else 3


def reflect_index(padded, n, padding):
    """int32 pixels of an n-pixel axis at the `padded` positions (an array) of that axis
    reflect-padded by `padding` (torch's ReflectionPad: the edge not repeated). Positions past
    the padded axis, read by no query's window, repeat its last pixel (masked or weighted 0
    by the callers)."""
    if padding > n - 1:
        raise ValueError(f"reflect padding of {padding} needs a size of at least "
                         f"{padding + 1}, got {n}")
    src = np.minimum(padded - padding, n - 1 + padding)
    return np.where(src < 0, -src, np.where(src >= n, 2 * (n - 1) - src, src)).astype(np.int32)


def window_pixels(n, kernel_size, stride=1, dilation=1):
    """(ceil(n / stride), k) int32: the pixel of an n-pixel axis that window position a of
    query i reads, i * stride + a * dilation of the axis reflect-padded by
    dilation * (k - 1) / 2."""
    padded = (np.arange(out_size(n, stride))[:, None] * stride
              + np.arange(kernel_size)[None, :] * dilation)
    return reflect_index(padded, n, dilation * (kernel_size - 1) // 2)


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

    def halo_index(self, axis, n, padding=0):
        """(blocks, L) int32: the pixel of an n-pixel axis (0: rows, 1: columns) at position
        r of halo t, that is at padded position t * chunk + r (reflect_index)."""
        blocks = self.blocks_y if axis == 0 else self.blocks_x
        return reflect_index(np.arange(blocks)[:, None] * self.chunk
                             + np.arange(self.halo)[None, :], n, padding)

    @property
    def num_blocks(self):
        return self.blocks_y * self.blocks_x

    def __repr__(self):
        return (f"BlockGrid(out={self.out_h}x{self.out_w}, k={self.kernel_size}, "
                f"s={self.stride}, d={self.dilation}, b={self.block}, L={self.halo})")


def halo_tiles(x, grid, padding=0):
    """Tiles of the map x (N, C, H, W) reflect-padded by `padding` (torch's ReflectionPad,
    the edge not repeated; 0: x is already the padded map), channel-last:
    (N * num_blocks, L*L, C), position r*L + c of block (ty, tx) being
    padded_x[:, :, ty * chunk + r, tx * chunk + c], blocks in (n, tx, ty) order.

    One Gather per axis with a constant (blocks, L) index (BlockGrid.halo_index) that pads,
    cuts and overlaps at once, and one Transpose (of the map times L / chunk) between them
    that brings the channels last. The backward is halo_tiles_adjoint (autodiff's, for the
    callers that let it differentiate, is the same scatter-add)."""
    n, c = x.shape[0], x.shape[1]
    span = grid.halo
    x = ops.gather(x, Tensor(grid.halo_index(1, x.shape[3], padding)), 3)   # (N, C, H, bx, L)
    x = ops.gather(x.transpose(0, 3, 2, 4, 1),                               # (N, bx, H, L, C)
                   Tensor(grid.halo_index(0, x.shape[2], padding)), 2)     # (N, bx, by, L, L, C)
    return x.reshape(n * grid.num_blocks, span * span, c)


def halo_tiles_adjoint(tiles, grid, height, width, padding=0):
    """The adjoint of halo_tiles (its gradient): tiles (N * num_blocks, L*L, C) summed back
    onto the (N, C, height, width) map they were cut from, mirrored pixels onto their source
    (UnsortedSegmentSum over the halo indices, which it takes on leading axes)."""
    span, bx, by, c = grid.halo, grid.blocks_x, grid.blocks_y, tiles.shape[2]
    n = tiles.shape[0] // grid.num_blocks
    t = tiles.reshape(n, bx, by, span, span, c).transpose(2, 3, 0, 1, 4, 5)  # (by, L, N, bx, L, C)
    t = ops.unsorted_segment_sum(t, Tensor(grid.halo_index(0, height, padding)), height)
    t = ops.unsorted_segment_sum(t.transpose(2, 3, 1, 4, 0),                # (bx, L, N, C, H)
                                 Tensor(grid.halo_index(1, width, padding)), width)
    return t.transpose(1, 2, 3, 0)                                           # (N, C, H, W)


def query_blocks(x, grid):
    """Queries x (N, C, out_h, out_w) as (N * num_blocks, b*b, C) in halo_tiles' block order;
    the grid is zero-extended to whole blocks (those queries' results are dropped by
    blocks_to_map)."""
    n, c = x.shape[0], x.shape[1]
    b, bx, by = grid.block, grid.blocks_x, grid.blocks_y
    x = ops.Pad(((0, 0), (0, 0), (0, by * b - grid.out_h), (0, bx * b - grid.out_w)))(x)
    x = x.reshape(n, c, by, b, bx, b).transpose(0, 4, 2, 3, 5, 1)
    return x.reshape(n * bx * by, b * b, c)


def blocks_to_map(y, grid):
    """Inverse of query_blocks (and its adjoint): (N * num_blocks, b*b, C) -> (N, C, out_h,
    out_w)."""
    b, bx, by, c = grid.block, grid.blocks_x, grid.blocks_y, y.shape[2]
    n = y.shape[0] // (bx * by)
    y = y.reshape(n, bx, by, b, b, c).transpose(0, 5, 2, 3, 1, 4)
    return y.reshape(n, c, by * b, bx * b)[:, :, :grid.out_h, :grid.out_w]


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
