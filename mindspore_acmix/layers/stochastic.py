"""Stochastic depth and dropout whose random draws are a pure function of one 32-bit key.

MindSpore's random operators keep their state inside the kernel: it cannot be saved, it is
the same on every data-parallel rank, and a resumed run replays its masks from the start.
The generator-based operators (RandExt, DropoutExt) that do take a (seed, offset) have no
CPU kernel in 2.10. So the layers here hash (key, call, element index) with 32-bit integer
arithmetic into 24-bit integers, compared with an integer threshold (never as floats: under
AMP a float conversion may run in float16, where 2**24 overflows): the training step writes a key derived from (seed, rank, step) into
RNG_KEY before the forward pass (seeding.step_key), and every stochastic layer
call takes the current key and advances it by one. The masks then differ between ranks and
are reproduced exactly after a resume, with no state beyond the step number.

RNG_KEY is a free Parameter shared by every network, not a network parameter: checkpoints,
exports and the converted official weights do not change.
"""
import numpy as np
import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops

from ..checks import probability

RNG_KEY = Parameter(Tensor(np.int32(0x2545F491)), name="stochastic_layers_rng_key",
                    requires_grad=False)
_ONE = Tensor(np.int32(1))
# lowbias32 (C. Wellons): a 32-bit avalanche hash; the second multiplier as int32. The
# products rely on int32 multiplication wrapping modulo 2**32 (two's complement), which
# tests/test_stochastic.py checks bit for bit against a uint32 reference.
_MUL1, _MUL2 = 0x7FEB352D, 0x846CA68B - (1 << 32)
BITS = 24  # the draws are integers in [0, 2**BITS)


def _shr(x, bits):
    """Logical right shift of int32 (the arithmetic shift with the sign bits masked off)."""
    return ops.bitwise_and(ops.bitwise_right_shift(x, bits), (1 << (32 - bits)) - 1)


def _mix(x):
    x = ops.bitwise_xor(x, _shr(x, 16)) * _MUL1
    x = ops.bitwise_xor(x, _shr(x, 15)) * _MUL2
    return ops.bitwise_xor(x, _shr(x, 16))


def keyed_bits(shape):
    """int32 draws, uniform in [0, 2**BITS), of `shape` from RNG_KEY, which is advanced by
    one."""
    key = RNG_KEY + 0
    key = ops.depend(key, ops.assign_add(RNG_KEY, _ONE))
    count = 1
    for size in shape:
        count *= size
    index = ops.arange(count, dtype=ms.int32)
    bits = _mix(ops.bitwise_xor(_mix(index), _mix(key)))
    return _shr(bits, 32 - BITS).reshape(shape)


def keep_threshold(keep_prob):
    """The integer below which a draw of keyed_bits is kept with probability keep_prob."""
    return int(round(keep_prob * (1 << BITS)))


class _KeyedDrop(nn.Cell):
    """Zero parts of the input with probability `p` in training and rescale the rest by
    1 / (1 - p); identity in evaluation. Subclasses say which parts (mask_shape)."""

    def __init__(self, name, p):
        super().__init__()
        probability(name, p)
        self.p = float(p)
        self.keep_prob = 1.0 - self.p
        self.threshold = keep_threshold(self.keep_prob)

    def mask_shape(self, x):
        return x.shape

    def construct(self, x):
        if not self.training or self.p == 0.0:
            return x
        mask = (keyed_bits(self.mask_shape(x)) < self.threshold).astype(x.dtype)
        return x / self.keep_prob * mask


class DropPath(_KeyedDrop):
    """Stochastic depth: whole samples dropped with probability `drop_prob`."""

    def __init__(self, drop_prob=0.0):
        super().__init__("drop_path", drop_prob)
        self.drop_prob = self.p

    def mask_shape(self, x):
        return (x.shape[0],) + (1,) * (x.ndim - 1)


class Dropout(_KeyedDrop):
    """Element-wise dropout with probability `p` (nn.Dropout's interface, keyed draws)."""

    def __init__(self, p=0.5):
        super().__init__("dropout", p)


class Dropout2d(_KeyedDrop):
    """Channel dropout: whole (sample, channel) maps zeroed with probability `p`
    (nn.Dropout2d's interface, keyed draws, so a resumed run drops what the original did)."""

    def __init__(self, p=0.5):
        super().__init__("dropout", p)

    def mask_shape(self, x):
        return x.shape[:2] + (1,) * (x.ndim - 2)


def set_key(key):
    """Write RNG_KEY from the host (outside a compiled step), e.g. in tests."""
    RNG_KEY.set_data(Tensor(np.int32(key)))
