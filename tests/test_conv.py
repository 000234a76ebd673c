"""SameConv2d's matmul formulation against MindSpore's own Conv2D, forward and gradients."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from mindspore_acmix.cpu import taps
from mindspore_acmix.layers.conv import SameConv2d

from conftest import assert_close


@pytest.mark.parametrize("cin,cout,k,stride,dilation,group,has_bias,shape", [
    (36, 16, 3, 1, 1, 4, False, (2, 36, 9, 7)),    # ACmix dep_conv: head_dim groups of k*k
    (36, 16, 3, 2, 1, 4, False, (2, 36, 9, 11)),   # stride 2 on odd sizes
    (50, 8, 5, 1, 1, 2, False, (1, 50, 8, 8)),     # kernel_conv 5
    (18, 8, 3, 1, 2, 2, False, (1, 18, 9, 10)),    # dilation 2
    (8, 6, 3, 3, 1, 1, False, (2, 8, 10, 7)),      # dense, stride 3
    (12, 12, 3, 1, 1, 12, False, (1, 12, 6, 6)),   # depthwise
    (3, 8, 7, 2, 1, 1, False, (2, 3, 15, 12)),     # the ImageNet stem: 7x7 stride 2
    (16, 12, 1, 1, 1, 1, True, (2, 16, 5, 6)),     # 1x1 with bias (ACmix conv1-3)
    (16, 12, 1, 2, 1, 1, False, (2, 16, 7, 6)),    # strided 1x1 (downsample)
    (12, 9, 1, 1, 1, 1, False, (2, 12, 4, 30)),    # ACmix fc on (B, 3N, d, HW)
    (4, 8, 3, 1, 1, 1, True, (2, 4, 6, 5)),        # widening stride 1: taps unfolded (stem)
])
def test_matmul_path_equals_conv2d(cin, cout, k, stride, dilation, group, has_bias, shape):
    fast = SameConv2d(cin, cout, k, stride, dilation, group, has_bias, impl="matmul")
    assert (fast.tap_ops is not None) == (k > 1)   # the C++ tap kernels (the tests need g++)
    check_against_native(fast, cin, cout, k, stride, dilation, group, has_bias, shape)


@pytest.mark.parametrize("cin,cout,k,stride,dilation,group,has_bias,shape", [
    (36, 16, 3, 1, 1, 4, False, (2, 36, 9, 7)),    # stride 1: products shifted
    (18, 8, 3, 2, 2, 2, False, (1, 18, 9, 10)),    # stride 2, dilation 2: input shifted
])
def test_slice_path_without_a_compiler_equals_conv2d(monkeypatch, cin, cout, k, stride,
                                                     dilation, group, has_bias, shape):
    monkeypatch.setattr(taps, "tap_kernel_path", lambda device=None: None)
    fast = SameConv2d(cin, cout, k, stride, dilation, group, has_bias, impl="matmul")
    assert fast.tap_ops is None
    check_against_native(fast, cin, cout, k, stride, dilation, group, has_bias, shape)


def check_against_native(fast, cin, cout, k, stride, dilation, group, has_bias, shape):
    rng = np.random.default_rng(k * 10 + stride)
    native = SameConv2d(cin, cout, k, stride, dilation, group, has_bias, impl="native")
    for mine, theirs in zip(fast.trainable_params(), native.trainable_params()):
        mine.set_data(Tensor(theirs.asnumpy()))
    x = Tensor(rng.standard_normal(shape).astype(np.float32))
    out = native(x).asnumpy()
    probe = Tensor(rng.standard_normal(out.shape).astype(np.float32))

    def grads(cell):
        def loss(inp):
            return (cell(inp) * probe).sum()
        _, (gx, gp) = ms.value_and_grad(loss, 0, cell.trainable_params())(x)
        return [cell(x).asnumpy(), gx.asnumpy()] + [g.asnumpy() for g in gp]

    for ours, ref, what in zip(grads(fast), grads(native), ("output", "grad x", "grad w", "grad b")):
        assert_close(ours, ref, 1e-5, what, floor=1e-3)


def test_tap_kernels_of_two_strides_on_one_input_shape_in_pynative(pynative):
    """PyNative caches a Custom op's output shape by op name and input shapes: convolutions
    of strides 1 and 2 (both unfolding: widening) on inputs of one shape must each get their
    own shape and values."""
    if taps.tap_kernel_path() is None:
        pytest.skip("no C++ compiler: the tap kernels are not used")
    for stride in (1, 2):
        fast = SameConv2d(4, 8, 3, stride, impl="matmul")
        assert fast.use_tap_kernels
        check_against_native(fast, 4, 8, 3, stride, 1, 1, False, (2, 4, 7, 6))
