"""Gradient accumulation (`accumulate_steps: K` in a config): K micro-batches make one update.

The train step adds each micro-batch's gradients into sums held on the device and updates
only on every K-th micro-batch of an epoch (and on its last one, when K does not divide the
steps per epoch), with the mean of the gradients summed since the last update: for a loss
that is a mean over the batch, the same update as one batch K times larger (BatchNorm
statistics, though, are per micro-batch). The learning-rate schedule counts updates, and the
lr is scaled to the effective batch (batch_size * world * K). Gradients are reduced across
ranks once per update, not per micro-batch. Everything is decided inside the compiled step
from a micro-batch counter, so an epoch always ends with an update and the sums are empty at
every checkpoint.
"""
import math

import numpy as np
import mindspore as ms
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops


def updates_per_epoch(steps_per_epoch, accumulate_steps):
    return math.ceil(steps_per_epoch / accumulate_steps)


class GradAccumulator(nn.Cell):
    """Sums of gradients between updates. `__call__(grads)` adds them and returns (mean of
    the sums, ready): ready is a bool tensor, True on the micro-batch that closes a cycle,
    after which the sums start again from zero."""

    def __init__(self, params, accumulate_steps, steps_per_epoch):
        super().__init__(auto_prefix=False)
        if accumulate_steps < 1:
            raise ValueError(f"accumulate_steps must be >= 1, got {accumulate_steps!r}")
        self.k, self.steps = int(accumulate_steps), int(steps_per_epoch)
        self.sums = ParameterTuple(
            Parameter(Tensor(np.zeros(p.shape, np.float32)), name="accumulated." + p.name,
                      requires_grad=False) for p in params)
        # micro-batches seen since the epoch began, and since the last update
        self.position = Parameter(Tensor(0, ms.int32), name="accumulate_position",
                                  requires_grad=False)
        self.count = Parameter(Tensor(0.0, ms.float32), name="accumulate_count",
                               requires_grad=False)

    def construct(self, grads):
        for total, grad in zip(self.sums, grads):
            ops.assign_add(total, grad.astype(ms.float32))
        position = self.position + 1
        count = self.count + 1.0
        ready = ops.logical_or(position % self.k == 0, position == self.steps)
        ops.assign(self.position, ops.select(position == self.steps,
                                             ops.zeros_like(position), position))
        ops.assign(self.count, ops.select(ready, ops.zeros_like(count), count))
        means = ()
        for total, grad in zip(self.sums, grads):
            means += ((total / count).astype(grad.dtype),)
        # read before the sums are cleared: MindSpore's auto-monad keeps program order
        for total in self.sums:
            ops.assign(total, ops.select(ready, ops.zeros_like(total), total))
        return means, ready
