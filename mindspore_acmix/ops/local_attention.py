"""Sliding-window (SAN/SASA-style) local attention of the ResNet ACmix layer.

Every implementation is a Cell built as `cls(kernel_size, stride, dilation)` and called as

    attention(q, k, v, pe) -> out

q, k, v: (B*heads, head_dim, H, W), q already multiplied by head_dim ** -0.5;
pe: (1, head_dim, H, W), the positional encoding shared by all heads.
out: (B*heads, head_dim, ceil(H / stride), ceil(W / stride)).

For query position i and window position j (the k x k window around i, dilated,
with reflection padding at the borders):

    logit_ij = q_i . (k_j + pe_i - pe_j),  out_i = sum_j softmax_j(logit_ij) v_j

q_i . pe_i is the same for every j of query i, so it cancels in the softmax (and its
gradient is exactly zero): the fast implementations attend with kp = k - pe instead,
which is one extra feature map rather than a second window of positional encodings.

Implementations (ACmix(attn_impl=...) picks one by name; mindspore_acmix.implementations lists
them and resolves "auto"):
- "halo" (here): blocked attention (ops.halo): per b x b block of queries, one batched matmul
  against the block's halo of the padded k - pe, a constant window mask, a softmax and one
  batched matmul with the halo of v; its own backward recomputes the tiles and the
  probabilities. Standard operators only, a fixed number of them whatever the map size,
  memory bounded by the tensor shapes: the path for Ascend, GPU and every export (MindIR,
  ONNX, the Ascend 310 graph).
- "aot" (mindspore_acmix.cpu.attention): C++ CPU kernels run as MindSpore AOT Custom ops,
  compiled on first use. The fastest on CPU; a MindIR using it loads only on a machine with
  the same library, and it cannot be exported to ONNX.
- "unfold" (ops.references): the official code's formulation, the reference that tests and
  benchmarks compare against.
- "auto": "aot" on CPU when the kernel builds, "halo" everywhere else, resolved for the
  device the layer runs on (layers.placement).
"""
import mindspore as ms
from mindspore import Tensor, nn, ops

from . import halo


def subsample(x, stride):
    """x[:, :, ::stride, ::stride]; ops.strided_slice because the gradient of a
    stepped Python slice on a non-last axis fails in PyNative mode on CPU."""
    if stride == 1:
        return x
    return ops.strided_slice(x, (0,) * x.ndim, x.shape, (1,) * (x.ndim - 2) + (stride, stride))


def window_padding(kernel_size, dilation):
    """Reflection padding that keeps the window centred: dilation * (kernel_size - 1) / 2."""
    return dilation * (kernel_size - 1) // 2


class SlidingWindow(nn.Cell):
    """Base of every sliding-window operator (these local attentions, ops.san's SAN
    operators): the window geometry, built as cls(kernel_size, stride, dilation)."""

    def __init__(self, kernel_size, stride=1, dilation=1):
        super().__init__()
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.padding = window_padding(kernel_size, dilation)


class LocalAttention(SlidingWindow):
    """Base of the implementations, called as attention(q, k, v, pe)."""


class _Float32(nn.Cell):
    """A cell that runs in float32 whatever precision the network runs in.

    Under AMP O2 (MindSpore's auto_mixed_precision calls to_float(float16) on every cell and
    then casts the inputs of every operator inside) an explicit cast in construct does not
    survive, so these cells pin their own precision: to_float always means float32 here, and
    the cast of their inputs is the one MindSpore inserts."""

    def to_float(self, dst_type):
        return super().to_float(ms.float32)


class Float32Scores(_Float32):
    """softmax(queries @ keys.T + mask) in float32: q . k over head_dim can overflow float16,
    and adding the mask to half-precision logits would round them.

    The mask is added by BiasAdd on the (blocks, b*b*L*L) view: MindSpore 2.10's CPU kernel of
    a broadcasting Add allocates about five times its output (index buffers), BiasAdd only
    its output."""

    def __init__(self):
        super().__init__()
        self.matmul = ops.BatchMatMul(transpose_b=True)
        self.bias_add = ops.BiasAdd()
        self.softmax = ops.Softmax(axis=-1)

    def construct(self, queries, keys, mask):
        logits = self.matmul(queries.astype(ms.float32), keys.astype(ms.float32))
        shape = logits.shape
        return self.softmax(self.bias_add(logits.reshape(shape[0], -1), mask).reshape(shape))


