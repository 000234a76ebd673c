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

Implementations (ACmix(attn_impl=...) picks one by name):
- "unfold": the reference, the official code's formulation. It materialises the padded
  keys, values and encodings unfolded into kernel_size**2 copies, forward and backward.
- "stream": standard graph operators streaming over the kernel_size**2 window offsets, with
  its own backward (a Cell bprop that recomputes the probabilities). Kept as a named
  reference that the benchmarks measure beside "halo": its graph unrolls every offset
  (about 1,270 forward + backward operators per layer) and, measured on MindSpore 2.10 CPU,
  the executor keeps the per-offset intermediates alive (6.2 GB at 64@56x56, batch 8).
- "halo": blocked attention (ops.halo): per b x b block of queries, one batched matmul
  against the block's halo of the padded k - pe, a constant window mask, a softmax and one
  batched matmul with the halo of v; its own backward recomputes the tiles and the
  probabilities. Standard operators only (BatchMatMul, BiasAdd, Softmax, Mul, reshape,
  broadcast_to, concat), a fixed number of them whatever the map size, memory bounded by
  the tensor shapes: the path for Ascend, GPU and every export (MindIR, ONNX, the Ascend
  310 graph).
- "aot": C++ CPU kernels (kernels/local_attention_cpu.cc, OpenMP) run as MindSpore AOT
  Custom ops, compiled with the machine's C++ compiler on first use and cached (see
  aot_build). The fastest on CPU. A MindIR using it stores the library's absolute path,
  so it loads in a fresh process on the same machine, but it cannot be exported to ONNX.
- "auto": "aot" on CPU when the kernel builds (else "halo", with a warning, once, saying
  why the kernel is unavailable); "halo" on every other device.

