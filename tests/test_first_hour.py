"""A new user's first hour (issue 15): the scripts run from a scratch working directory as a
user would type them, with MindSpore's logging at its own default (GLOG_v unset), and the
export and 310 commands of docs/export.md run verbatim in test_infer_310.py. One tiny training
run is shared by most checks."""
import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from mindspore import Tensor, nn

from conftest import (REPO_DIR, assert_close, error_line, make_image_folder, output_and_grads,
                      run_script, script_env, write_config)
from mindspore_acmix import atomic
from mindspore_acmix.checkpoint import save_checkpoint_atomic
from mindspore_acmix.config import resolve
from mindspore_acmix.data.pipeline import ImageFolderSplit
from mindspore_acmix.deploy import export_network, prepare_for_export
from mindspore_acmix.engine.optim import lr_schedule, warmup_steps
from mindspore_acmix.engine.report import Progress
from mindspore_acmix.engine.build import build_network
from mindspore_acmix.factory import create_model
from mindspore_acmix.models.resnet import StemMaxPool
from mindspore_acmix.runtime import DEVICES, _is_available

NOISE = ("[WARNING]", "[ERROR]", "Traceback", "ClearIsolatedNodes")
USER = {"GLOG_v": None}  # a user's shell: MindSpore's logging left at its default


def file_mode(path):
    return os.stat(path).st_mode & 0o777


def new_file_mode():
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    """(scratch working dir, output dir, train.py's process): `python train.py --config
    tiny.yaml --epochs 1` over a folder with one unreadable image, whose recipe (2 epochs,
    1 warm-up epoch) is longer than the run."""
    work = tmp_path_factory.mktemp("user")
    make_image_folder(str(work / "data"))
    (work / "data" / "train" / "class_0" / "notes.jpg").write_bytes(b"just some text\n")
    write_config(work / "tiny.yaml", data_dir="data", epochs=2, warmup_epochs=1,
                 output_dir="runs/tiny")
    proc = run_script("train.py", "--config", "tiny.yaml", "--epochs", "1", cwd=work, env=USER)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return work, work / "runs" / "tiny", proc


@pytest.mark.slow
def test_training_is_quiet_consistent_and_leaves_only_its_outputs(user):
    work, out, proc = user
    # MindSpore's warnings (device probing, graph compile, the skipped image's traceback)
    assert not any(word in proc.stderr for word in NOISE), proc.stderr[-3000:]
    assert "skipped 1 unreadable train and 0 val image(s)" in proc.stdout
    # a shortened run still trains at its peak rate: warm-up capped at 20% of 6 steps
    assert ("warm-up shortened to 1 step(s) (0.17 epochs): warmup_epochs 1 is more than 20% "
            "of this 1-epoch run") in proc.stdout
    # the live line's images/s is the figure metrics.jsonl records
    last = re.findall(r"step 6/6 .* ([\d.]+) img/s ETA (\S+)", proc.stdout)[-1]
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert float(last[0]) == pytest.approx(record["images_per_s"], abs=0.051)
    assert record["val_time_s"] > 0 and record["train_time_s"] > 0
    # written files follow the umask; no lock, no scratch folder, nothing in the cwd
    assert sorted(os.listdir(out)) == ["best.ckpt", "config.yaml", "curves.png",
                                       "epoch_0001.ckpt", "last.ckpt", "metrics.jsonl"]
    assert {name: file_mode(out / name) for name in os.listdir(out)} == dict.fromkeys(
        os.listdir(out), new_file_mode())
    assert sorted(os.listdir(work)) == ["data", "runs", "tiny.yaml"]


