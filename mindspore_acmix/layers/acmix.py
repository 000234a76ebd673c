"""The ACmix layer of the ResNet family (Pan et al., CVPR 2022).

Parameters carry the official PyTorch names and shapes (conv1-3 and conv_p with
bias, fc and dep_conv without), so official weights load one to one.

Where the official code breaks, this layer does the general thing:
- odd sizes with stride > 1: the output is ceil(H / stride) x ceil(W / stride),
  which both paths produce (the official code computes H // stride and fails);
- kernel_conv other than 3: dep_conv is padded by kernel_conv // 2 (the official
  code hard-codes padding=1);
- dilation > 1: both the attention window and dep_conv are dilated (the official
  code dilates neither and fails on the size mismatch);
- inputs too small for the reflection padding raise a ValueError naming the
  minimum size instead of crashing inside the padding kernel.
"""
import numpy as np
import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops

from .. import implementations
from ..ops.local_attention import window_padding
from ..checks import check_windowed_input, odd_kernel, positive_int
from .conv import SameConv2d
from .placement import DevicePlaced, check_placement

DEP_CONV_INITS = ("shift", "kaiming")


def position_grid(h, w):
    """(1, 2, h, w) grid of normalised coordinates in [-1, 1]: channel 0 is x, channel 1 is y.

    Built in NumPy so that it is a graph constant: no LinSpace node, which ONNX lacks.
    """
    xs = np.linspace(-1.0, 1.0, w, dtype=np.float32)
    ys = np.linspace(-1.0, 1.0, h, dtype=np.float32)
    return Tensor(np.stack([np.tile(xs[None, :], (h, 1)), np.tile(ys[:, None], (1, w))])[None])


def shift_kernels(out_channels, kernel_size):
    """dep_conv weight (out, k*k, k, k) whose input map i is a one-hot at position i: a shift."""
    kk = kernel_size * kernel_size
    kernel = np.zeros((kk, kernel_size, kernel_size), np.float32)
    kernel[np.arange(kk), np.arange(kk) // kernel_size, np.arange(kk) % kernel_size] = 1.0
    return np.tile(kernel[None], (out_channels, 1, 1, 1))


class ACmix(DevicePlaced, nn.Cell):
    """Shared 1x1 projections feeding a local self-attention path and a shift-convolution path.

    Args:
        in_planes, out_planes: channels in and out; out_planes must be divisible by head.
        kernel_att: odd attention window size. head: number of attention heads.
        kernel_conv: odd kernel of the convolution path. stride, dilation: of both paths.
        dep_conv_init: "shift" (the paper: dep_conv starts as k*k shift kernels) or
            "kaiming" (what the official ResNet ends up with, because it re-initialises
            every Conv2d with Kaiming normal after building the blocks).
        attn_impl: the local attention implementation (see ops.local_attention): "auto"
            ("aot", the C++ kernel, on CPU when it builds; "halo" elsewhere), "halo" (blocked
            batched matmuls: Ascend, GPU, export), "aot" or "unfold" (the reference).
            "auto" is resolved for the device the layer runs on (see layers.placement).
        conv_impl: how the convolutions run (see layers.conv): "auto" (per-tap matmuls on
            CPU, where MindSpore's grouped 3x3 Conv2D is slow; the native kernel elsewhere),
            "native" or "matmul". Parameters and numbers are the same either way.
    """

    def __init__(self, in_planes, out_planes, kernel_att=7, head=4, kernel_conv=3, stride=1,
                 dilation=1, dep_conv_init="shift", attn_impl="auto", conv_impl="auto"):
        super().__init__()
        positive_int("in_planes", in_planes)
        positive_int("out_planes", out_planes)
        positive_int("head", head)
        odd_kernel("kernel_att", kernel_att)
        odd_kernel("kernel_conv", kernel_conv)
        positive_int("stride", stride)
        positive_int("dilation", dilation)
        if out_planes % head:
            raise ValueError(f"out_planes ({out_planes}) must be divisible by head ({head})")
        if dep_conv_init not in DEP_CONV_INITS:
            raise ValueError(f"dep_conv_init must be one of {DEP_CONV_INITS}, got {dep_conv_init!r}")
        self.in_planes, self.out_planes, self.head = in_planes, out_planes, head
        self.kernel_att, self.kernel_conv = kernel_att, kernel_conv
        self.stride, self.dilation = stride, dilation
        self.head_dim = out_planes // head
        self.scaling = float(self.head_dim) ** -0.5
        self.padding_att = window_padding(kernel_att, dilation)
        self.init_placement(attn_impl)  # validates the name before anything is built

        self.rate1 = Parameter(Tensor([0.5], ms.float32), name="rate1")
        self.rate2 = Parameter(Tensor([0.5], ms.float32), name="rate2")
        self.conv1 = SameConv2d(in_planes, out_planes, 1, has_bias=True, impl=conv_impl)
        self.conv2 = SameConv2d(in_planes, out_planes, 1, has_bias=True, impl=conv_impl)
        self.conv3 = SameConv2d(in_planes, out_planes, 1, has_bias=True, impl=conv_impl)
        self.conv_p = SameConv2d(2, self.head_dim, 1, has_bias=True, impl=conv_impl)
        self.fc = SameConv2d(3 * head, kernel_conv * kernel_conv, 1, impl=conv_impl)
        self.dep_conv = SameConv2d(
            kernel_conv * kernel_conv * self.head_dim, out_planes, kernel_conv, stride=stride,
            dilation=dilation, group=self.head_dim,
            weight_init=Tensor(shift_kernels(out_planes, kernel_conv)) if dep_conv_init == "shift"
            else "he_normal", impl=conv_impl)

    impl_kind = "attention"

    def use_implementation(self, name, device):
        """Build the local attention `name` (layers.placement; same parameters, numbers)."""
        if name != self.impl:
            self.attention = implementations.get_class("attention", name)(
                self.kernel_att, self.stride, self.dilation)
            self.impl = name

    @property
    def attn_impl(self):
        """The local-attention implementation in use."""
        return self.impl

    def _check_input(self, x):
        return check_windowed_input("ACmix", x, self.in_planes, self.padding_att,
                                    f"kernel_att={self.kernel_att}, dilation={self.dilation}")

    def construct(self, x):
        x = self._check_input(x)
        check_placement("ACmix", self.placed_for, self.adaptive)
        q, k, v = self.conv1(x), self.conv2(x), self.conv3(x)
        # by index: an unpacked, unused `_` is a node the compiler drops with a WARNING
        b, h, w = q.shape[0], q.shape[2], q.shape[3]
        n, d = self.head, self.head_dim

        pe = self.conv_p(position_grid(h, w))
        out_att = self.attention(q.view(b * n, d, h, w) * self.scaling, k.view(b * n, d, h, w),
                                 v.view(b * n, d, h, w), pe)
        out_att = out_att.view(b, self.out_planes, out_att.shape[2], out_att.shape[3])

        # fc mixes the 3*head maps of each head-dim index; dep_conv then treats every
        # head-dim index as one group of kernel_conv**2 maps.
        f_all = self.fc(ops.concat((q.view(b, n, d, h * w), k.view(b, n, d, h * w),
                                    v.view(b, n, d, h * w)), 1))
        f_conv = f_all.transpose(0, 2, 1, 3).reshape(b, -1, h, w)
        out_conv = self.dep_conv(f_conv)
        return self.rate1 * out_att + self.rate2 * out_conv
