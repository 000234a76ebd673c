"""san_impl="aot": SAN's three operators (see ops.san) as C++ CPU kernels (kernels/san_cpu.cc,
OpenMP, one channel per task) run as AOT Custom ops with their own backward. Nothing is k*k
times a feature map but the outputs that are so by definition."""
import mindspore as ms
import numpy as np
from mindspore import Tensor, ops

from ..ops.halo import out_size
from ..ops.local_attention import SlidingWindow
from .build import aot_op, require_kernel

SOURCE = "san_cpu.cc"


class AotSanOps(SlidingWindow):
    """The C++ CPU kernels of kernels/san_cpu.cc as Custom ops (float32 inside)."""

    def __init__(self, kernel_size, stride=1, dilation=1):
        super().__init__(kernel_size, stride, dilation)
        lib = require_kernel(SOURCE, "san_impl")
        kk = kernel_size * kernel_size

        def windows_shape(x1, x2, cfg):
            return [x2[0], x2[1], kk,
                    out_size(x2[2], stride) * out_size(x2[3], stride)]

        def aggregation_shape(x, w, cfg):
            return [x[0], x[1], out_size(x[2], stride), out_size(x[3], stride)]

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
