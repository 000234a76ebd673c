"""python -m mindspore_acmix.tools.rates and engine/rate_figures.py: the learned rate1 / rate2 of
every ACmix layer."""
import json

import numpy as np
import pytest
from mindspore import Tensor

from mindspore_acmix import create_model
from mindspore_acmix.checkpoint import save_checkpoint_atomic
from mindspore_acmix.engine.rate_figures import from_network
from mindspore_acmix.tools import rates

from test_conventions import PVT, SWIN


def set_rates(net):
    """rate1 = 0.1 * k, rate2 = 1 - 0.1 * k for the k-th ACmix layer (network order)."""
    layers = [p for p in net.get_parameters() if p.name.endswith(".rate1")]
    for k, p in enumerate(layers):
        p.set_data(Tensor(np.array([0.1 * k], np.float32)))
        rate2 = [q for q in net.get_parameters() if q.name == p.name[:-1] + "2"][0]
        rate2.set_data(Tensor(np.array([1 - 0.1 * k], np.float32)))
    return len(layers)


def test_checkpoint_to_json_and_png(tmp_path, capsys):
    from PIL import Image

    net = create_model("acmix_resnet_tiny", num_classes=10)
    assert set_rates(net) == 4
    entries = [{"name": p.name, "data": p} for p in net.get_parameters()]
    # an optimizer slot and an EMA copy of a rate: told apart from the network's own
    entries += [{"name": "moments.layer1.0.conv2.rate1", "data": Tensor([9.0])},
                {"name": "ema.layer1.0.conv2.rate1", "data": Tensor([7.0])},
                {"name": "ema.layer1.0.conv2.rate2", "data": Tensor([3.0])}]
    ckpt = save_checkpoint_atomic(entries, str(tmp_path / "tiny.ckpt"))
    out_json, out_png = tmp_path / "rates.json", tmp_path / "rates.png"
    assert rates.run([ckpt, "--json", str(out_json), "--png", str(out_png)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 4 and "layer1.0.conv2" in printed[0]
    data = json.loads(out_json.read_text())
    assert [r["name"] for r in data["layers"]] == [f"layer{s}.0.conv2" for s in (1, 2, 3, 4)]
    assert [r["stage"] for r in data["layers"]] == [1, 2, 3, 4]
    np.testing.assert_allclose([r["rate1"] for r in data["layers"]], [0, 0.1, 0.2, 0.3],
                               atol=1e-6)
    np.testing.assert_allclose([r["ratio"] for r in data["layers"][1:]],
                               [0.1 / 0.9, 0.2 / 0.8, 0.3 / 0.7], rtol=1e-5)
    np.testing.assert_allclose(data["stages"][1]["attention_share"], 0.1, rtol=1e-5)
    with Image.open(out_png) as img:  # a real figure (its content: test_figures.py)
        assert img.format == "PNG" and min(img.size) > 300
    assert rates.run([ckpt, "--ema", "--json", str(out_json)]) == 0
    ema = json.loads(out_json.read_text())["layers"]
    assert [(r["rate1"], r["rate2"]) for r in ema] == [(7.0, 3.0)]


@pytest.mark.parametrize("name,kwargs,names", [
    ("swin_acmix_tiny", SWIN, ["layers.0.blocks.0.attn", "layers.1.blocks.0.attn",
                               "layers.2.blocks.0.attn"]),
    ("pvt_acmix_tiny", PVT, [f"block{s}.0.attn" for s in (1, 2, 3, 4)]),
])
def test_transformer_families_in_network_order(name, kwargs, names):
    net = create_model(name, **kwargs)
    set_rates(net)
    layers = from_network(net)
    assert [r["name"] for r in layers] == names
    assert [r["stage"] for r in layers] == list(range(1, len(names) + 1))
    np.testing.assert_allclose([r["rate2"] for r in layers],
                               [1 - 0.1 * k for k in range(len(names))], rtol=1e-6)


def test_errors_are_one_line(tmp_path, capsys):
    plain = save_checkpoint_atomic(create_model("resnet_tiny", num_classes=3),
                                   str(tmp_path / "plain.ckpt"))
    assert rates.run([plain]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "no ACmix rates" in err[0]
    assert rates.run([str(tmp_path / "missing.ckpt")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    net = create_model("acmix_resnet_tiny", num_classes=3)
    ckpt = save_checkpoint_atomic(net, str(tmp_path / "acmix.ckpt"))
    assert rates.run([ckpt, "--json", str(tmp_path)]) == 2  # a directory
    assert "cannot write" in capsys.readouterr().err
