"""Swin's window attention (W-MSA / SW-MSA) and its ACmix form (Swin-ACmix).

Both cells take the (B, H, W, C) feature map and do the window partition
themselves (the official plain WindowAttention takes already partitioned windows;
the qkv projection is per token, so where the partition happens does not change
the result, and the ACmix form needs the whole map for its convolution path).

Parameter names follow the official modules (qkv, proj, relative_position_bias_table,
and for ACmix fc, dep_conv, rate1, rate2). `relative_position_index` is a constant
Tensor, not a Parameter: it is derived from the window size, and the checkpoint
converter checks an official one against it (mindspore_acmix.convert).
"""
import numpy as np
import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops

from ..ops.precision import Float32Softmax
from ..checks import check_window_map, int_pair, positive_int, probability
from .acmix import shift_kernels
from .conv import SameConv2d
from .stochastic import Dropout
from .transformer import trunc_normal_

CONV_KERNEL = 3  # the official Swin-ACmix hard-codes a 3x3 convolution path (9 shift maps)


def relative_position_index(window_size):
    """(Wh*Ww, Wh*Ww) index into the relative position bias table, as the official buffer."""
    wh, ww = window_size
    coords = np.stack(np.meshgrid(np.arange(wh), np.arange(ww), indexing="ij")).reshape(2, -1)
    rel = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0)
    return (rel[:, :, 0] + wh - 1) * (2 * ww - 1) + (rel[:, :, 1] + ww - 1)


