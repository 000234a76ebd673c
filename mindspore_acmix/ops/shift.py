"""Shift and reflection padding built from slices and concatenation.

Both are written with `ops.narrow` + `ops.concat` only, because those lower to
plain Slice/Concat nodes on every backend and in every export format (MindIR,
ONNX), whereas `ops.roll` has no CPU kernel and `ops.pad(mode="reflect")`
(PadV3 / MirrorPad) cannot be exported to ONNX. Autodiff of slice + concat
gives the exact adjoint: for zero fill that is the inverse shift; for reflect
fill the gradient of a mirrored element is added back onto its source.
"""
from mindspore import ops

FILLS = ("zero", "reflect")


# The checks return what they checked and the callers go on with it: in graph mode a call kept
# only for its possible raise is dropped with a WARNING (see mindspore_acmix.checks).
def _check_fill(fill):
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    return fill


def _rows(x, axis, sources, fill):
    """Rows `sources` of `x` along `axis` (reflect) or zeros of that many rows."""
    if fill == "zero":
        shape = list(x.shape)
        shape[axis] = len(sources)
        return ops.zeros(tuple(shape), x.dtype)
    return ops.concat(tuple(ops.narrow(x, axis, i, 1) for i in sources), axis)


def _check_amount(n, amount, axis, fill, what):
    if fill == "reflect" and amount > n - 1:
        raise ValueError(
            f"reflect {what} of {amount} along axis {axis} needs a size of at least "
            f"{amount + 1} there, got {n}")
    return n


def pad_axis(x, axis, before, after, fill="reflect"):
    """Pad `x` along one axis; reflect fill mirrors about the edge without repeating it."""
    fill = _check_fill(fill)
    n = _check_amount(x.shape[axis], max(before, after), axis, fill, "padding")
    parts = ()
    if before > 0:
        parts += (_rows(x, axis, tuple(range(before, 0, -1)), fill),)
    parts += (x,)
    if after > 0:
        parts += (_rows(x, axis, tuple(range(n - 2, n - 2 - after, -1)), fill),)
    return ops.concat(parts, axis) if len(parts) > 1 else x


def reflect_pad2d(x, padding):
    """Reflection padding of the last two axes, equal to torch's ReflectionPad2d(padding)."""
    return pad_axis(pad_axis(x, x.ndim - 2, padding, padding), x.ndim - 1, padding, padding)


def shift_axis(x, axis, offset, fill="zero"):
    """out[i] = x[i - offset] along `axis`; vacated rows get `fill`."""
    fill = _check_fill(fill)
    n = x.shape[axis]
    if offset == 0:
        return x
    s = abs(offset)
    if s >= n:
        if fill == "zero":
            return ops.zeros_like(x)
    n = _check_amount(n, s, axis, fill, "shift")
    if offset > 0:
        return ops.concat((_rows(x, axis, tuple(range(s, 0, -1)), fill),
                           ops.narrow(x, axis, 0, n - s)), axis)
    return ops.concat((ops.narrow(x, axis, s, n - s),
                       _rows(x, axis, tuple(range(n - 2, n - 2 - s, -1)), fill)), axis)


def shift2d(x, dy, dx, fill="zero"):
    """Shift a feature map (..., H, W) by (dy, dx): out[..., i, j] = x[..., i - dy, j - dx].

    Positions whose source lies outside the map are filled with zeros
    (`fill="zero"`) or with the mirrored interior pixel (`fill="reflect"`,
    torch ReflectionPad2d's convention: the edge is not repeated, so |dy| < H
    and |dx| < W are required). The backward pass is the adjoint: for zero fill
    exactly `shift2d(grad, -dy, -dx)`.
    """
    return shift_axis(shift_axis(x, x.ndim - 2, dy, fill), x.ndim - 1, dx, fill)
