"""The keyed DropPath/dropout masks (layers/stochastic.py): the hash's bits against a uint32
reference (a backend whose int32 arithmetic does not wrap modulo 2**32 fails here), and the
masks, compared as integers, exactly the reference's under every accepted AMP level in graph
and PyNative mode."""
import numpy as np
import mindspore as ms
import pytest
from mindspore import Tensor, nn

from mindspore_acmix.engine.amp import LEVELS, mixed_precision
from mindspore_acmix.layers.stochastic import (BITS, DropPath, Dropout, keep_threshold,
                                               keyed_bits, set_key)


def reference_bits(key, count):
    """lowbias32(lowbias32(index) ^ lowbias32(key)) >> (32 - BITS), in uint32 NumPy."""
    def mix(x):
        x = x.astype(np.uint32)
        x ^= x >> np.uint32(16)
        x = x * np.uint32(0x7FEB352D)
        x ^= x >> np.uint32(15)
        x = x * np.uint32(0x846CA68B)
        return x ^ (x >> np.uint32(16))

    index = np.arange(count, dtype=np.uint32)
    return (mix(mix(index) ^ mix(np.array([key & 0xFFFFFFFF], np.uint32)))
            >> np.uint32(32 - BITS)).astype(np.int64)


def test_the_reference_hash_is_pinned():
    assert reference_bits(0x2545F491, 6).tolist() == [6314501, 16494719, 11282634, 9195617,
                                                      13836090, 15857116]
    assert reference_bits(-1, 3).tolist() == [2983491, 8894521, 6469724]


class Draw(nn.Cell):
    def construct(self):
        return keyed_bits((3, 700))


@pytest.mark.parametrize("key", [0x2545F491, -1, -0x7FFFFFFF])
def test_keyed_bits_equal_the_reference_bit_for_bit(key):
    """Graph mode; the multiplications wrap (negative keys, products past 2**31)."""
    set_key(key)
    bits = Draw()().asnumpy()
    assert bits.dtype == np.int32
    np.testing.assert_array_equal(bits.reshape(-1), reference_bits(key, 2100))
    set_key(key)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        np.testing.assert_array_equal(keyed_bits((2100,)).asnumpy(), reference_bits(key, 2100))
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)


class Stochastic(nn.Cell):
    """A Dense layer (so that O2 casts) and the two keyed layers after it."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Dense(4, 4, weight_init="zeros", bias_init="ones")
        self.drop_path, self.dropout = DropPath(0.25), Dropout(0.5)

    def construct(self, x):
        y = self.fc(x)
        return self.drop_path(y), self.dropout(y)


@pytest.mark.parametrize("mode", [ms.GRAPH_MODE, ms.PYNATIVE_MODE], ids=["graph", "pynative"])
@pytest.mark.parametrize("level", LEVELS)
def test_masks_are_exact_under_every_amp_level(level, mode):
    """DropPath(0.25) then Dropout(0.5), each call one key: kept where the reference draw is
    below the integer threshold, so the rates are 0.75 and 0.5 (within sampling)."""
    ms.set_context(mode=mode)
    try:
        net = mixed_precision(Stochastic(), level)
        net.set_train(True)
        set_key(12345)
        paths, elements = net(Tensor(np.ones((4096, 4), np.float32)))
        paths, elements = paths.asnumpy(), elements.asnumpy()
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)
    path_kept = reference_bits(12345, 4096) < keep_threshold(0.75)
    element_kept = reference_bits(12346, 4096 * 4).reshape(4096, 4) < keep_threshold(0.5)
    np.testing.assert_array_equal(paths[:, 0] != 0, path_kept)
    np.testing.assert_array_equal(elements != 0, element_kept)
    assert 0.73 < path_kept.mean() < 0.77 and 0.48 < element_kept.mean() < 0.52
    np.testing.assert_allclose(paths[path_kept], 1 / 0.75, rtol=1e-3)
    np.testing.assert_allclose(elements[element_kept], 2.0, rtol=1e-3)
