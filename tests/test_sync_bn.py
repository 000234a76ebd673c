"""sync_bn: the BatchNorm -> SyncBatchNorm conversion (engine/sync_bn.py) on a tiny member of
every family. MindSpore has no CPU SyncBatchNorm kernel and CPU has no collective to
synchronise over, so the converted layers are built with process_groups=0: real
nn.SyncBatchNorm cells (the class AMP and the forward see) that synchronise nothing, whose
forward is BatchNorm's. What the forward calls, the parameters and their updates are
checked up to that boundary."""
import collections

import numpy as np
import mindspore as ms
import pytest
from mindspore import Tensor, nn
from mindspore.nn.layer import normalization

from mindspore_acmix.engine import convert_sync_batchnorm
from mindspore_acmix.engine.amp import mixed_precision
from mindspore_acmix.layers.stochastic import set_key
from mindspore_acmix.tools.graph_dtypes import compiled_ops
from mindspore_acmix.tools.preflight import TINY, build_tiny, tiny_batch


def batchnorms(net):
    return [cell for _, cell in net.cells_and_names() if type(cell) is nn.BatchNorm2d]


@pytest.fixture
def count_calls(monkeypatch):
    """{class name: forward calls} of every BatchNorm-like cell (PyNative runs construct)."""
    calls = collections.Counter()
    real = normalization._BatchNorm.construct

    def construct(self, x):
        calls[type(self).__name__] += 1
        return real(self, x)

    monkeypatch.setattr(normalization._BatchNorm, "construct", construct)
    return calls


@pytest.mark.parametrize("family", sorted(TINY))
def test_every_batchnorm_the_forward_calls_is_replaced(family, pynative, count_calls):
    """Same names and values, eps and momentum; the forward (training mode) calls only the
    new cells, gives the same output and moves the statistics by the same amount."""
    original, size = build_tiny(family)
    net, _ = build_tiny(family)
    old = batchnorms(net)
    for cell in old:  # statistics away from their initial values: copying them is checked
        cell.moving_mean.set_data(Tensor(np.full(cell.num_features, 0.3, np.float32)))
    ms.load_param_into_net(original, {p.name: p for p in net.get_parameters()})
    before = {p.name: p.asnumpy().copy() for p in net.get_parameters()}
    settings = [(cell.eps, cell.momentum) for cell in old]

    replaced = convert_sync_batchnorm(net, process_groups=0)

    assert replaced == len(old) and not batchnorms(net)
    if family in ("swin_acmix", "pvt_acmix"):
        assert replaced == 0  # LayerNorm only: nothing to replace, nothing left
    else:
        assert replaced >= 4
    syncs = [cell for _, cell in net.cells_and_names() if isinstance(cell, nn.SyncBatchNorm)]
    assert [(cell.eps, cell.momentum) for cell in syncs] == settings
    after = {p.name: p.asnumpy() for p in net.get_parameters()}
    assert after.keys() == before.keys()
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)

    x = Tensor(tiny_batch(size)[0])
    original.set_train(True)
    net.set_train(True)
    set_key(0)  # the same DropPath masks in both (Swin's and PVT's recipes drop paths)
    expected = original(x).asnumpy()
    count_calls.clear()
    set_key(0)
    out = net(x).asnumpy()
    assert dict(count_calls) == ({"SyncBatchNorm": replaced} if replaced else {})
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    moved = {p.name: p.asnumpy() for p in original.get_parameters()}
    for p in net.get_parameters():
        if "moving_" in p.name:
            np.testing.assert_allclose(p.asnumpy(), moved[p.name], rtol=1e-6, atol=1e-7,
                                       err_msg=p.name)
            assert not np.array_equal(p.asnumpy(), before[p.name]), p.name


@pytest.mark.slow
def test_the_compiled_amp_forward_runs_sync_batchnorm_in_float32():
    """Graph mode, AMP O2: every BatchNorm operator of the compiled forward (the downsample
    branches' included) belongs to a SyncBatchNorm and reads float32."""
    net, size = build_tiny("resnet")
    replaced = convert_sync_batchnorm(net, process_groups=0)
    amp_net = mixed_precision(net, "O2")
    amp_net.set_train(True)
    x = Tensor(tiny_batch(size)[0])
    norms = [(inputs, scope) for op, inputs, _, scope in compiled_ops(lambda: amp_net(x))
             if op == "BatchNorm"]
    assert len(norms) == replaced
    for inputs, scope in norms:
        assert "-SyncBatchNorm/" in scope and inputs[0] == "Float32", (scope, inputs)
