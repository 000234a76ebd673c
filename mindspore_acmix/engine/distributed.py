"""Data-parallel setup under msrun and the collectives the trainer needs (the per-rank seeds
are in seeding.py)."""
import os

import numpy as np
import mindspore as ms
from mindspore import Tensor, nn, ops


def launched_by_msrun():
    return int(os.environ.get("MS_WORKER_NUM", "1")) > 1 or int(os.environ.get("RANK_SIZE", "1")) > 1


def init_distributed():
    """(rank, world size): initialises the collective backend when launched by msrun."""
    if not launched_by_msrun():
        return 0, 1
    from mindspore.communication import get_group_size, get_rank, init
    init()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL,
                                 gradients_mean=True)
    return get_rank(), get_group_size()


class _AllReduceSum(nn.Cell):
    def __init__(self):
        super().__init__()
        self.op = ops.AllReduce(ops.ReduceOp.SUM)

    def construct(self, x):
        return self.op(x)


class _AllGather(nn.Cell):
    def __init__(self):
        super().__init__()
        self.op = ops.AllGather()

    def construct(self, x):
        return self.op(x)


def all_reduce_sum(values, world):
    """Sum a float64 vector over ranks (sent as float32 pairs hi/lo to keep precision)."""
    values = np.asarray(values, np.float64)
    if world == 1:
        return values
    hi = values.astype(np.float32)
    lo = (values - hi.astype(np.float64)).astype(np.float32)
    out = _AllReduceSum()(Tensor(np.stack([hi, lo]))).asnumpy().astype(np.float64)
    return out[0] + out[1]


def all_gather(values, world):
    """Stack a float32 vector from every rank: (world, n)."""
    values = np.asarray(values, np.float32)[None]
    if world == 1:
        return values
    return _AllGather()(Tensor(values)).asnumpy()


class RankMean(nn.Cell):
    """[loss, overflow flag] summed over ranks in one collective inside the training step:
    the loss becomes the mean over ranks and the overflow flag the count of ranks whose
    gradients were not finite, so every rank takes the same skip-or-update decision."""

    def __init__(self, world):
        super().__init__()
        self.world = world
        self.op = ops.AllReduce(ops.ReduceOp.SUM)

    def construct(self, loss, overflow):
        total = self.op(ops.stack([loss, overflow]))
        return total[0] / self.world, total[1]


def describe_world_change(saved, now):
    """One line saying what a resume on a different number of workers changes; `saved` and
    `now` are dicts with world_size, global_batch, peak_lr and steps_per_epoch."""
    return (f"resuming a run trained on {saved['world_size']} worker(s) with {now['world_size']}: "
            f"global batch {saved['global_batch']} -> {now['global_batch']}, peak lr "
            f"{saved['peak_lr']:.4g} -> {now['peak_lr']:.4g} (linear scaling), steps per epoch "
            f"{saved['steps_per_epoch']} -> {now['steps_per_epoch']}; the schedule continues "
            "from the start of the next epoch")
