"""Blocked ("halo") sliding windows: dense batched matmuls instead of kernel_size**2 offsets.

Any sliding-window operator over a k x k (dilated, strided) window can be computed block by
block: cut the query grid into b x b blocks; every window of a block's queries lies inside one
square "halo" of the padded map, of side

    L = (b - 1) * stride + (k - 1) * dilation + 1,

so a block's queries against its halo is one dense (b*b, L*L) problem (a batched matmul on
Ascend's Cube units and GPUs' tensor cores), and a constant (b*b, L*L) pattern says which
halo positions are in which query's window. Memory is bounded by the shapes: one tile of L*L
per block instead of k*k copies of the map.

The tiles are HaloNet's (Vaswani et al., 2021) blocked halos, cut block-locally: each padded
axis is reshaped into chunks of b * stride pixels (where neighbouring halos start), and a
block's halo is its own chunk followed by the first L - chunk pixels of the next ones, n + 1
slices joined by one concat whatever the number of blocks. So the work per pixel is O(L),
independent of the map's size (a selection matmul over a whole axis costs O(H + W) per pixel:
27x the attention itself at 256x256), there is no constant as large as the map, and each map
costs a fixed number of graph operators (Slice, Concat, Pad, one Transpose, reshapes: no
Im2Col, PadV3, Gather or loop over blocks), which export to MindIR and ONNX.

API (used by ops.local_attention "halo" and ops.san "halo"):

    grid = BlockGrid(height, width, kernel_size, stride, dilation, block)
    qb = query_blocks(x, grid)           # (N, C, out_h, out_w) -> (N*nb, b*b, C)
    tiles = halo_tiles(x, grid, p)       # (N, C, H, W) reflect-padded by p -> (N*nb, L*L, C)
    x = halo_tiles_adjoint(tiles, grid, H, W, p)   # its adjoint (the gradient of halo_tiles)
    y = blocks_to_map(yb, grid)          # (N*nb, b*b, C) -> (N, C, out_h, out_w)
    window_mask(grid)                    # (b*b, L*L) float32: 0 in the window, MASK_VALUE out
    window_index(grid)                   # (b*b, k*k) int: halo position of window offset j
    window_selector(grid)                # (L*L, b*b*k*k) one-hot: S.T @ tiles = the k*k windows

where nb = grid.blocks_y * grid.blocks_x, block index = (n, block column, block row) in that
order (the column is cut first, while the channels still lead), halo and block positions are
row-major, and window offset j = a * k + c is window row a, column c (row-major, as
ops.unfold). Tiles and blocks are channel-last: (.., positions, C) is what the batched
matmuls of an attention take without a transpose.

Branches here are on shapes only (Python constants while a graph compiles): a Cell's
construct and its bprop may both call these functions.
"""
import numpy as np
from mindspore import ops


# The additive mask: exp(MASK_VALUE - max) is 0 in float32 and float16, and the value itself
# is finite in float16 (max 65504), so a mask cast to half precision stays a mask.
MASK_VALUE = -30000.0


