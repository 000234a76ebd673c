"""The overflow verdict of a loss-scaled training step, reached as MindSpore's own
nn.TrainOneStepWithLossScaleCell and ms.amp.all_finite reach it on each target.

Where the values show it (GPU, CPU, Ascend 910B in its default INF_NAN mode) an overflow
leaves inf or nan in the gradients: the verdict is ms.amp.all_finite of the gradients.

On Ascend 910A, and on 910B in saturation mode (MS_ASCEND_CHECK_OVERFLOW_MODE=
SATURATION_MODE), float16 overflow saturates to the largest finite value, so the gradients
look finite; every kernel that overflows instead sets the device's float status register,
which stays set until it is cleared. The register belongs to the device, not to the step:
the optimizer and EMA updates, an evaluation pass and the previous step's collectives set it
too. ms.amp.all_finite reads and clears it after the read, which leaves everything that ran
since the previous read charged to the next step (spurious skips, halved scales). So the
step does what the loss-scale cell's start_overflow_check documents:

1. `start(x)`: NPUClearFloatStatusV2 before the forward, ordered after everything earlier in
   the step (the key write) by ops.depend on the step's input, and the forward ordered after
   the clear by ops.depend of the input on it;
2. `verdict(status, grads)`: NPUGetFloatStatusV2 after the gradients (ops.depend of the
   status on them, so the whole backward and the gradient reduction ran), non-zero = overflow.

With gradient accumulation the register is cleared and read in every micro-batch and the
verdicts are kept (`pending`) until the update (engine/step.py).

One verdict for all ranks: the local verdict (0 or 1) is summed over ranks in the collective
that also averages the loss (distributed.RankMean), so every rank skips or updates together.

Neither register operator exists on CPU: tests/test_overflow.py runs this path with stand-in
register operators (`StatusRegister`), and the GPU/CPU path for real.
"""
import os

import mindspore as ms
from mindspore import Tensor, nn, ops
from mindspore.ops.operations.math_ops import NPUClearFloatStatusV2, NPUGetFloatStatusV2


def uses_status_register(device=None):
    """Whether overflow on `device` (default: the current target) is read from the float
    status register: Ascend 910A, or 910B in saturation mode (MindSpore's own predicates)."""
    device = device or ms.get_context("device_target")
    if device != "Ascend":
        return False
    from mindspore.amp import _ascend_910a_target, _ascend_910b_target
    saturation = os.environ.get("MS_ASCEND_CHECK_OVERFLOW_MODE") == "SATURATION_MODE"
    return bool(_ascend_910a_target() or (_ascend_910b_target() and saturation))


class StatusRegister(nn.Cell):
    """The Ascend float status register: clear(status) and read(status) -> int32 (8,)."""

    def __init__(self):
        super().__init__()
        self.clear_op, self.read_op = NPUClearFloatStatusV2(), NPUGetFloatStatusV2()

    def clear(self, status):
        return self.clear_op(status)

    def read(self, status):
        return self.read_op(status)


class OverflowCheck(nn.Cell):
    """start(x) -> (x, status) before the forward; verdict(status, grads) -> float32 scalar,
    1.0 where this rank's step overflowed. `register`: a StatusRegister where the target
    reports overflow through it (default: detected, uses_status_register), else None."""

    def __init__(self, register="detect"):
        super().__init__()
        if register == "detect":
            register = StatusRegister() if uses_status_register() else None
        self.register = register

    def start(self, x):
        status = Tensor([0] * 8, ms.int32)
        if self.register is None:
            return x, status
        status = ops.depend(status, x)
        cleared = self.register.clear(status)
        return ops.depend(x, cleared), ops.depend(status, cleared)

    def verdict(self, status, grads):
        if self.register is None:
            return ops.logical_not(ms.amp.all_finite(grads)).astype(ms.float32)
        flags = self.register.read(ops.depend(status, grads))
        return (flags != 0).any().astype(ms.float32)
