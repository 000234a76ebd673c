"""Sliding-window (SAN/SASA-style) local attention of the ResNet ACmix layer.

Every implementation has the signature

    fn(q, k, v, pe, kernel_size, stride, dilation) -> out

q, k, v: (B*heads, head_dim, H, W), q already multiplied by head_dim ** -0.5;
pe: (1, head_dim, H, W), the positional encoding shared by all heads.
out: (B*heads, head_dim, ceil(H / stride), ceil(W / stride)).

For query position i and window position j (the k x k window around i, dilated,
with reflection padding at the borders):

    logit_ij = q_i . (k_j + pe_i - pe_j),  out_i = sum_j softmax_j(logit_ij) v_j

ACmix looks the implementation up by name, so a faster one only needs to be
registered here.
"""
from mindspore import ops

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


LOCAL_ATTENTION = {
    "unfold": local_attention_unfold,
}
DEFAULT_LOCAL_ATTENTION = "unfold"


def get_local_attention(name="auto"):
    """The implementation registered under `name`; "auto" picks the default."""
    if name == "auto":
        name = DEFAULT_LOCAL_ATTENTION
    if name not in LOCAL_ATTENTION:
        raise ValueError(
            f"attn_impl must be 'auto' or one of {sorted(LOCAL_ATTENTION)}, got {name!r}")
    return LOCAL_ATTENTION[name]
