"""SAN's self-attention module (Zhao et al., "Exploring Self-attention for Image
Recognition", CVPR 2020; hszhao/SAN `model/san.py`) and its ACmix version.

Parameters carry the official PyTorch names and shapes (conv1-3 and conv_p with bias,
conv_w the official nn.Sequential, indices 0-5), so official weights load one to one.

Where the official code breaks, these layers do the general thing or refuse:
- patchwise with stride > 1: the official module reads its queries with a [1, k] unfold
  and a view that only fits stride 1, so stride must be 1 (ValueError); pairwise
  supports any stride, as SAN's kernels do (queries at every stride-th pixel);
- patchwise with dilation > 1: the keys are reflect-padded by dilation * (k - 1) / 2,
  like the aggregation (the official code pads by k // 2 and fails on the size mismatch);
- inputs too small for the reflection padding raise a ValueError naming the minimum
  size instead of failing inside the kernels (which reflect only once).
"""
import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops

from ..ops.local_attention import window_padding
from .. import implementations
from ..ops.precision import Float32Softmax
from ..checks import check_windowed_input, odd_kernel, positive_int
from .acmix import position_grid, shift_kernels
from .conv import SameConv2d
from .placement import DevicePlaced, check_placement

SA_TYPES = {0: "pairwise", 1: "patchwise"}


class SAM(DevicePlaced, nn.Cell):
    """SAN's self-attention module: 1x1 projections q = conv1(x), k = conv2(x) (rel_planes
    channels each) and v = conv3(x) (out_planes); attention weights computed by conv_w from
    the relation of q and k over a kernel_size x kernel_size reflection-padded window;
    out_planes // share_planes weight channels aggregate v over that window.

    Args:
        sa_type: 0 pairwise (relation q_i - k_j plus a learned position term, softmax over
            the window), 1 patchwise (conv_w reads q_i and the whole window of keys; no
            softmax).
        in_planes, rel_planes, out_planes: channels; out_planes must be divisible by
            share_planes (the number of output channels that share one weight channel).
        kernel_size: odd window size. stride: of the window (patchwise: 1 only).
        dilation: of the window.
        san_impl: the implementation of SAN's operators (see ops.san): "auto", "aot" (C++
            CPU kernels), "halo" (graph operators: Ascend, GPU, export) or "unfold" (the
            reference). "auto" is resolved for the device the layer runs on (see
            layers.placement).
        conv_impl: how the convolutions run (see layers.conv); same parameters and numbers.
    """

    def __init__(self, sa_type, in_planes, rel_planes, out_planes, share_planes, kernel_size=3,
                 stride=1, dilation=1, san_impl="auto", conv_impl="auto"):
        super().__init__()
        if isinstance(sa_type, bool) or sa_type not in SA_TYPES:
            raise ValueError(f"sa_type must be 0 (pairwise) or 1 (patchwise), got {sa_type!r}")
        for name, value in (("in_planes", in_planes), ("rel_planes", rel_planes),
                            ("out_planes", out_planes), ("share_planes", share_planes),
                            ("stride", stride), ("dilation", dilation)):
            positive_int(name, value)
        odd_kernel("kernel_size", kernel_size)
        if out_planes % share_planes:
            raise ValueError(f"out_planes ({out_planes}) must be divisible by share_planes "
                             f"({share_planes})")
        if sa_type == 1 and stride != 1:
            raise ValueError(f"stride must be 1 for the patchwise SAM (sa_type=1): the official "
                             f"code supports no other, got {stride}")
        self.sa_type, self.in_planes, self.rel_planes = sa_type, in_planes, rel_planes
        self.out_planes, self.share_planes = out_planes, share_planes
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.weight_planes = out_planes // share_planes
        self.padding = window_padding(kernel_size, dilation)
        self.init_placement(san_impl)

        self.conv1 = SameConv2d(in_planes, rel_planes, 1, has_bias=True, impl=conv_impl)
        self.conv2 = SameConv2d(in_planes, rel_planes, 1, has_bias=True, impl=conv_impl)
        self.conv3 = SameConv2d(in_planes, out_planes, 1, has_bias=True, impl=conv_impl)
        kk, cw = kernel_size * kernel_size, self.weight_planes
        if sa_type == 0:
            self.conv_w = nn.SequentialCell([
                nn.BatchNorm2d(rel_planes + 2), nn.ReLU(),
                SameConv2d(rel_planes + 2, rel_planes, 1, impl=conv_impl),
                nn.BatchNorm2d(rel_planes), nn.ReLU(),
                SameConv2d(rel_planes, cw, 1, has_bias=True, impl=conv_impl)])
            self.conv_p = SameConv2d(2, 2, 1, has_bias=True, impl=conv_impl)
            # over the window; float32 under AMP O2 (ops/precision.py)
            self.softmax = Float32Softmax(axis=2)
        else:
            self.conv_w = nn.SequentialCell([
                nn.BatchNorm2d(rel_planes * (kk + 1)), nn.ReLU(),
                SameConv2d(rel_planes * (kk + 1), cw, 1, impl=conv_impl),
                nn.BatchNorm2d(cw), nn.ReLU(),
                SameConv2d(cw, kk * cw, 1, has_bias=True, impl=conv_impl)])

    impl_kind = "san"

    def use_implementation(self, name, device):
        """Build SAN's operators `name` (layers.placement; same parameters, same numbers)."""
        if name != self.impl:
            self.san_ops = implementations.get_class("san", name)(self.kernel_size, self.stride,
                                                                  self.dilation)
            self.impl = name

    @property
    def san_impl(self):
        """The implementation of SAN's operators in use."""
        return self.impl

    def _check_input(self, x):
        check_placement(type(self).__name__, self.placed_for, self.adaptive)
        return check_windowed_input(type(self).__name__, x, self.in_planes, self.padding,
                                    f"kernel_size={self.kernel_size}, dilation={self.dilation}")

    def attention(self, q, k, v):
        """SAN's attention of projections q, k (rel_planes) and v (out_planes)."""
        n, h, w = q.shape[0], q.shape[2], q.shape[3]
        ops_ = self.san_ops
        if self.sa_type == 0:
            p = self.conv_p(position_grid(h, w))
            rel_p = ops_.subtraction2(p, p)
            logits = self.conv_w(ops.concat(
                (ops_.subtraction2(q, k), ops.tile(rel_p, (n, 1, 1, 1))), 1))
            weights = self.softmax(logits)
        else:
            keys = ops_.windows(k)
            weights = self.conv_w(ops.concat(
                (q.reshape(n, self.rel_planes, 1, h * w),
                 keys.reshape(n, keys.shape[1] * keys.shape[2], 1, h * w)), 1))
            weights = weights.reshape(n, self.weight_planes, self.kernel_size ** 2, h * w)
        return ops_.aggregation(v, weights)

    def construct(self, x):
        x = self._check_input(x)
        return self.attention(self.conv1(x), self.conv2(x), self.conv3(x))


