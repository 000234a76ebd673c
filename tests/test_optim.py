"""`optimizer: adamw` is torch.optim.AdamW (engine/optim.py): the official recipes' optimizer,
bias correction included, with the recipes' decay and no-decay groups and an lr per step."""
import numpy as np
import mindspore as ms
import pytest
import torch
from mindspore import Tensor, nn

from mindspore_acmix.engine.optim import AdamW, optimizer_state
from mindspore_acmix.engine.step import TrainStep
from mindspore_acmix.seeding import step_key
from test_training_options import Tiny

LRS = np.array([1e-3, 4e-3, 2e-3, 3e-3, 1e-3, 5e-4], np.float32)
WEIGHT_DECAY = 0.05


def ms_run(optimizer_class):
    """Parameters after len(LRS) steps, weights decayed and biases not (the recipes' groups)."""
    ms.set_seed(0)
    net = Tiny()
    start = {p.name: p.asnumpy().copy() for p in net.trainable_params()}
    params = net.trainable_params()
    groups = [{"params": [p for p in params if p.name.endswith("weight")],
               "weight_decay": WEIGHT_DECAY},
              {"params": [p for p in params if p.name.endswith("bias")], "weight_decay": 0.0},
              {"order_params": params}]
    opt = optimizer_class(groups, learning_rate=Tensor(LRS), beta1=0.9, beta2=0.999, eps=1e-8)
    step = TrainStep(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"), opt,
                     1, None, False)
    x, y = batch()
    for n in range(len(LRS)):
        step(Tensor(x[n]), Tensor(y[n]), step_key(0, 0, n))
    return start, {p.name: p.asnumpy() for p in net.trainable_params()}, opt, net


def batch():
    rng = np.random.default_rng(1)
    return (rng.normal(size=(len(LRS), 5, 6)).astype(np.float32),
            rng.integers(0, 3, (len(LRS), 5)).astype(np.int32))


def torch_run(start):
    """The same steps with torch.optim.AdamW (torch's Linear holds weight as (out, in) too)."""
    fc1, fc2 = torch.nn.Linear(6, 8), torch.nn.Linear(8, 3)
    layers = {"fc1": fc1, "fc2": fc2}
    with torch.no_grad():
        for name, value in start.items():
            layer, kind = name.split(".")
            getattr(layers[layer], kind).copy_(torch.tensor(value))
    weights = [fc1.weight, fc2.weight]
    opt = torch.optim.AdamW([{"params": weights, "weight_decay": WEIGHT_DECAY},
                             {"params": [fc1.bias, fc2.bias], "weight_decay": 0.0}],
                            lr=1.0, betas=(0.9, 0.999), eps=1e-8)
    x, y = batch()
    for n, lr in enumerate(LRS):
        for group in opt.param_groups:
            group["lr"] = float(lr)
        loss = torch.nn.functional.cross_entropy(
            fc2(torch.tanh(fc1(torch.tensor(x[n])))), torch.tensor(y[n]).long())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {f"{name}.{kind}": getattr(layer, kind).detach().numpy()
            for name, layer in layers.items() for kind in ("weight", "bias")}


@pytest.fixture(scope="module")
def torch_and_ours():
    start, ours, opt, net = ms_run(AdamW)
    return torch_run(start), ours, start, opt, net


def test_adamw_matches_torch(torch_and_ours):
    expected, ours, start, _, _ = torch_and_ours
    for name, value in expected.items():
        moved = np.abs(value - start[name]).max()
        assert moved > 1e-3, name  # the steps did move every parameter
        np.testing.assert_allclose(ours[name], value, rtol=0, atol=1e-6 + 1e-4 * moved,
                                   err_msg=name)


def test_mindspore_adamweightdecay_differs(torch_and_ours):
    """What `adamw` was before: MindSpore's nn.AdamWeightDecay, without bias correction
    (the first step 3.2x torch's), far from torch: the comparison above can fail."""
    expected, _, _, _, _ = torch_and_ours
    _, plain, _, _ = ms_run(nn.AdamWeightDecay)
    assert max(np.abs(plain[n] - expected[n]).max() for n in expected) > 5e-3


def test_adamw_state_holds_the_bias_correction(torch_and_ours):
    """beta^t are saved and restored with the moments (a resumed run keeps its correction)."""
    _, _, _, opt, net = torch_and_ours
    state = {p.name: p.asnumpy() for p in optimizer_state(opt, net)}
    assert np.isclose(state["beta1_power"], 0.9 ** len(LRS))
    assert np.isclose(state["beta2_power"], 0.999 ** len(LRS))