def out_size(n, stride):
    """Query positions along an axis of n pixels: ceil(n / stride)."""
    return -(-n // stride)


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

    def extent(self, axis):
        """Pixels of the padded axis (0: rows, 1: columns) that the halos read, zero-extended
        to whole chunks: the blocks' own chunks and the neighbours the last one reaches."""
        blocks = self.blocks_y if axis == 0 else self.blocks_x
        return (blocks + self.neighbours) * self.chunk

    @property
    def num_blocks(self):
        return self.blocks_y * self.blocks_x

    def __repr__(self):
        return (f"BlockGrid(out={self.out_h}x{self.out_w}, k={self.kernel_size}, "
                f"s={self.stride}, d={self.dilation}, b={self.block}, L={self.halo})")


def _pad_to(x, axis, padding, total, fill):
    """x padded by `padding` along `axis` on both sides (reflect: torch's ReflectionPad, the
    edge not repeated; or zero), then zero-extended or cut to `total` pixels."""
    n = x.shape[axis]
    if fill not in ("reflect", "zero"):
        raise ValueError(f"fill must be 'reflect' or 'zero', got {fill!r}")
    if fill == "reflect" and padding > n - 1:
        raise ValueError(f"reflect padding of {padding} needs a size of at least "
                         f"{padding + 1}, got {n}")
    zero = padding if fill == "zero" else 0
    if fill == "reflect" and padding:
        # single rows joined by one concat: Slice and Concat export everywhere (PadV3 and
        # MirrorPad do not)
        x = ops.concat(tuple(ops.narrow(x, axis, i, 1) for i in range(padding, 0, -1)) + (x,)
                       + tuple(ops.narrow(x, axis, i, 1) for i in range(n - 2, n - 2 - padding,
                                                                            -1)), axis)
    extra = total - n - 2 * padding
    if zero or extra > 0:
        amounts = [(0, 0)] * x.ndim
        amounts[axis] = (zero, zero + max(extra, 0))
        x = ops.Pad(tuple(amounts))(x)
    if extra < 0:  # the last padded pixels, read by no window at this stride
        x = ops.narrow(x, axis, 0, total)
    return x


def _pad_to_adjoint(g, axis, n, padding, fill):
    """The adjoint of _pad_to: g (`total` pixels along `axis`) summed back onto the n pixels
    of x, each mirrored pixel's gradient onto its source."""
    total = g.shape[axis]
    extra = total - n - 2 * padding
    if extra < 0:
        amounts = [(0, 0)] * g.ndim
        amounts[axis] = (0, -extra)
        g = ops.Pad(tuple(amounts))(g)
    out = ops.narrow(g, axis, padding, n)
    if fill == "reflect" and padding:
        # padded pixel i < padding came from x's pixel padding - i; padded pixel
        # padding + n + i from x's pixel n - 2 - i
        top = tuple(ops.narrow(g, axis, i, 1) for i in range(padding - 1, -1, -1))
        bottom = tuple(ops.narrow(g, axis, i, 1)
                       for i in range(2 * padding + n - 1, padding + n - 1, -1))
        amounts = [(0, 0)] * g.ndim
        amounts[axis] = (1, n - 1 - padding)
        out = out + ops.Pad(tuple(amounts))(ops.concat(top, axis))
        amounts[axis] = (n - 1 - padding, 1)
        out = out + ops.Pad(tuple(amounts))(ops.concat(bottom, axis))
    return out


def _pieces(chunk, span):
    """(offset, length) in chunks of a halo of `span` pixels that starts at a chunk: its own
    chunk and the next ones, the last one cut to what the halo reaches."""
    return tuple((j, min(chunk, span - j * chunk)) for j in range(out_size(span, chunk)))


def _gather(x, blocks, chunk, span, row):
    """x (M, chunks, chunk * row) -> (M, blocks, span * row): block t is chunk t and the
    next ones, `span` pixels (of `row` values each) in all."""
    return ops.concat(tuple(x[:, j:j + blocks, :length * row]
                            for j, length in _pieces(chunk, span)), 2)


def _scatter(t, chunks, chunk, span, row):
    """The adjoint of _gather: t (M, blocks, span * row) added back onto (M, chunks,
    chunk * row)."""
    blocks, out = t.shape[1], None
    for j, length in _pieces(chunk, span):
        piece = ops.Pad(((0, 0), (j, chunks - blocks - j), (0, (chunk - length) * row)))(
            t[:, :, j * chunk * row:(j * chunk + length) * row])
        out = piece if out is None else out + piece
    return out


def halo_tiles(x, grid, padding=0, fill="reflect"):
    """Tiles of the map x (N, C, H, W) padded by `padding` (reflect or zero fill; 0: x is
    already the padded map), channel-last: (N * num_blocks, L*L, C), position r*L + c of
    block (ty, tx) being padded_x[:, :, ty * chunk + r, tx * chunk + c] (zero past the padded
    map), blocks in (n, tx, ty) order.

    Columns first: x as (N*C*H, chunks, chunk) gathers each block column's halo; one
    transpose (of the map times L / chunk) brings the channels last; then the rows are cut the
    same way on (N * bx, chunks, chunk * L * C). The backward is halo_tiles_adjoint."""
    n, c, h, w = x.shape
    span, chunk, bx, by = grid.halo, grid.chunk, grid.blocks_x, grid.blocks_y
    th, tw = grid.extent(0), grid.extent(1)
    x = _pad_to(_pad_to(x, 2, padding, th, fill), 3, padding, tw, fill)
    x = _gather(x.reshape(n * c * th, tw // chunk, chunk), bx, chunk, span, 1)
    x = x.reshape(n, c, th, bx, span).transpose(0, 3, 2, 4, 1)    # (N, bx, th, L, C)
    x = _gather(x.reshape(n * bx, th // chunk, chunk * span * c), by, chunk, span, span * c)
    return x.reshape(n * bx * by, span * span, c)


def halo_tiles_adjoint(tiles, grid, height, width, padding=0, fill="reflect"):
    """The adjoint of halo_tiles (its gradient): tiles (N * num_blocks, L*L, C) summed back
    onto the (N, C, height, width) map they were cut from, mirrored pixels onto their source."""
    span, chunk, bx, by = grid.halo, grid.chunk, grid.blocks_x, grid.blocks_y
    th, tw = grid.extent(0), grid.extent(1)
    c = tiles.shape[2]
    n = tiles.shape[0] // (bx * by)
    t = _scatter(tiles.reshape(n * bx, by, span * span * c), th // chunk, chunk, span, span * c)
    t = t.reshape(n, bx, th, span, c).transpose(0, 4, 2, 1, 3)    # (N, C, th, bx, L)
    t = _scatter(t.reshape(n * c * th, bx, span), tw // chunk, chunk, span, 1)
    t = t.reshape(n, c, th, tw)
    return _pad_to_adjoint(_pad_to_adjoint(t, 3, width, padding, fill), 2, height, padding,
                           fill)


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


def window_selector(grid, dtype=np.float32):
    """(L*L, b*b*k*k) one-hot: selector.T @ tiles (.., L*L, C) -> (.., b*b*k*k, C), every
    query's window in unfold order; the selector itself scatters per-window values back
    onto the halo (for weights per window position, e.g. an aggregation)."""
    index = window_index(grid).reshape(-1)
    sel = np.zeros((grid.halo ** 2, index.size), dtype)
    sel[index, np.arange(index.size)] = 1
    return sel
