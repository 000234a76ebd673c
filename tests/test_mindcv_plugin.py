"""mindspore_acmix.mindcv_plugin with mindcv 0.3.0: our ACmix models through
mindcv.create_model (classifier, features_only, checkpoints, EMA weights, optimizer)."""
import numpy as np
import pytest
from mindspore import Tensor

mindcv = pytest.importorskip("mindcv", reason="mindcv is not installed "
                             "(pip install 'mindspore-acmix[mindcv]')")

import mindspore_acmix.mindcv_plugin as plugin  # noqa: E402
from mindspore_acmix import create_model  # noqa: E402
from mindspore_acmix.checkpoint import save_checkpoint_atomic  # noqa: E402


def test_registers_the_acmix_models_only():
    names = mindcv.list_models("*acmix*")
    assert names == plugin.acmix_models() and "acmix_resnet50" in names
    assert "swin_acmix_tiny" in names and "pvt_acmix_tiny" in names
    # MindCV's own resnet50 is untouched
    assert mindcv.models.registry.model_entrypoint("resnet50").__module__ == "mindcv.models.resnet"
    cfg = mindcv.models.registry.get_pretrained_cfg("acmix_resnet50")
    assert cfg["classifier"] == "fc" and cfg["input_size"] == (3, 224, 224) and not cfg["url"]
    assert not mindcv.models.registry.is_model_pretrained("acmix_resnet50")


def test_create_model_classifier_and_features(pynative):
    x = Tensor(np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32))
    net = mindcv.create_model("acmix_resnet_tiny", num_classes=4, in_channels=1,
                              drop_rate=0.1, drop_path_rate=0.1)
    net.set_train(False)
    assert net(x).shape == (2, 4) and net.default_cfg["num_classes"] == 4
    feats = mindcv.create_model("acmix_resnet_tiny", in_channels=1, features_only=True,
                                out_indices=[1, 3])
    feats.set_train(False)
    assert [tuple(f.shape) for f in feats(x)] == [(2, 128, 16, 16), (2, 512, 4, 4)]
    assert feats.out_channels == [128, 512]
    with pytest.raises(ValueError, match="no pretrained weights ship"):
        mindcv.create_model("acmix_resnet_tiny", pretrained=True)


def test_checkpoints_and_ema_weights_load_the_mindcv_way(tmp_path):
    """MindCV loads non-strictly (load_param_into_net: extra entries such as our optimizer
    state are ignored); with ema=True it takes the `ema.` copies, which our EMA writes."""
    source = create_model("acmix_resnet_tiny", num_classes=4)
    entries = [{"name": p.name, "data": p} for p in source.get_parameters()]
    entries += [{"name": "ema." + p.name, "data": Tensor(p.asnumpy() + 1)}
                for p in source.get_parameters()]
    entries += [{"name": "moments.fc.weight", "data": Tensor(np.zeros((4, 512), np.float32))}]
    ckpt = save_checkpoint_atomic(entries, str(tmp_path / "run.ckpt"))
    net = mindcv.create_model("acmix_resnet_tiny", num_classes=4, checkpoint_path=ckpt)
    np.testing.assert_array_equal(net.layer2[0].conv2.rate1.asnumpy(),
                                  source.layer2[0].conv2.rate1.asnumpy())
    ema = mindcv.create_model("acmix_resnet_tiny", num_classes=4, checkpoint_path=ckpt, ema=True)
    np.testing.assert_array_equal(ema.fc.weight.asnumpy(), source.fc.weight.asnumpy() + 1)


def test_mindcv_optimizer_reads_no_weight_decay():
    from mindcv.optim import create_optimizer

    net = mindcv.create_model("swin_acmix_tiny", num_classes=3, img_size=32, embed_dim=12,
                              depths=(1, 1), num_heads=(3, 3), window_size=4)
    opt = create_optimizer(net, opt="adamw", lr=1e-3, weight_decay=0.05,
                           weight_decay_filter="norm_and_bias")
    decay = {p.name: wd for p, wd in zip(opt.parameters, opt.group_weight_decay)}
    assert decay["layers.0.blocks.0.attn.rate1"] == 0.0
    assert decay["layers.0.blocks.0.attn.relative_position_bias_table"] == 0.0
    assert decay["layers.0.blocks.0.attn.qkv.weight"] == pytest.approx(0.05)


def test_launcher_runs_a_script_with_the_models_registered(tmp_path, monkeypatch, capsys):
    script = tmp_path / "train.py"
    script.write_text("import sys, mindcv\n"
                      "print(sys.argv[1:], mindcv.models.registry.is_model('acmix_resnet26'))\n")
    monkeypatch.setattr("sys.argv", list(__import__("sys").argv))
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    assert plugin.launch([str(script), "--model", "acmix_resnet26"]) == 0
    assert capsys.readouterr().out.strip() == "['--model', 'acmix_resnet26'] True"
    assert plugin.launch([str(tmp_path / "missing.py")]) == 2
