"""Loading official-named state dicts, and the .pth -> .ckpt command."""
import subprocess
import sys

import numpy as np
import pytest

from mindspore_acmix import create_model
from mindspore_acmix.convert import load_torch_state_dict, main, unwrap_state_dict
from mindspore_acmix.layers import ACmix

from conftest import load_golden, official_state


def golden_block_state():
    _, golden = load_golden("bottleneck_32_16_s2_down")
    return official_state(golden)


def small_acmix_state():
    _, golden = load_golden("acmix_c16_h4_s1")
    return official_state(golden)


def test_loads_every_parameter_and_maps_batchnorm_names():
    from test_golden_parity import build_bottleneck
    ctor, _ = load_golden("bottleneck_32_16_s2_down")
    net = build_bottleneck(ctor)
    state = golden_block_state()
    loaded = load_torch_state_dict(net, state)
    assert "bn1.running_var" in loaded and loaded["bn1.running_var"].name == "bn1.moving_variance"
    assert loaded["downsample.1.weight"].name == "downsample.1.gamma"
    assert not any(k.endswith("num_batches_tracked") for k in loaded)
    assert len(loaded) == len(list(net.get_parameters()))
    np.testing.assert_array_equal(net.bn2.moving_mean.asnumpy(), state["bn2.running_mean"])


def test_missing_and_unexpected_keys_are_reported_and_nothing_is_written():
    net = ACmix(16, 16)
    before = net.conv1.weight.asnumpy().copy()
    state = small_acmix_state()
    del state["fc.weight"]
    state["conv4.weight"] = np.zeros((1,), np.float32)
    with pytest.raises(ValueError, match=r"missing for 1 parameters: fc\.weight.*"
                                         r"1 unexpected keys: conv4\.weight"):
        load_torch_state_dict(net, state)
    np.testing.assert_array_equal(net.conv1.weight.asnumpy(), before)
    loaded = load_torch_state_dict(net, state, strict=False)
    assert "fc.weight" not in loaded and "conv4.weight" not in loaded
    np.testing.assert_array_equal(net.conv1.weight.asnumpy(), state["conv1.weight"])


def test_wrong_shape_names_key_and_both_shapes():
    state = small_acmix_state()
    state["dep_conv.weight"] = np.zeros((16, 9, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"'dep_conv.weight' has shape \(16, 9, 5, 5\), but "
                                         r"parameter dep_conv.weight has shape \(16, 9, 3, 3\)"):
        load_torch_state_dict(ACmix(16, 16), state)


def test_unwrap_training_checkpoints():
    inner = {"module.conv1.weight": 1, "module.fc.bias": 2}
    assert unwrap_state_dict({"epoch": 3, "state_dict": inner}) == {"conv1.weight": 1, "fc.bias": 2}
    assert unwrap_state_dict({"model": {"a": 1}}) == {"a": 1}
    with pytest.raises(ValueError, match="no state dict found"):
        unwrap_state_dict({})


def test_torch_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    state = {k: torch.from_numpy(v) for k, v in small_acmix_state().items()}
    net = ACmix(16, 16)
    load_torch_state_dict(net, state)
    np.testing.assert_array_equal(net.fc.weight.asnumpy(), state["fc.weight"].numpy())


def test_cli_converts_an_official_pth_and_create_model_loads_it(tmp_path):
    torch = pytest.importorskip("torch")
    import torch_reference as ref
    module = ref.perturb_(ref.ACmixResNet([1, 2, 4, 1], num_classes=7), 3).eval()
    pth, ckpt = tmp_path / "official.pth", tmp_path / "out" / "converted.ckpt"
    # the official main.py saves {'epoch', 'arch', 'state_dict'} with DataParallel's prefix
    torch.save({"epoch": 90, "state_dict": {"module." + k: v
                                            for k, v in module.state_dict().items()}}, pth)
    assert main(["--model", "acmix_resnet26", "--num-classes", "7",
                 "--input", str(pth), "--output", str(ckpt)]) == 0
    net = create_model("acmix_resnet26", num_classes=7, checkpoint_path=str(ckpt))
    # the mapping itself: the direct load here, whose logits equal PyTorch's for a converted
    # acmix_resnet50 through the same command (test_export.py)
    direct = create_model("acmix_resnet26", num_classes=7)
    loaded = load_torch_state_dict(direct, module.state_dict())
    assert len(loaded) == len(list(net.get_parameters()))
    expected = dict(direct.parameters_and_names())
    for p in net.get_parameters():
        np.testing.assert_array_equal(p.asnumpy(), expected[p.name].asnumpy(), err_msg=p.name)


def test_cli_errors_are_one_line(tmp_path, capsys):
    pytest.importorskip("torch")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    assert main(["--model", "acmix_resnet26", "--input", str(bad),
                 "--output", str(tmp_path / "x.ckpt")]) == 2
    err = capsys.readouterr().err
    assert "is not a readable PyTorch checkpoint: it is not a PyTorch file" in err
    assert "weights_only` set to `False`" not in err        # torch's advice is not passed on
    assert not (tmp_path / "x.ckpt").exists()
    (tmp_path / "empty.pth").write_bytes(b"")
    assert main(["--model", "acmix_resnet26", "--input", str(tmp_path / "empty.pth"),
                 "--output", str(tmp_path / "x.ckpt")]) == 2
    assert "is not a readable PyTorch checkpoint: it is empty" in capsys.readouterr().err
    assert main(["--model", "nope", "--input", str(bad), "--output", str(tmp_path / "y")]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


def test_cli_without_torch_says_how_to_get_it(tmp_path):
    code = ("import sys; sys.modules['torch'] = None; "
            "from mindspore_acmix.convert import main; "
            f"sys.exit(main(['--model', 'resnet26', '--input', 'a.pth', '--output', 'b']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 1
    assert "reading .pth files needs PyTorch" in proc.stderr
