"""The plain references that tests and benchmarks compare the other implementations against:
the official code's unfold formulations of ACmix's local attention and SAN's operators.

Each materialises kernel_size**2 copies of its maps (ops.unfold, Im2Col), forward and backward,
which is what makes it easy to trust and expensive to run; registered as attn_impl="unfold"
and san_impl="unfold" (see mindspore_acmix.implementations). The geometry is the one of
ops.local_attention (attention) and ops.san (SAN's operators).
"""
from mindspore import ops

from .halo import out_size
from .local_attention import LocalAttention, SlidingWindow, subsample, window_padding
from .shift import reflect_pad2d


def local_attention_unfold(q, k, v, pe, kernel_size, stride, dilation):
    """ACmix's local attention as the official code computes it: it unfolds the padded keys,
    values and positional encodings into kernel_size**2 copies."""
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


class UnfoldLocalAttention(LocalAttention):
    """attn_impl="unfold": local_attention_unfold as a Cell."""

    def construct(self, q, k, v, pe):
        return local_attention_unfold(q, k, v, pe, self.kernel_size, self.stride, self.dilation)


def windows_unfold(x, kernel_size, stride, dilation):
    """(N, C, k*k, Ho*Wo): the reflection-padded window of every query, by ops.unfold."""
    n, c = x.shape[0], x.shape[1]
    cols = ops.unfold(reflect_pad2d(x, window_padding(kernel_size, dilation)), kernel_size,
                      dilation, 0, stride)
    return cols.view(n, c, kernel_size * kernel_size, cols.shape[2])


def subtraction2_unfold(x1, x2, kernel_size, stride, dilation):
    centre = subsample(x1, stride)
    n, c = centre.shape[0], centre.shape[1]
    return (centre.reshape(n, c, 1, centre.shape[2] * centre.shape[3])
            - windows_unfold(x2, kernel_size, stride, dilation))


def aggregation_unfold(x, w, kernel_size, stride, dilation):
    n, c, h, wd = x.shape
    cw, kk = w.shape[1], w.shape[2]
    cols = windows_unfold(x, kernel_size, stride, dilation)
    out = (cols.view(n, c // cw, cw, kk, cols.shape[3]) * w.expand_dims(1)).sum(3)
    return out.view(n, c, out_size(h, stride), out_size(wd, stride))


class UnfoldSanOps(SlidingWindow):
    """san_impl="unfold": SAN's three operators by ops.unfold (see ops.san for their
    semantics); aggregation materialises k*k copies of all C channels of x."""

    def windows(self, x):
        return windows_unfold(x, self.kernel_size, self.stride, self.dilation)

    def subtraction2(self, x1, x2):
        return subtraction2_unfold(x1, x2, self.kernel_size, self.stride, self.dilation)

    def aggregation(self, x, w):
        return aggregation_unfold(x, w, self.kernel_size, self.stride, self.dilation)