An ACmix layer resolves "auto" for the device target it is built under and again for the
one it runs under (layers.placement).
"""
import warnings

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops

from . import halo
from .aot_build import aot_op, kernel_unavailable_reason, require_kernel
from .precision import Float32Cell
from .shift import reflect_pad2d


def subsample(x, stride):
    """x[:, :, ::stride, ::stride]; ops.strided_slice because the gradient of a
    stepped Python slice on a non-last axis fails in PyNative mode on CPU."""
    if stride == 1:
        return x
    return ops.strided_slice(x, (0,) * x.ndim, x.shape, (1,) * (x.ndim - 2) + (stride, stride))


def window_padding(kernel_size, dilation):
    """Reflection padding that keeps the window centred: dilation * (kernel_size - 1) / 2."""
    return dilation * (kernel_size - 1) // 2


def local_attention_unfold(q, k, v, pe, kernel_size, stride, dilation):
    """Reference implementation, the official code's formulation: it unfolds the
    padded keys, values and positional encodings into kernel_size**2 copies."""
    bn, d = q.shape[0], q.shape[1]
    pad = window_padding(kernel_size, dilation)
    q = subsample(q, stride)
    q_pe = subsample(pe, stride)
    ho, wo = q.shape[2], q.shape[3]
    kk = kernel_size * kernel_size

    def windows(x):
        cols = ops.unfold(reflect_pad2d(x, pad), kernel_size, dilation, 0, stride)
        return cols.view(x.shape[0], d, kk, ho, wo)

    att = (q.expand_dims(2) * (windows(k) + q_pe.expand_dims(2) - windows(pe))).sum(1)
    att = ops.softmax(att, axis=1)
    return (att.expand_dims(1) * windows(v)).sum(2).view(bn, d, ho, wo)




def window(xp, a, b, out_h, out_w, stride, dilation):
    """Window position (a, b) of every query: xp[..., a*dil + y*stride, b*dil + x*stride]
    for the out_h x out_w query grid, xp being the padded map."""
    y0, x0 = a * dilation, b * dilation
    return ops.strided_slice(xp, (0, 0, y0, x0),
                             (xp.shape[0], xp.shape[1], y0 + (out_h - 1) * stride + 1,
                              x0 + (out_w - 1) * stride + 1), (1, 1, stride, stride))


def spread(x, stride):
    """Adjoint of subsample for an (n, c, h, w) grid: x at multiples of stride, zeros between;
    size ((h - 1) * stride + 1, (w - 1) * stride + 1)."""
    if stride == 1:
        return x
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1)
    x = ops.concat((x, ops.zeros((n, c, h, 1, w, stride - 1), x.dtype)), 5)
    x = ops.concat((x, ops.zeros((n, c, h, stride - 1, w, stride), x.dtype)), 3)
    return x.reshape(n, c, h * stride, w * stride)[:, :, :(h - 1) * stride + 1,
                                                      :(w - 1) * stride + 1]


def place(x, top, left, height, width):
    """Zero-pad x into a (height, width) map with its origin at (top, left)."""
    if (top, left, height, width) == (0, 0, x.shape[2], x.shape[3]):
        return x
    return ops.pad(x, (left, width - left - x.shape[3], top, height - top - x.shape[2]))


class SlidingWindow(nn.Cell):
    """Base of every sliding-window operator (these local attentions, ops.san's SAN
    operators): the window geometry, built as cls(kernel_size, stride, dilation)."""

    def __init__(self, kernel_size, stride=1, dilation=1):
        super().__init__()
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.padding = window_padding(kernel_size, dilation)


class LocalAttention(SlidingWindow):
    """Base of the implementations, called as attention(q, k, v, pe)."""


class UnfoldLocalAttention(LocalAttention):
    """The reference formulation (local_attention_unfold), k**2 times the memory."""

    def construct(self, q, k, v, pe):
        return local_attention_unfold(q, k, v, pe, self.kernel_size, self.stride, self.dilation)


class _StreamCore(LocalAttention):
    """Attention of the queries qs (already subsampled) over the padded maps kpp (of
    kp = k - pe) and vpp, looping over window offsets. Its backward recomputes the
    probabilities from qs and kpp instead of keeping kernel_size**2 per-offset products;
    padding and subsampling stay outside, where autodiff takes their adjoints.

    construct and bprop share no helper that contains an `if` (ops.softmax has one): in
    graph mode MindSpore 2.10 fails on such a helper with "The func graph is empty", so
    the softmax is a primitive."""

    def __init__(self, kernel_size, stride=1, dilation=1):
        super().__init__(kernel_size, stride, dilation)
        self.softmax = ops.Softmax(axis=1)

    def _logits(self, a, xp):
        """sum_c a * window_j(xp) for every offset j: (n, kernel_size**2, ho, wo)."""
        ho, wo, s, dil, ks = a.shape[2], a.shape[3], self.stride, self.dilation, self.kernel_size
        # a tuple, not a list: ONNX export cannot convert MindSpore's make_list
        return ops.concat(tuple((a * window(xp, j // ks, j % ks, ho, wo, s, dil))
                                .sum(1, keepdims=True) for j in range(ks * ks)), 1)

    def _gather(self, weights, xp):
        """sum_j weights[:, j] * window_j(xp)."""
        ho, wo, s, dil, ks = weights.shape[2], weights.shape[3], self.stride, self.dilation, \
            self.kernel_size
        out = weights[:, 0:1] * window(xp, 0, 0, ho, wo, s, dil)
        for j in range(1, ks * ks):
            out = out + weights[:, j:j + 1] * window(xp, j // ks, j % ks, ho, wo, s, dil)
        return out

    def _scatter(self, weights, x, height, width):
        """Adjoint of _gather with respect to xp: sum_j weights[:, j] * x placed at window j."""
        ks, dil = self.kernel_size, self.dilation
        out = None
        for j in range(ks * ks):
            term = place(spread(weights[:, j:j + 1] * x, self.stride), (j // ks) * dil,
                         (j % ks) * dil, height, width)
            out = term if out is None else out + term
        return out

    def construct(self, qs, kpp, vpp):
        return self._gather(self.softmax(self._logits(qs, kpp)), vpp)

    def bprop(self, qs, kpp, vpp, out, dout):
        hp, wp = kpp.shape[2], kpp.shape[3]
        prob = self.softmax(self._logits(qs, kpp))
        # softmax backward; sum_j p_j dP_j = dout . out needs no second pass over offsets
        grad_logits = prob * (self._logits(dout, vpp) - (dout * out).sum(1, keepdims=True))
        return (self._gather(grad_logits, kpp), self._scatter(grad_logits, qs, hp, wp),
                self._scatter(prob, dout, hp, wp))


class StreamLocalAttention(LocalAttention):
    """Standard graph operators streaming over window offsets (see the module docstring)."""

    def __init__(self, kernel_size, stride=1, dilation=1):
        super().__init__(kernel_size, stride, dilation)
        self.core = _StreamCore(kernel_size, stride, dilation)

    def construct(self, q, k, v, pe):
        return self.core(subsample(q, self.stride), reflect_pad2d(k - pe, self.padding),
                         reflect_pad2d(v, self.padding))


class Float32Scores(Float32Cell):
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


class Float32ScoreGrads(Float32Cell):
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


_AOT_SOURCE = "local_attention_cpu.cc"


def aot_unavailable_reason(device=None):
    """Why "aot" cannot be used on `device` (default: the current device target), or None."""
    return kernel_unavailable_reason(_AOT_SOURCE, device)


class AotLocalAttention(LocalAttention):
    """The C++ CPU kernels as Custom ops: the forward saves only the per-query log-sum-exp,
    the backward op recomputes the probabilities."""

    def __init__(self, kernel_size, stride=1, dilation=1):
        super().__init__(kernel_size, stride, dilation)
        lib = require_kernel(_AOT_SOURCE, "attn_impl")

        def out_size(n):
            return -(-n // stride)

        def fwd_shape(q, kp, v, cfg):
            return ([q[0], q[1], out_size(q[2]), out_size(q[3])],
                    [q[0], out_size(q[2]), out_size(q[3])])

        def fwd_dtype(q, kp, v, cfg):
            return q, q

        def bwd_shape(q, kp, v, cfg, out, lse, dout):
            return q, q, q

        def bwd_dtype(q, kp, v, cfg, out, lse, dout):
            return q, q, q

        geometry = (kernel_size, stride, dilation)
        bwd = aot_op(lib, "AcmixLocalAttnBwd", bwd_shape, bwd_dtype, geometry)

        def bprop(q, kp, v, cfg, out, dout):
            # dout[1] (the log-sum-exp's gradient) is dropped: construct never returns lse.
            dq, dkp, dv = bwd(q, kp, v, cfg, out[0], out[1], dout[0])
            return dq, dkp, dv, ops.zeros_like(cfg)

        self.fwd = aot_op(lib, "AcmixLocalAttnFwd", fwd_shape, fwd_dtype, geometry, bprop)
        self.cfg = Tensor(np.array(geometry, np.int32))

    def construct(self, q, k, v, pe):
        dtype = q.dtype
        f32 = ms.float32
        out, _ = self.fwd(q.astype(f32), (k - pe).astype(f32), v.astype(f32), self.cfg)
        return out.astype(dtype)


LOCAL_ATTENTION = {
    "unfold": UnfoldLocalAttention,
    "stream": StreamLocalAttention,
    "aot": AotLocalAttention,
    "halo": HaloLocalAttention,
}
_warned = set()


def resolve_local_attention(name="auto", device=None):
    """The implementation name that `name` stands for on `device` (default: the current
    device target), "auto" resolved."""
    if name != "auto" and name not in LOCAL_ATTENTION:
        raise ValueError(
            f"attn_impl must be 'auto' or one of {sorted(LOCAL_ATTENTION)}, got {name!r}")
    if name != "auto":
        return name
    device = device or ms.get_context("device_target")
    if device != "CPU":
        return "halo"
    reason = aot_unavailable_reason(device)
    if reason is None:
        return "aot"
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(f"ACmix: the C++ local-attention kernel is unavailable ({reason}); "
                      "using the graph-operator path attn_impl='halo'.", stacklevel=3)
    return "halo"


def get_local_attention(name="auto"):
    """The implementation class registered under `name` ("auto": see the module docstring),
    built as cls(kernel_size, stride, dilation) and called as attention(q, k, v, pe)."""
    return LOCAL_ATTENTION[resolve_local_attention(name)]