@pytest.mark.slow
def test_resume_keeps_the_runs_own_config_and_ctrl_c_says_where_it_stopped(user):
    work, out, _ = user
    # no --epochs: the run asked for 1 (its config.yaml), not the recipe's 2
    proc = run_script("train.py", "--resume", "auto", "--output-dir", "runs/tiny", cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resuming with the run's own settings ({out}/config.yaml)\n" in proc.stdout
    assert f"all 1 epochs are already done in {out}" in proc.stdout
    # an explicit change is applied and named; Ctrl-C in its epoch 2 ends with exit 130
    child = subprocess.Popen([sys.executable, os.path.join(REPO_DIR, "train.py"), "--resume",
                              "auto", "--output-dir", "runs/tiny", "--epochs", "3"], cwd=work,
                             env=script_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    lines = []
    try:
        for line in child.stdout:
            lines.append(line)
            if line.startswith("epoch 2/3 step 2/6"):
                child.send_signal(signal.SIGINT)
                break
        stdout, stderr = child.communicate(timeout=120)
    finally:
        child.kill()
    stdout = "".join(lines) + stdout
    assert "changed on this command line: epochs 1 -> 3" in stdout
    assert child.returncode == 130, stdout[-2000:] + stderr[-3000:]
    assert stderr.strip() == (f"stopped by Ctrl-C (SIGINT) in epoch 2 of 3; epoch 1 is saved "
                              f"in {out}: continue with python train.py --resume auto "
                              f"--output-dir {out}")
    assert "runtime" not in os.listdir(out) and ".lock" not in os.listdir(out)


TERMINATE = """
import os, signal, sys, time
from mindspore_acmix.startup import before_mindspore
before_mindspore(sys.argv)
from mindspore_acmix import cli
def main(argv):
    if argv == ["self"]:  # what MindSpore's data pipeline does on Ctrl-C
        os.kill(os.getpid(), signal.SIGTERM)
    print("ready", flush=True)
    while True:
        time.sleep(0.05)
sys.exit(cli.run(main))
"""


@pytest.mark.parametrize("sender, code, name", [("self", 130, "Ctrl-C (SIGINT)"),
                                                ("other", 143, "SIGTERM")])
def test_sigterm_from_this_process_is_ctrl_c_and_from_another_is_sigterm(tmp_path, sender,
                                                                       code, name):
    script = tmp_path / "terminate.py"
    script.write_text(TERMINATE)
    child = subprocess.Popen([sys.executable, str(script), sender], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=script_env(),
                             cwd=tmp_path)
    try:
        if sender == "other":
            assert child.stdout.readline() == "ready\n"
            child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == code and stderr == f"stopped by {name}\n", stderr


@pytest.mark.slow
def test_a_missing_device_is_one_line_and_leaves_no_folder(user):
    work, out, _ = user
    missing = [d for d in DEVICES if d != "CPU" and not _is_available(d)]
    if not missing:
        pytest.skip("every device is available here")
    for script, extra in (("train.py", ["--config", "tiny.yaml", "--output-dir", "new/run"]),
                          ("eval.py", ["--checkpoint", str(out / "best.ckpt")]),
                          ("export.py", ["--checkpoint", str(out / "best.ckpt")])):
        before = sorted(os.listdir(work))
        proc = run_script(script, "--device", missing[0], *extra, cwd=work, env=USER)
        line = error_line(proc)
        assert f"device {missing[0]} is not available" in line and "--device CPU" in line
        assert "[ERROR]" not in proc.stderr and sorted(os.listdir(work)) == before


def test_a_failed_start_leaves_no_folder_and_no_lock(user):
    work, _, _ = user
    proc = run_script("train.py", "--config", "tiny.yaml", "--batch-size", "500",
                      "--output-dir", "fresh/deeper/run", cwd=work)
    assert "fewer than one batch of 500" in error_line(proc)
    assert not (work / "fresh").exists()


def test_another_models_checkpoint_is_named(user):
    work, out, _ = user
    write_config(work / "other.yaml", model="acmix_resnet_tiny", data_dir="data", device="auto")
    proc = run_script("eval.py", "--config", "other.yaml", "--checkpoint", str(out / "best.ckpt"),
                      cwd=work, env=USER)
    assert "(a checkpoint of resnet_tiny; the config says acmix_resnet_tiny)" in error_line(proc)
    # the one line alone: no "Device Ascend is not available" from probing for device: auto
    assert not any(word in proc.stderr for word in NOISE), proc.stderr


def test_train_and_val_must_have_the_same_classes_and_empty_ones_are_named(user, tmp_path):
    work, _, _ = user
    root = make_image_folder(str(tmp_path / "data"), classes=2, train_per_class=12,
                             val_per_class=2)
    os.rename(root + "/val/class_1", root + "/val/class_9")
    write_config(tmp_path / "c.yaml", data_dir=root, num_classes=2, output_dir="r")
    line = error_line(run_script("train.py", "--config", str(tmp_path / "c.yaml"), cwd=tmp_path))
    assert "different class folders (only in train: class_1; only in val: class_9)" in line
    os.makedirs(root + "/train/class_2")
    cfg = resolve(write_config(tmp_path / "c.yaml", data_dir=root, num_classes=3))
    assert ImageFolderSplit(cfg, "train").warnings() == [
        f"warning: 1 class folder(s) of {root}/train hold no images: class_2 (the model still "
        "has an output for each; add images or remove the folder)"]


def test_image_check_takes_a_split_or_a_root_and_says_when_there_is_neither(user):
    work, _, _ = user

    def image_check(folder):
        return subprocess.run([sys.executable, "-W", "error", "-m",
                               "mindspore_acmix.data.image_check", folder],
                              capture_output=True, text=True, cwd=work, env=script_env())

    proc = image_check("data")  # the root: both splits, no RuntimeWarning
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == "data/train/class_0/notes.jpg: not a JPEG, PNG, BMP or TIFF image\n"
    assert proc.stderr == ("1 unreadable image(s) in data/train\n"
                           "0 unreadable image(s) in data/val\n")
    assert image_check("data/val").returncode == 0
    proc = image_check("nowhere")
    assert proc.returncode == 2 and proc.stderr == "error: folder nowhere does not exist\n"
    os.makedirs(work / "empty" / "train")
    proc = image_check("empty")
    assert proc.returncode == 2 and proc.stderr.startswith("error: empty holds no <class>/")


def test_help_gives_each_default_once():
    proc = run_script("train.py", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "(default: None)" not in text and "(default: False)" not in text
    assert not re.search(r"\(default: [^)]*\) \(default:", text)


# ---------------------------------------------------------------------- pieces
def test_the_atomic_writer_follows_the_umask(tmp_path):
    path = save_checkpoint_atomic(nn.Dense(2, 2), tmp_path / "a.ckpt")  # MindSpore: 0400
    atomic.write_text(tmp_path / "b.txt", "x")
    assert file_mode(path) == file_mode(tmp_path / "b.txt") == new_file_mode()


def test_warm_up_is_capped_to_a_fifth_of_a_short_run():
    cfg = dict(lr=0.1, batch_size=8, lr_batch_size=8, epochs=1, warmup_epochs=1,
               warmup_start_factor=0.25, min_lr=0.0)
    assert warmup_steps(cfg, 10) == (2, True)
    lrs = lr_schedule(cfg, 10, 1)
    assert lrs[0] == pytest.approx(0.025) and lrs[2] == pytest.approx(0.1)
    assert warmup_steps(dict(cfg, epochs=5), 10) == (10, False)


def test_eta_covers_validation_and_the_rate_is_the_recorded_one(monkeypatch):
    cfg = dict(epochs=2, batch_size=10, log_interval=100)
    clock = iter(np.arange(100.0, 200.0, 2.0))  # a step every 2 s: 5 images/s
    monkeypatch.setattr("mindspore_acmix.engine.report.time.time", lambda: next(clock))
    progress = Progress(cfg, steps_per_epoch=4, world=1, log=lambda line: None, val_samples=30)
    for step in range(1, 5):
        progress.update(0, step, 1.0, 0.1)
    assert progress.rate == pytest.approx(5.0)
    # 4 steps (8 s) of epoch 2 and two validations of 30 images at 15 images/s (2 s each)
    assert progress.eta(0, 4) == pytest.approx(8 + 2 * 2)
    progress.end_epoch(dict(epoch=1, train_loss=1.0, val_top1=0.5, val_top5=1.0, val_loss=1.0,
                            epoch_time_s=16.0, val_time_s=7.0))
    assert progress.eta(1, 4) == pytest.approx(7.0)  # the last step: one measured validation


@pytest.mark.slow
def test_the_stem_max_pool_matches_torchs_padded_max_pool_and_exports_to_onnx(tmp_path):
    """Forward and backward against the padded MaxPool2d it replaces, then a 224x224
    resnet26 (width 8, for speed) through ONNX Runtime: MaxPool3DWithArgmax made every
    full-size ResNet fail to export."""
    x = np.random.default_rng(0).standard_normal((2, 3, 15, 16)).astype(np.float32)
    probe = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    ours, gx, _ = output_and_grads(StemMaxPool(3, 2, 1), x, probe)
    ref, gx_ref, _ = output_and_grads(nn.MaxPool2d(3, 2, pad_mode="pad", padding=1), x, probe)
    assert np.array_equal(ours, ref)
    assert_close(gx, gx_ref, 1e-6, "max-pool gradient")

    ort = pytest.importorskip("onnxruntime", reason="the ONNX check needs onnxruntime "
                              "(requirements-test.txt)")
    # the exported formulation itself (native convolutions: quick to compile here; its
    # parity with the training formulation is test_export.py's)
    net = prepare_for_export(create_model("resnet26", num_classes=10, width=8))
    image = np.random.default_rng(2).standard_normal((1, 3, 224, 224)).astype(np.float32)
    expected = net(Tensor(image)).asnumpy()
    path = export_network(net, "ONNX", (1, 3, 224, 224), str(tmp_path / "r26"))
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert_close(session.run(None, {"input": image})[0], expected, 1e-4, "ONNX logits")
