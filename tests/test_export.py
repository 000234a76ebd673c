"""export.py: MindIR and ONNX files that reproduce the network they came from, and one-line
errors for what cannot be exported.

Parity is measured against the network as training computes it (on CPU: the C++ attention
kernel and the per-tap matmul convolutions); the exported file holds the portable
formulation (graph-operator attention, native convolutions). Every export runs in a
temporary working directory, which must stay empty (no rank_0/ or other stray files).
"""
import os
import re
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, nn

from conftest import assert_close, write_config
from mindspore_acmix.checkpoint import load_network_checkpoint
from mindspore_acmix.cli import REPO_DIR
from mindspore_acmix.config import resolve
from mindspore_acmix.convert import main as convert_main
from mindspore_acmix.deploy import (ExportError, MindIRRunner, check_format, export_network,
                                    prepare_for_export)
from mindspore_acmix.engine.build import build_network
from mindspore_acmix.layers.acmix import ACmix
from mindspore_acmix.layers.conv import SameConv2d

TINY_CONFIG = os.path.join(REPO_DIR, "configs", "digits", "acmix_resnet_tiny.yaml")
R50_CONFIG = os.path.join(REPO_DIR, "configs", "imagenet", "acmix_resnet50.yaml")
MINDIR_REL, ONNX_REL = 1e-5, 1e-4


def run_export(*args, cwd):
    env = dict(os.environ, GLOG_v="3", PYTHONPATH=REPO_DIR)
    return subprocess.run([sys.executable, os.path.join(REPO_DIR, "export.py"), *args],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=900)