def window_partition(x, wh, ww):
    """(B, H, W, C) -> (B * H/wh * W/ww, wh*ww, C), windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // wh, wh, w // ww, ww, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, wh * ww, c)


def window_reverse(windows, wh, ww, h, w):
    """Inverse of window_partition: (B * nW, wh*ww, C) -> (B, H, W, C)."""
    c = windows.shape[-1]
    x = windows.view(-1, h // wh, w // ww, wh, ww, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


class WindowAttention(nn.Cell):
    """Multi-head self-attention inside non-overlapping windows, with Swin's learned
    relative position bias; `mask` (nW, N, N) of 0 / -100 separates the regions that a
    cyclic shift brought together.

    Args:
        dim: channels; must be divisible by num_heads.
        window_size: int or (Wh, Ww). num_heads: attention heads.
        qkv_bias: bias of the qkv projection. qk_scale: overrides head_dim ** -0.5.
        attn_drop, proj_drop: dropout of the attention weights and of the output.
    """

    def __init__(self, dim, window_size, num_heads, qkv_bias=True, qk_scale=None,
                 attn_drop=0.0, proj_drop=0.0):
        super().__init__()
        positive_int("dim", dim)
        positive_int("num_heads", num_heads)
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        probability("attn_drop", attn_drop)
        probability("proj_drop", proj_drop)
        self.dim, self.num_heads = dim, num_heads
        self.window_size = int_pair("window_size", window_size)
        self.head_dim = dim // num_heads
        self.scale = float(qk_scale) if qk_scale else self.head_dim ** -0.5
        wh, ww = self.window_size
        self.relative_position_bias_table = Parameter(
            Tensor(np.zeros(((2 * wh - 1) * (2 * ww - 1), num_heads), np.float32)),
            name="relative_position_bias_table")
        trunc_normal_(self.relative_position_bias_table)
        index = relative_position_index(self.window_size)
        self.relative_position_index = Tensor(index, ms.int32)
        self._index_flat = Tensor(index.reshape(-1), ms.int32)
        self.qkv = nn.Dense(dim, 3 * dim, has_bias=qkv_bias)
        self.softmax = Float32Softmax(-1)  # float32 under AMP O2 (ops/precision.py)
        self.attn_drop = Dropout(p=attn_drop)
        self.proj = nn.Dense(dim, dim)
        self.proj_drop = Dropout(p=proj_drop)

    def _check_input(self, x):
        return check_window_map(type(self).__name__, x, self.dim, self.window_size)

    def window_attention(self, qkv, mask):
        """Attention of the qkv map (B, H, W, 3C) in windows, through proj: (B, H, W, C)."""
        _, h, w, _ = qkv.shape
        wh, ww = self.window_size
        n, heads = wh * ww, self.num_heads
        win = window_partition(qkv, wh, ww)
        bw = win.shape[0]
        win = win.reshape(bw, n, 3, heads, self.head_dim).transpose(2, 0, 3, 1, 4)
        q, k, v = win[0] * self.scale, win[1], win[2]
        attn = ops.matmul(q, k.swapaxes(-2, -1))
        bias = ops.gather(self.relative_position_bias_table, self._index_flat, 0)
        attn = attn + bias.view(n, n, heads).transpose(2, 0, 1).expand_dims(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(bw // nw, nw, heads, n, n) + mask.expand_dims(1).expand_dims(0)
            attn = attn.view(bw, heads, n, n)
        attn = self.attn_drop(self.softmax(attn))
        out = ops.matmul(attn, v).transpose(0, 2, 1, 3).reshape(bw, n, self.dim)
        return window_reverse(self.proj(out), wh, ww, h, w)

    def construct(self, x, mask=None):
        x = self._check_input(x)
        return self.proj_drop(self.window_attention(self.qkv(x), mask))


class TokenConvPath:
    """ACmix's convolution path for token models, as in the official Swin-ACmix: the qkv
    tokens, viewed as 3*heads maps of head_dim channels, are mixed by `fc` (a 1x1 conv
    3*heads -> 9, with bias) into 9 maps per head-dim index, which `dep_conv` (3x3, one
    group per head-dim index, no bias, shift-initialised) turns into `dim` channels.
    Mixed into a Cell that sets `dim` and `num_heads`; adds rate1/rate2 (both 0.5)."""

    def _init_conv_path(self, dim, num_heads):
        head_dim = dim // num_heads
        self.rate1 = Parameter(Tensor([0.5], ms.float32), name="rate1")
        self.rate2 = Parameter(Tensor([0.5], ms.float32), name="rate2")
        kk = CONV_KERNEL * CONV_KERNEL
        self.fc = SameConv2d(3 * num_heads, kk, 1, has_bias=True)
        # the official dep_conv bias is deleted by its own init (it assigns None to it)
        self.dep_conv = SameConv2d(kk * head_dim, dim, CONV_KERNEL, group=head_dim,
                                   weight_init=Tensor(shift_kernels(dim, CONV_KERNEL)))

    def conv_path(self, qkv, h, w):
        """qkv: (B, h*w, 3C) or (B, h, w, 3C), channels (q|k|v, head, head_dim) -> (B, h, w, C)."""
        b = qkv.shape[0]
        f_all = qkv.reshape(b, h * w, 3 * self.num_heads, -1).transpose(0, 2, 1, 3)
        f_conv = self.fc(f_all).transpose(0, 3, 1, 2).reshape(b, -1, h, w)
        return self.dep_conv(f_conv).transpose(0, 2, 3, 1)


class WindowAttentionACmix(TokenConvPath, WindowAttention):
    """The official WindowAttention_acmix: rate1 * proj(window attention) + rate2 *
    convolution path, both fed by the same qkv projection. The convolution path sees the
    whole (in shifted blocks: the cyclically shifted) map and skips `proj`."""

    def __init__(self, dim, window_size, num_heads, qkv_bias=True, qk_scale=None,
                 attn_drop=0.0, proj_drop=0.0):
        super().__init__(dim, window_size, num_heads, qkv_bias, qk_scale, attn_drop, proj_drop)
        self._init_conv_path(dim, num_heads)

    def construct(self, x, mask=None):
        x = self._check_input(x)
        qkv = self.qkv(x)
        out_conv = self.conv_path(qkv, x.shape[1], x.shape[2])
        return self.proj_drop(self.rate1 * self.window_attention(qkv, mask)
                              + self.rate2 * out_conv)
