"""attn_impl="aot": ACmix's local attention as C++ CPU kernels (kernels/local_attention_cpu.cc,
OpenMP) run as AOT Custom ops. The forward saves only the per-query log-sum-exp; the backward
op recomputes the probabilities. A MindIR using it stores the library's absolute path, so it
loads in a fresh process on the same machine, but it cannot be exported to ONNX."""
import mindspore as ms
import numpy as np
from mindspore import Tensor, ops

from ..checks import ceil_div
from ..ops.local_attention import LocalAttention
from .build import aot_op, require_kernel

SOURCE = "local_attention_cpu.cc"


class AotLocalAttention(LocalAttention):
    """The C++ CPU kernels as Custom ops: the forward saves only the per-query log-sum-exp,
    the backward op recomputes the probabilities."""

    def __init__(self, kernel_size, stride=1, dilation=1):
        super().__init__(kernel_size, stride, dilation)
        lib = require_kernel(SOURCE, "attn_impl")

        def out_size(n):
            return ceil_div(n, stride)

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