class SAMACmix(SAM):
    """SAN-ACmix's module, "design A" (tests/data/golden/README.md): the official SAM, its
    attention untouched, plus the convolution path of ACmix fed by the SAM's own
    projections, `rate1 * SAM(x) + rate2 * dep_conv(fc(q, k, v))`.

    fc mixes, for each of the hd = out_planes // share_planes weight channels, the
    2 * rel_planes / hd + share_planes maps of q, k and v that share that index into
    kernel_conv**2 maps; dep_conv (groups hd, shift-initialised, zero-padded, with the
    SAM's stride and dilation) sums them. rel_planes must be a multiple of hd.
    New parameters: fc.weight, dep_conv.weight, rate1, rate2.
    """

    def __init__(self, sa_type, in_planes, rel_planes, out_planes, share_planes, kernel_size=3,
                 stride=1, dilation=1, kernel_conv=3, san_impl="auto", conv_impl="auto"):
        super().__init__(sa_type, in_planes, rel_planes, out_planes, share_planes, kernel_size,
                         stride, dilation, san_impl, conv_impl)
        odd_kernel("kernel_conv", kernel_conv)
        hd = self.weight_planes
        if rel_planes % hd:
            raise ValueError(f"rel_planes ({rel_planes}) must be a multiple of out_planes // "
                             f"share_planes ({hd}) for SAMACmix")
        self.kernel_conv = kernel_conv
        pieces = 2 * rel_planes // hd + share_planes
        kc2 = kernel_conv * kernel_conv
        self.rate1 = Parameter(Tensor([0.5], ms.float32), name="rate1")
        self.rate2 = Parameter(Tensor([0.5], ms.float32), name="rate2")
        self.fc = SameConv2d(pieces, kc2, 1, impl=conv_impl)
        self.dep_conv = SameConv2d(kc2 * hd, out_planes, kernel_conv, stride=stride,
                                   dilation=dilation, group=hd,
                                   weight_init=Tensor(shift_kernels(out_planes, kernel_conv)),
                                   impl=conv_impl)

    def construct(self, x):
        x = self._check_input(x)
        q, k, v = self.conv1(x), self.conv2(x), self.conv3(x)
        n, h, w = x.shape[0], x.shape[2], x.shape[3]
        hd = self.weight_planes
        f_all = self.fc(ops.concat((q.view(n, self.rel_planes // hd, hd, h * w),
                                    k.view(n, self.rel_planes // hd, hd, h * w),
                                    v.view(n, self.share_planes, hd, h * w)), 1))
        out_conv = self.dep_conv(f_all.transpose(0, 2, 1, 3).reshape(n, -1, h, w))
        return self.rate1 * self.attention(q, k, v) + self.rate2 * out_conv
