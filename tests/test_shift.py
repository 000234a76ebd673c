"""The shift op and reflection padding against NumPy, forward and gradient."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from mindspore_acmix.ops import reflect_pad2d, shift2d

from conftest import assert_close


def source_index(i, n, fill):
    """Index read for output position i (already offset), or None for a zero."""
    if 0 <= i < n:
        return i
    if fill == "zero":
        return None
    return -i if i < 0 else 2 * (n - 1) - i


def np_shift(x, dy, dx, fill):
    """Forward shift and its adjoint as an explicit gather / scatter-add."""
    h, w = x.shape[-2:]
    pairs = []
    for i in range(h):
        for j in range(w):
            si, sj = source_index(i - dy, h, fill), source_index(j - dx, w, fill)
            if si is not None and sj is not None:
                pairs.append(((i, j), (si, sj)))
    out = np.zeros_like(x)
    for (i, j), (si, sj) in pairs:
        out[..., i, j] = x[..., si, sj]

    def adjoint(g):
        gx = np.zeros_like(g)
        for (i, j), (si, sj) in pairs:
            gx[..., si, sj] += g[..., i, j]
        return gx
    return out, adjoint


def ms_value_and_grad(fn, x, probe):
    def loss(inp):
        return (fn(inp) * Tensor(probe)).sum()
    out = fn(Tensor(x)).asnumpy()
    return out, ms.grad(loss)(Tensor(x)).asnumpy()


SHIFTS = [(0, 0), (1, 0), (0, -2), (2, 3), (-3, -1), (-1, 4), (5, 0), (0, -7), (6, 0), (0, -9)]


@pytest.mark.parametrize("fill", ["zero", "reflect"])
@pytest.mark.parametrize("dy,dx", SHIFTS)
def test_shift2d_matches_numpy(dy, dx, fill):
    rng = np.random.default_rng(abs(dy) * 10 + abs(dx))
    x = rng.standard_normal((2, 3, 6, 8)).astype(np.float32)
    probe = rng.standard_normal(x.shape).astype(np.float32)
    if fill == "reflect" and (abs(dy) > 5 or abs(dx) > 7):
        with pytest.raises(ValueError, match="reflect shift"):
            shift2d(Tensor(x), dy, dx, fill)
        return
    ref, adjoint = np_shift(x, dy, dx, fill)

    def fn(t):
        return shift2d(t, dy, dx, fill)
    out, grad = ms_value_and_grad(ms.jit(fn), x, probe)
    assert_close(out, ref, 0, "shift forward")
    assert_close(grad, adjoint(probe), 1e-6, "shift gradient")


def test_zero_shift_backward_is_inverse_shift(pynative):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    probe = rng.standard_normal(x.shape).astype(np.float32)

    def fn(t):
        return shift2d(t, 2, -1)
    _, grad = ms_value_and_grad(fn, x, probe)
    inverse = shift2d(Tensor(probe), -2, 1).asnumpy()
    assert_close(grad, inverse, 0, "gradient of a zero-fill shift")


@pytest.mark.parametrize("pad", [1, 3])
def test_reflect_pad2d_matches_numpy(pad):
    rng = np.random.default_rng(pad)
    x = rng.standard_normal((2, 3, 5, 4)).astype(np.float32)
    probe = rng.standard_normal((2, 3, 5 + 2 * pad, 4 + 2 * pad)).astype(np.float32)
    ref = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="reflect")

    def fn(t):
        return reflect_pad2d(t, pad)
    out, grad = ms_value_and_grad(ms.jit(fn), x, probe)
    assert_close(out, ref, 0, "reflect pad forward")
    # adjoint of np.pad(reflect) through a one-hot probe per input element
    flat = np.eye(x.size, dtype=np.float32).reshape((x.size,) + x.shape)
    jac = np.stack([np.pad(e, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="reflect")
                    for e in flat])
    ref_grad = (jac * probe).reshape(x.size, -1).sum(1).reshape(x.shape)
    assert_close(grad, ref_grad, 1e-6, "reflect pad gradient")


def test_reflect_pad_too_large_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 4"):
        reflect_pad2d(Tensor(np.zeros((1, 1, 3, 3), np.float32)), 3)


def test_unknown_fill():
    with pytest.raises(ValueError, match="fill must be one of"):
        shift2d(Tensor(np.zeros((1, 1, 3, 3), np.float32)), 1, 1, "wrap")
