"""Cyclic shifts (torch.roll) built from two slices and a concatenation.

MindSpore 2.10 has no Roll kernel on CPU (ops.roll, mint.roll and Tensor.roll all
fail), and Slice/Concat lower on every backend and export format; autodiff of
slice + concat is the exact adjoint, i.e. the opposite roll.
"""
from mindspore import ops


def roll_axis(x, shift, axis):
    """torch.roll(x, shift, axis): out[i] = x[(i - shift) mod n] along `axis`."""
    n = x.shape[axis]
    s = shift % n
    if s == 0:
        return x
    return ops.concat((ops.narrow(x, axis, n - s, s), ops.narrow(x, axis, 0, n - s)), axis)


def roll2d(x, shifts, axes=(1, 2)):
    """torch.roll(x, shifts, dims=axes) for two axes; Swin's cyclic shift of a
    (B, H, W, C) map is roll2d(x, (-s, -s)) and its reverse roll2d(x, (s, s))."""
    if len(shifts) != 2 or len(axes) != 2:
        raise ValueError(f"roll2d takes two shifts and two axes, got {shifts!r} and {axes!r}")
    return roll_axis(roll_axis(x, shifts[0], axes[0]), shifts[1], axes[1])