def randomize(net, seed=1):
    """Trained-like state: BatchNorm statistics and affine terms and ACmix rates away from
    their initial values, residual branches scaled down so the logits keep a sane size."""
    rng = np.random.default_rng(seed)
    for name, cell in net.cells_and_names():
        if isinstance(cell, nn.BatchNorm2d):
            c = cell.gamma.shape[0]
            gamma = rng.uniform(0.05, 0.2, c) if name.endswith("bn3") else rng.uniform(0.5, 1.5, c)
            for param, value in ((cell.gamma, gamma), (cell.beta, rng.normal(0, 0.1, c)),
                                 (cell.moving_mean, rng.normal(0, 0.1, c)),
                                 (cell.moving_variance, rng.uniform(0.5, 2.0, c))):
                param.set_data(Tensor(value.astype(np.float32)))
        elif isinstance(cell, ACmix):
            for param in (cell.rate1, cell.rate2):
                param.set_data(Tensor(rng.uniform(0.2, 0.8, 1).astype(np.float32)))
    return net


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """(config, checkpoint path, training-form network) of a randomised acmix_resnet_tiny."""
    cfg = resolve(TINY_CONFIG, [("device", "CPU")])
    ms.set_seed(0)
    net = randomize(build_network(cfg))
    net.set_train(False)
    path = str(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")
    ms.save_checkpoint(net, path)
    return cfg, path, net


def onnx_logits(path, x):
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def test_export_switches_to_portable_operators_only(tiny_checkpoint):
    cfg, path, _ = tiny_checkpoint
    net = prepare_for_export(load_network_checkpoint(build_network(cfg), path))
    acmix = [c for _, c in net.cells_and_names() if isinstance(c, ACmix)]
    convs = [c for _, c in net.cells_and_names() if isinstance(c, SameConv2d)]
    assert len(acmix) == 4 and all(c.attn_impl == "halo" for c in acmix)
    assert convs and all(c.impl == "native" for c in convs)
    assert not net.training
    assert all(p.dtype == ms.float32 for p in net.get_parameters())
    # the training network is a separate object and keeps its fast CPU implementations
    assert build_network(cfg).layer1[0].conv2.attn_impl in ("aot", "halo")


@pytest.mark.slow
def test_mindir_and_onnx_match_the_trained_network(tiny_checkpoint, tmp_path, monkeypatch):
    """At a batch and a non-square size other than the recipe's (1 x 32 x 32: the MindIR of
    test_infer_310, whose flow gives eval.py's results)."""
    pytest.importorskip("onnxruntime")
    shape = (3, 3, 40, 48)
    monkeypatch.chdir(tmp_path)
    cfg, path, trained = tiny_checkpoint
    x = np.random.default_rng(40).standard_normal(shape).astype(np.float32)
    expected = trained(Tensor(x)).asnumpy()
    net = prepare_for_export(load_network_checkpoint(build_network(cfg), path))
    mindir = export_network(net, "MINDIR", shape, str(tmp_path / "out" / "tiny"))
    onnx_file = export_network(net, "onnx", shape, str(tmp_path / "out" / "tiny.onnx"))
    assert sorted(os.listdir(tmp_path)) == ["out"]
    assert sorted(os.listdir(tmp_path / "out")) == ["tiny.mindir", "tiny.onnx"]
    got = MindIRRunner(mindir)(x)
    assert got.shape == (3, 10)
    assert_close(got, expected, MINDIR_REL, f"MindIR {shape}")
    assert_close(onnx_logits(onnx_file, x), expected, ONNX_REL, f"ONNX {shape}")


@pytest.mark.slow
def test_converted_acmix_resnet50_exports_to_mindir_with_parity(tmp_path):
    """An official-layout state dict -> convert -> export.py (1x3x224x224) -> GraphCell."""
    torch = pytest.importorskip("torch", reason="the official-layout model is PyTorch "
                                "(requirements-test.txt)")
    import torch_reference as ref
    module = ref.perturb_(ref.ACmixResNet([3, 4, 6, 3], num_classes=1000).eval(), 2)
    torch.save(module.state_dict(), tmp_path / "official.pth")
    ckpt = str(tmp_path / "acmix_resnet50.ckpt")
    assert convert_main(["--model", "acmix_resnet50", "--input", str(tmp_path / "official.pth"),
                         "--output", ckpt]) == 0
    work = tmp_path / "work"
    work.mkdir()
    proc = run_export("--config", R50_CONFIG, "--checkpoint", ckpt, "--output", "r50",
                      "--set", "device=CPU", cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "input (1, 3, 224, 224)" in proc.stdout
    assert sorted(os.listdir(work)) == ["r50.mindir"]
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    net = load_network_checkpoint(build_network(resolve(R50_CONFIG, [("device", "CPU")])), ckpt)
    net.set_train(False)
    expected = net(Tensor(x)).asnumpy()
    got = MindIRRunner(str(work / "r50.mindir"))(x)
    assert got.shape == (1, 1000)
    assert_close(got, expected, MINDIR_REL, "acmix_resnet50 MindIR vs its network")
    with torch.no_grad():
        original = module(torch.from_numpy(x)).numpy()
    assert_close(got, original, 1e-4, "acmix_resnet50 MindIR vs the PyTorch original")


def test_format_names():
    assert check_format("mindir", "CPU") == "MINDIR"
    assert check_format("Onnx", "GPU") == "ONNX"
    assert check_format("AIR", "Ascend") == "AIR"
    with pytest.raises(ExportError, match="AIR export needs an Ascend backend.*device here is "
                                          "CPU"):
        check_format("AIR", "CPU")
    with pytest.raises(ExportError, match="unknown file format 'TFLITE'"):
        check_format("TFLITE", "CPU")


@pytest.mark.parametrize("case,message", [
    ("air", "error: AIR export needs an Ascend backend"),
    ("format", "error: unknown file format 'pb': choose one of MINDIR, AIR, ONNX"),
    ("size", "error: --image-size takes SIZE or HEIGHT WIDTH, got 3 numbers"),
    ("missing", "error: checkpoint .*missing.ckpt does not exist"),
    ("corrupt", "error: checkpoint .*corrupt.ckpt is truncated or corrupt"),
    ("classes", "error: checkpoint .* does not fit this network: parameter fc.weight has shape "
                r"\(10, 512\) there but \(7, 512\) here"),
])
def test_errors_are_one_line_with_exit_code_2(tiny_checkpoint, case, message, tmp_path):
    _, good, _ = tiny_checkpoint
    (tmp_path / "corrupt.ckpt").write_bytes(b"\x00not a checkpoint" * 64)
    args = {"air": ["--checkpoint", good, "--file-format", "AIR"],
            "format": ["--checkpoint", good, "--file-format", "pb"],
            "size": ["--checkpoint", good, "--image-size", "8", "16", "24"],
            "missing": ["--checkpoint", str(tmp_path / "missing.ckpt")],
            "corrupt": ["--checkpoint", str(tmp_path / "corrupt.ckpt")],
            "classes": ["--checkpoint", good, "--config", write_config(
                tmp_path / "seven.yaml", model="acmix_resnet_tiny", num_classes=7, image_size=32,
                eval_resize=32, data_dir=str(tmp_path))]}[case]
    work = tmp_path / "work"
    work.mkdir()
    proc = run_export("--config", TINY_CONFIG, "--set", "device=CPU", *args, cwd=work)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert re.search(message, errors[0]), errors[0]
    assert os.listdir(work) == []


def test_onnx_of_an_untranslatable_operator_is_an_export_error(tmp_path, monkeypatch):
    """Swin and PVT use the exact (erf) GELU, which MindSpore's ONNX exporter cannot translate:
    an ExportError (one 'error:' line in export.py) that points to MINDIR."""
    monkeypatch.chdir(tmp_path)

    class ExactGelu(nn.Cell):
        def __init__(self):
            super().__init__()
            self.act = nn.GELU(approximate=False)

        def construct(self, x):
            return self.act(x).mean(axis=(2, 3))

    with pytest.raises(ExportError, match="ONNX exporter cannot translate this network.*MINDIR"):
        export_network(ExactGelu(), "ONNX", (1, 3, 8, 8), str(tmp_path / "gelu"))
    assert os.listdir(tmp_path) == []  # no gelu.onnx, no rank_0/
