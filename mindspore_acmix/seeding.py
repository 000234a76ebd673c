"""The seeds that make every rank's randomness its own yet reproducible: all of them derive
from the run's `seed` and (rank, epoch, step), here, for the data pipeline (data/) and the
training step (engine/). A leaf module: it imports nothing of the package."""
import numpy as np
from mindspore import Tensor


def derived_seed(*parts):
    """A 31-bit seed from non-negative integers (seed, rank, epoch, step ...): distinct for
    distinct tuples, the same on every machine and run."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0]) & 0x7FFFFFFF


def data_seed(seed, rank, epoch):
    """The data pipeline's seed for one rank and epoch (crops, flips, RandAugment, erasing,
    mixup/cutmix)."""
    return derived_seed(seed, rank, epoch, 0)


def step_key(seed, rank, step):
    """The key of the stochastic layers (DropPath, dropout) for one rank and global step, as
    the int32 tensor the training step writes into layers.stochastic.RNG_KEY."""
    return Tensor(np.int32(derived_seed(seed, rank, step, 1)))
