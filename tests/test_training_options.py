"""Gradient accumulation, the EMA of the weights and sync_bn (engine/accumulate.py, ema.py,
sync_bn.py) on the train step itself; their run through the Trainer (resume-exact, EMA
evaluation) is part of tests/test_training.py::test_resume_continues_exactly."""
import numpy as np
import mindspore as ms
import pytest
from mindspore import Tensor, nn

from mindspore_acmix import config as C
from mindspore_acmix.engine.accumulate import GradAccumulator
from mindspore_acmix.seeding import step_key
from mindspore_acmix.engine.ema import EMA
from mindspore_acmix.engine.sync_bn import check_sync_bn
from mindspore_acmix.engine.step import TrainStep


class Tiny(nn.Cell):
    """No BatchNorm: a micro-batch then sees the same function as the whole batch."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(6, 8)
        self.act = nn.Tanh()
        self.fc2 = nn.Dense(8, 3)

    def construct(self, x):
        return self.fc2(self.act(self.fc1(x)))


# the stochastic layers' key of a step (Tiny has none, but the step takes one)
KEY = step_key(0, 0, 0)


def make_step(accumulate, steps_per_epoch, ema_decay=None):
    ms.set_seed(0)
    net = Tiny()
    opt = nn.Momentum(net.trainable_params(), 0.1, 0.9, weight_decay=1e-3)
    step = TrainStep(net, nn.CrossEntropyLoss(), opt, 1, None, False)
    if accumulate > 1:
        step.accumulator = GradAccumulator(opt.parameters, accumulate, steps_per_epoch)
    if ema_decay is not None:
        step.ema = EMA(net, ema_decay)
    return net, opt, step


def weights(net):
    return {p.name: p.asnumpy().copy() for p in net.trainable_params()}


def test_accumulation_equals_the_larger_batch():
    """Batches of 8 then 4 (an epoch of 12 images) against micro-batches of 4 with
    accumulate_steps 2: updates after micro-batches 2 and 3 (the epoch's last, a short
    cycle), both times with the mean gradient of the images since the last update."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 6)).astype(np.float32)
    y = rng.integers(0, 3, 12).astype(np.int32)
    big_net, big_opt, big = make_step(1, 2)
    big(Tensor(x[:8]), Tensor(y[:8]), KEY)
    big(Tensor(x[8:]), Tensor(y[8:]), KEY)
    net, opt, small = make_step(2, 3)
    for epoch in range(2):  # the second epoch checks the cycle restarts at the boundary
        seen = []
        for i in range(3):
            small(Tensor(x[4 * i:4 * i + 4]), Tensor(y[4 * i:4 * i + 4]), KEY)
            seen.append(int(opt.global_step.asnumpy().item()))
        assert seen == [2 * epoch, 2 * epoch + 1, 2 * epoch + 2]
        if epoch == 0:
            for name, value in weights(big_net).items():
                np.testing.assert_allclose(weights(net)[name], value, rtol=1e-5, atol=1e-6,
                                           err_msg=name)
    assert all(not s.asnumpy().any() for s in small.accumulator.sums)  # empty at epoch end


def test_ema_follows_each_update():
    x = Tensor(np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32))
    y = Tensor(np.array([0, 1, 2, 0], np.int32))
    net, _, step = make_step(1, 1, ema_decay=0.75)
    before = weights(net)
    step(x, y, KEY)
    after = weights(net)
    ema = {e.name: e.asnumpy().copy() for e in step.ema.weights}  # asnumpy may be a view
    for name in before:
        np.testing.assert_allclose(ema["ema." + name], 0.75 * before[name] + 0.25 * after[name],
                                   rtol=1e-6, atol=1e-7)
    net.set_train(False)
    forward = ms.jit(net)
    forward(x)  # compiled before the swap, as the Evaluator's forward is
    step.ema.swap()  # the network now holds the EMA weights, the copies the network's
    hidden = np.tanh(x.asnumpy() @ ema["ema.fc1.weight"].T + ema["ema.fc1.bias"])
    np.testing.assert_allclose(forward(x).asnumpy(),
                               hidden @ ema["ema.fc2.weight"].T + ema["ema.fc2.bias"],
                               rtol=1e-5, atol=1e-6)
    step.ema.swap()
    np.testing.assert_array_equal(net.fc1.weight.asnumpy(), after["fc1.weight"])


def test_options_are_checked():
    base = [("model", "resnet_tiny"), ("num_classes", 10), ("dataset", "digits")]
    for key, value, match in (("ema_decay", 1.0, "must be in .0, 1."),
                              ("accumulate_steps", 0, "must be > 0"),
                              ("sync_bn", "yes", "must be true or false")):
        with pytest.raises(C.ConfigError, match=match):
            C.resolve(None, base + [(key, value)])
    with pytest.raises(C.ConfigError, match="sync_bn needs Ascend or GPU.*set sync_bn: false"):
        check_sync_bn("CPU", 2)
    notes = []
    assert check_sync_bn("GPU", 1, notes.append) is False and "no effect" in notes[0]
    assert check_sync_bn("Ascend", 8)


def test_compiled_step_is_the_cell_at_its_jit_level():
    """runtime.compiled: in graph mode the trainer calls its step Cell itself, carrying the
    JitConfig (ms.jit around a Cell costs host time on every call), with the same updates
    as the ms.jit-wrapped step it replaced."""
    from mindspore_acmix.runtime import compiled, jit_level
    (net, _, ours), (reference_net, _, reference) = make_step(1, 4), make_step(1, 4)
    step = compiled(ours)
    assert step is ours and step.jit_config_dict["jit_level"] == jit_level()
    assert compiled(ours) is ours  # a second call keeps the first JitConfig
    wrapped = ms.jit(reference)
    rng = np.random.default_rng(3)
    for n in range(3):
        x = Tensor(rng.standard_normal((4, 6)).astype(np.float32))
        y = Tensor(rng.integers(0, 3, 4).astype(np.int32))
        loss, _ = step(x, y, step_key(0, 0, n))
        expected, _ = wrapped(x, y, step_key(0, 0, n))
        np.testing.assert_allclose(loss.asnumpy(), expected.asnumpy(), rtol=1e-6)
    start, other = weights(make_step(1, 4)[0]), weights(reference_net)
    for name, value in weights(net).items():
        np.testing.assert_allclose(value, other[name], rtol=1e-6, atol=1e-7)
        assert not np.allclose(value, start[name]), name  # the steps moved it