class Float32ScoreGrads(_Float32):
    """The gradients of the queries and keys of Float32Scores, in float32. prob: its output;
    douts, values: the value gradients and values augmented so that douts @ values.T is
    dP - (dP . prob) per query (see _HaloCore.bprop): the softmax backward is then a single
    product, with no broadcasting subtraction (allocating like Add, above)."""

    def __init__(self):
        super().__init__()
        self.dprob = ops.BatchMatMul(transpose_b=True)
        self.dqueries = ops.BatchMatMul()
        self.dkeys = ops.BatchMatMul(transpose_a=True)

    def construct(self, prob, douts, values, queries, keys):
        f32 = ms.float32
        dlogits = prob * self.dprob(douts.astype(f32), values.astype(f32))
        return self.dqueries(dlogits, keys.astype(f32)), self.dkeys(dlogits, queries.astype(f32))


class _HaloCore(LocalAttention):
    """Blocked attention of the queries qs (already subsampled) over the maps kp = k - pe and
    v (unpadded: halo_tiles pads). Its backward recomputes the tiles and the probabilities
    instead of keeping them: nothing the size of the tiles or the logits lives from the
    forward to the backward, and the softmax backward, g = p * (dP - sum_j p_j dP_j), takes
    sum_j p_j dP_j = dout . out per query from the output, folded into the dP matmul as one
    extra channel (dout with -dout . out, v with ones).

    construct and bprop share only helpers without an `if` (see ops.halo)."""

    def __init__(self, kernel_size, stride=1, dilation=1, block=None):
        super().__init__(kernel_size, stride, dilation)
        self.block = block
        self.scores = Float32Scores()
        self.score_grads = Float32ScoreGrads()
        self.values_matmul = ops.BatchMatMul()
        self.dvalues = ops.BatchMatMul(transpose_a=True)
        self.concat = ops.Concat(1)

    def _grid(self, x):
        return halo.BlockGrid(x.shape[2], x.shape[3], self.kernel_size, self.stride,
                              self.dilation, self.block)

    def construct(self, qs, kp, v):
        grid = self._grid(kp)
        mask = Tensor(halo.window_mask(grid).reshape(-1))
        prob = self.scores(halo.query_blocks(qs, grid), halo.halo_tiles(kp, grid, self.padding),
                           mask)
        values = halo.halo_tiles(v, grid, self.padding)
        return halo.blocks_to_map(self.values_matmul(prob.astype(values.dtype), values), grid)

    def bprop(self, qs, kp, v, out, dout):
        n, h, w = kp.shape[0], kp.shape[2], kp.shape[3]
        grid = self._grid(kp)
        mask = Tensor(halo.window_mask(grid).reshape(-1))
        queries = halo.query_blocks(qs, grid)
        keys = halo.halo_tiles(kp, grid, self.padding)
        prob = self.scores(queries, keys, mask)
        douts = halo.query_blocks(dout, grid)
        dv = halo.halo_tiles_adjoint(self.dvalues(prob.astype(douts.dtype), douts), grid, h, w,
                                     self.padding)
        centre = (dout * out).sum(1, keepdims=True)
        dqueries, dkeys = self.score_grads(
            prob, halo.query_blocks(self.concat((dout, -centre)), grid),
            halo.halo_tiles(self.concat((v, ops.ones((n, 1, h, w), v.dtype))), grid,
                            self.padding),
            queries, keys)
        dkp = halo.halo_tiles_adjoint(dkeys, grid, h, w, self.padding)
        return (halo.blocks_to_map(dqueries, grid).astype(qs.dtype), dkp.astype(kp.dtype),
                dv.astype(v.dtype))


class HaloLocalAttention(LocalAttention):
    """Blocked local attention (ops.halo): per b x b block of queries, one batched matmul
    against the block's halo of the padded k - pe, a constant mask that keeps each query's
    window, a softmax and one batched matmul with the halo of v. Standard operators only, a
    fixed number of them whatever the map size; its own backward (_HaloCore.bprop), which
    recomputes the tiles and probabilities instead of keeping them.

    Precision: logits, mask, softmax and their backward in float32 (Float32Scores,
    Float32ScoreGrads); the value aggregation and its gradient are convex combinations or
    sums of probability-weighted values, which cannot overflow, so they run in the input
    dtype.

    block: the query block side (default: ops.halo.default_block)."""

    def __init__(self, kernel_size, stride=1, dilation=1, block=None):
        super().__init__(kernel_size, stride, dilation)
        self.core = _HaloCore(kernel_size, stride, dilation, block)

    def construct(self, q, k, v, pe):
        return self.core(subsample(q, self.stride), k - pe, v)
