"""The overflow verdict of a loss-scaled step (engine/overflow.py) on the Ascend 910A path,
run on CPU with a stand-in for the float status register (its operators exist on Ascend
only): the register is cleared before the forward, read after the gradients, and per
micro-batch under accumulation. The values path (GPU, CPU) is test_reliability's
test_loss_scaling_skips_a_non_finite_step and the msrun harness of test_distributed."""
import numpy as np
import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops

from mindspore_acmix.engine.accumulate import GradAccumulator
from mindspore_acmix.engine.overflow import uses_status_register
from mindspore_acmix.engine.step import TrainStep

# the stand-in register: an int32 (8,) device buffer, set by "kernels" that saturate
REGISTER = Parameter(Tensor(np.zeros(8, np.int32)), name="fake_float_status",
                     requires_grad=False)
SATURATED = 1000.0  # an input at least this large "saturates" in the forward's kernel


class FakeRegister(nn.Cell):
    def clear(self, status):
        return ops.depend(status, ops.assign(REGISTER, ops.zeros_like(REGISTER)))

    def read(self, status):
        return ops.depend(REGISTER + status * 0, status)


class SaturatingNet(nn.Cell):
    """A Dense layer whose "kernel" sets the register, as a saturating float16 kernel on
    910A would, while its outputs stay finite."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Dense(4, 3)

    def construct(self, x):
        flag = (ops.abs(x) >= SATURATED).any().astype(ms.int32)
        x = ops.depend(x, ops.assign(REGISTER, ops.maximum(REGISTER, flag)))
        return self.fc(ops.clip_by_value(x, -1.0, 1.0))


def make_step(accumulate=1):
    ms.set_seed(0)
    net = SaturatingNet()
    opt = nn.SGD(net.trainable_params(), 0.1)
    step = TrainStep(net, nn.CrossEntropyLoss(), opt, 1, None, use_loss_scale=True,
                     overflow_register=FakeRegister())
    if accumulate > 1:
        step.accumulator = GradAccumulator(opt.parameters, accumulate, 100)
    return net, opt, step


LABELS = Tensor(np.array([0, 1], np.int32))
KEY = Tensor(np.int32(0))
CLEAN = Tensor(np.full((2, 4), 0.5, np.float32))
SATURATING = Tensor(np.array([[SATURATED, 0, 0, 0], [0.5] * 4], np.float32))


def updates(opt):
    return int(opt.global_step.asnumpy().reshape(-1)[0])


def test_a_stale_register_is_not_charged_to_the_step():
    """Set before the step (the previous step's optimizer, EMA, collectives or an evaluation
    pass): cleared before the forward, so the step updates."""
    _, opt, step = make_step()
    REGISTER.set_data(Tensor(np.ones(8, np.int32)))
    _, overflow = step(CLEAN, LABELS, KEY)
    assert not bool(overflow.asnumpy()) and updates(opt) == 1


def test_an_overflow_in_the_forward_skips_the_step_although_gradients_are_finite():
    net, opt, step = make_step()
    before = net.fc.weight.asnumpy().copy()
    scale = float(step.scaler.scale_value.asnumpy())
    loss, overflow = step(SATURATING, LABELS, KEY)
    assert bool(overflow.asnumpy()) and np.isfinite(float(loss.asnumpy()))
    assert updates(opt) == 0 and np.array_equal(net.fc.weight.asnumpy(), before)
    assert float(step.scaler.scale_value.asnumpy()) == scale / 2
    _, overflow = step(CLEAN, LABELS, KEY)
    assert not bool(overflow.asnumpy()) and updates(opt) == 1


def test_accumulation_keeps_a_micro_batch_overflow_until_the_update():
    """The register is cleared before every micro-batch: the first micro-batch's overflow
    must still skip the cycle's update, and the next cycle start clean."""
    _, opt, step = make_step(accumulate=2)
    step(SATURATING, LABELS, KEY)
    _, overflow = step(CLEAN, LABELS, KEY)
    assert bool(overflow.asnumpy()) and updates(opt) == 0
    step(CLEAN, LABELS, KEY)
    _, overflow = step(CLEAN, LABELS, KEY)
    assert not bool(overflow.asnumpy()) and updates(opt) == 1


def test_the_register_is_used_on_ascend_910a_and_saturation_mode_only():
    assert not uses_status_register("CPU") and not uses_status_register("GPU")
