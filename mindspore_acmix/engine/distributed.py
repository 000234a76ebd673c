"""Data-parallel setup under msrun and the collectives the trainer needs."""
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
