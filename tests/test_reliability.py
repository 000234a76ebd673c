"""Reliability: runs that survive SIGKILL at any moment, broken checkpoints, configs and image
folders that give one clear message, numerical faults that keep the last good checkpoint,
and nothing written outside the output directory."""
import io
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import mindspore as ms
import mindspore.dataset.vision as V
import numpy as np
import pytest
from mindspore import Tensor, nn
from PIL import Image

from mindspore_acmix import atomic, config as C
from mindspore_acmix.checkpoint import CheckpointError, read_checkpoint, save_checkpoint_atomic
from mindspore_acmix.data.image_check import image_problem
from mindspore_acmix.data.pipeline import DataError, ImageFolderSplit
from mindspore_acmix.engine import rundir
from mindspore_acmix.engine import trainer as trainer_lib
from mindspore_acmix.engine.report import MetricsLog
from mindspore_acmix.engine.errors import TrainingError
from mindspore_acmix.engine.rundir import OutputDirLock
from mindspore_acmix.engine.step import TrainStep
from mindspore_acmix.engine.trainer import Trainer

from conftest import (REPO_DIR, RUN_EPOCHS, error_line, make_image_folder, run_config,
                      run_script, write_config)

EPOCHS = 3


def encoded(fmt, size=16, mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 255, (size, size, 3)).astype(np.uint8))
    buf = io.BytesIO()
    image.convert(mode).save(buf, fmt)
    return buf.getvalue()


def add_bad_images(root):
    """Files an ImageFolder tree picks up that no decoder can read, plus one it ignores.
    The half JPEG kills MindSpore's decoder with SIGFPE when it reaches it unchecked."""
    bad = {"train/class_0/zero.png": b"", "train/class_1/half.jpg": encoded("JPEG")[:350],
           "train/class_2/text.jpg": b"just some notes\n", "train/class_0/anim.png":
           encoded("GIF"), "train/class_1/cut.png": encoded("PNG")[:-20],
           "val/class_2/half.jpg": encoded("JPEG", seed=1)[:350]}
    for name, data in bad.items():
        with open(os.path.join(root, name), "wb") as fh:
            fh.write(data)
    with open(os.path.join(root, "train", "class_0", "README.txt"), "w") as fh:
        fh.write("not an image\n")
    return bad


@pytest.fixture
def folder(tiny_folder):
    return tiny_folder


@pytest.fixture(scope="module")
def broken_folder(tmp_path_factory):
    root = make_image_folder(str(tmp_path_factory.mktemp("data") / "broken"))
    add_bad_images(root)
    return root


def train_config(tmp_path, folder, out, **values):
    return write_config(tmp_path / "c.yaml", **{"data_dir": folder, "epochs": EPOCHS,
                                                "output_dir": str(out), **values})


def entries(path):
    return {k: v.asnumpy() for k, v in read_checkpoint(path).items() if hasattr(v, "asnumpy")}


# ---------------------------------------------------------------------- atomic files
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "metrics.jsonl"
    atomic.write_text(target, "old\n")
    with pytest.raises(RuntimeError):
        with atomic.writing(target) as tmp:
            assert os.path.basename(tmp).startswith(".metrics.tmp-") and tmp.endswith(".jsonl")
            with open(tmp, "w") as fh:
                fh.write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["metrics.jsonl"]
    (tmp_path / ".last.tmp-999.ckpt").write_bytes(b"half")
    assert atomic.remove_stale_temporaries(str(tmp_path)) == [".last.tmp-999.ckpt"]
    assert os.listdir(tmp_path) == ["metrics.jsonl"]


def test_a_mangled_metrics_file_does_not_stop_training(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 2.0}\n{"epoch": 2, "tr\n'
                                            "[1, 2]\n")
    log = MetricsLog(str(tmp_path))
    assert log.records() == [{"epoch": 1, "train_loss": 2.0}]


# ---------------------------------------------------------------------- checkpoints
def test_every_truncation_and_a_flipped_bit_are_caught(tmp_path):
    """A cut at an entry boundary parses; the entry count written first exposes it, and
    our files must end with their CRC record. MindSpore's CRC, written and
    checked, exposes a flipped bit, which would otherwise load silently."""
    net = nn.Dense(3, 2)
    good = save_checkpoint_atomic(net, str(tmp_path / "good.ckpt"), {"epoch": 4})
    assert sorted(read_checkpoint(good)) == ["bias", "epoch", "weight"]
    data = open(good, "rb").read()
    bad = str(tmp_path / "bad.ckpt")
    for cut in range(1, len(data)):
        with open(bad, "wb") as fh:
            fh.write(data[:cut])
        with pytest.raises(CheckpointError, match="is truncated"):
            read_checkpoint(bad)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    with open(bad, "wb") as fh:
        fh.write(bytes(flipped))
    with pytest.raises(CheckpointError, match="truncated or corrupt.*CRC"):
        read_checkpoint(bad)


def test_resume_auto_skips_corrupt_checkpoints_by_name_and_never_restarts_over_them(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    net = nn.Dense(3, 2)
    save_checkpoint_atomic(net, str(out / "epoch_0001.ckpt"), {"epoch": 1})
    whole = (out / "epoch_0001.ckpt").read_bytes()
    (out / "epoch_0002.ckpt").write_bytes(whole[:len(whole) // 2])
    (out / "last.ckpt").write_bytes(b"")
    said = []
    assert rundir.newest_valid_checkpoint(str(out), said.append) == str(
        out / "epoch_0001.ckpt")
    assert said == [f"warning: skipping checkpoint {out}/epoch_0002.ckpt is truncated or "
                    "corrupt: it cannot be parsed or fails its CRC check",
                    f"warning: skipping checkpoint {out}/last.ckpt is empty (0 bytes)"]
    (out / "epoch_0001.ckpt").write_bytes(whole[:-3])
    with pytest.raises(CheckpointError, match="none of the checkpoints in .* can be read "
                                              "\\(epoch_0002.ckpt, epoch_0001.ckpt, last.ckpt\\); "
                                              "move them away"):
        rundir.newest_valid_checkpoint(str(out), said.append)


def test_output_dir_is_locked_and_never_silently_reused(folder, tmp_path):
    out = tmp_path / "run"
    first = OutputDirLock(str(out))
    with pytest.raises(TrainingError, match=f"output_dir {out} is in use by another training "
                                            f"process \\(pid {os.getpid()}\\)"):
        OutputDirLock(str(out))
    first.release()
    OutputDirLock(str(out)).release()
    (out / "last.ckpt").write_bytes(b"x")
    cfg = C.resolve(train_config(tmp_path, folder, out))
    with pytest.raises(C.ConfigError, match="already holds checkpoints.*--resume auto.*nothing "
                                            "was overwritten"):
        Trainer(cfg, "CPU")


@pytest.mark.slow
def test_a_full_disk_stops_training_with_a_message_and_keeps_the_checkpoints(
        folder, tmp_path, monkeypatch, uninterrupted):
    """The shared run, extended by one epoch, finds the disk full when it saves it."""
    out = tmp_path / "run"
    shutil.copytree(uninterrupted, out)
    epoch = RUN_EPOCHS + 1
    cfg = C.resolve(run_config(tmp_path / "c.yaml", folder, out, epochs=epoch))
    before = {f: (out / f).read_bytes() for f in os.listdir(out) if f.endswith(".ckpt")}

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ms, "save_checkpoint", disk_full)
    with pytest.raises(TrainingError, match=f"could not write epoch {epoch}'s outputs in .* "
                                            "\\(No space left on device\\); the files "
                                            "already there are"):
        Trainer(cfg, "CPU", resume="auto").fit()
    assert before == {f: (out / f).read_bytes() for f in os.listdir(out) if f.endswith(".ckpt")}
    assert not [f for f in os.listdir(out) if atomic.is_temporary(f)]
    (tmp_path / "file").write_text("")
    cfg["output_dir"] = str(tmp_path / "file" / "run")
    with pytest.raises(C.ConfigError, match="output_dir .*/file/run cannot be written"):
        Trainer(cfg, "CPU")


# ---------------------------------------------------------------------- images
@pytest.mark.parametrize("fmt,mode", [("JPEG", "RGB"), ("JPEG", "L"), ("JPEG", "CMYK"),
                                      ("PNG", "RGB"), ("PNG", "RGBA"), ("BMP", "RGB"),
                                      ("TIFF", "RGB")])
def test_sound_images_pass_and_every_truncation_is_caught(fmt, mode):
    data = encoded(fmt, mode=mode)
    assert image_problem(data) is None
    assert V.Decode()(np.frombuffer(data, np.uint8)).shape == (16, 16, 3)
    if fmt in ("JPEG", "PNG", "BMP"):
        missed = [cut for cut in range(1, len(data)) if image_problem(data[:cut]) is None]
        assert missed == []


def test_stray_bytes_between_jpeg_segments_are_tolerated_as_libjpeg_does():
    data = encoded("JPEG")
    app0_end = 4 + int.from_bytes(data[4:6], "big")
    padded = data[:app0_end] + b"\x00\x00\x00" + data[app0_end:]
    assert image_problem(padded) is None
    np.testing.assert_array_equal(V.Decode()(np.frombuffer(padded, np.uint8)),
                                  V.Decode()(np.frombuffer(data, np.uint8)))


@pytest.mark.parametrize("data,problem", [
    (b"", "empty file"), (b"hello, world\n" * 10, "not a JPEG, PNG, BMP or TIFF image"),
    (encoded("GIF"), "GIF is not a format MindSpore's decoder reads"),
    (encoded("WEBP"), "WebP is not a format"),
    (encoded("JPEG")[:350], "truncated JPEG"), (encoded("PNG")[:-20], "truncated PNG"),
])
def test_image_problems_are_named(data, problem):
    assert problem in image_problem(data)


def test_bad_images_are_skipped_and_counted_or_fatal_by_name(broken_folder, tmp_path,
                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)  # MindSpore's decoder would dump abnormal_image.jpg here
    cfg = C.resolve(write_config(tmp_path / "c.yaml", data_dir=broken_folder))
    split = ImageFolderSplit(cfg, "train")
    assert split.num_samples == 72 + 5 and split.ignored == ["class_0/README.txt"]
    labels = np.concatenate([b[1].asnumpy() for b in split.train_batches(0)])
    assert split.skipped == 5 and len(labels) == 77 // 12 * 12
    cfg["skip_bad_images"] = False
    with pytest.raises(DataError, match=r"unreadable image .*/train/class_\d/\w+\.(png|jpg): "
                                        r".*\(set skip_bad_images: true"):
        for _ in ImageFolderSplit(cfg, "train").train_batches(0):
            pass
    assert os.listdir(tmp_path) == ["c.yaml"]


def test_the_310_preprocessing_names_a_bad_image(broken_folder, tmp_path):
    proc = run_script("preprocess.py", "--config", write_config(tmp_path / "c.yaml",
                                                                data_dir=broken_folder),
                      "--data-path", os.path.join(broken_folder, "val"),
                      "--output-path", str(tmp_path / "pre"), cwd=tmp_path)
    assert re.search(r"error: unreadable image \S+/val/class_2/half.jpg: truncated JPEG",
                     error_line(proc))


# ---------------------------------------------------------------------- numerical faults
def test_loss_scaling_skips_a_non_finite_step():
    net = nn.Dense(4, 3)
    opt = nn.SGD(net.trainable_params(), 0.1)
    step = ms.jit(TrainStep(net, nn.CrossEntropyLoss(), opt, 1, None, use_loss_scale=True))
    before = net.weight.asnumpy().copy()
    labels = Tensor(np.array([0, 1], np.int32))
    x = np.ones((2, 4), np.float32)
    x[0, 0] = np.inf
    key = Tensor(np.int32(0))
    loss, overflow = step(Tensor(x), labels, key)
    assert bool(overflow.asnumpy()) and np.array_equal(net.weight.asnumpy(), before)
    loss, overflow = step(Tensor(np.ones((2, 4), np.float32)), labels, key)
    assert not bool(overflow.asnumpy()) and np.isfinite(float(loss.asnumpy()))
    assert not np.array_equal(net.weight.asnumpy(), before)


@pytest.mark.slow
def test_amp_runs_keep_their_loss_scale_across_resume(folder, tmp_path, monkeypatch):
    """AMP O2 with dynamic loss scaling (the Ascend/GPU path; config validation keeps it off
    CPU, the operators run here): the scale and its counter are saved and restored."""
    monkeypatch.setattr(trainer_lib, "resolve_amp", lambda cfg, device: "O2")
    cfg = C.resolve(train_config(tmp_path, folder, tmp_path / "run", epochs=2))
    first = Trainer(cfg, "CPU", stop_after=1)
    first.train_step.scaler.scale_value.set_data(Tensor(np.float32(1024.0)))
    first.fit()
    saved = entries(str(tmp_path / "run" / "last.ckpt"))
    assert int(saved["epoch"]) == 1  # stop_after
    assert float(saved["scale_value"]) in (1024.0, 512.0) and "counter" in saved
    resumed = Trainer(cfg, "CPU", resume="auto")
    assert float(resumed.train_step.scaler.scale_value.asnumpy()) == float(saved["scale_value"])
    assert int(resumed.train_step.scaler.counter.asnumpy()) == int(saved["counter"])
    resumed.close()


@pytest.mark.parametrize("overflow", [False, True])
def test_non_finite_steps_stop_training_by_epoch_and_step(folder, tmp_path, monkeypatch,
                                                          overflow):
    """Without loss scaling the first NaN loss stops the run; with it, skipped steps are
    tolerated until MAX_CONSECUTIVE_OVERFLOWS in a row."""
    monkeypatch.setattr(trainer_lib, "MAX_CONSECUTIVE_OVERFLOWS", 4)
    trainer = Trainer(C.resolve(train_config(tmp_path, folder, tmp_path / "run")), "CPU")
    trainer.step = lambda x, y, key: (Tensor(np.float32(np.nan)), Tensor(overflow))
    message = ("4 steps in a row had non-finite gradients \\(up to epoch 2, step 4\\)"
               if overflow else "the loss became nan at epoch 2, step 1")
    with pytest.raises(TrainingError, match=message):
        trainer.train_epoch(1, trainer_lib.Progress(trainer.cfg, 6, 1, lambda *_: None))
    trainer.close()


# ---------------------------------------------------------------------- whole runs
@pytest.fixture
def uninterrupted(trained_run):
    """The output dir of conftest's shared run_config run (read only)."""
    return trained_run[0]


class Run:
    """A train.py (or harness) subprocess whose output lines can be awaited."""

    def __init__(self, args, script="train.py", env=None, cwd=None):
        env = dict(os.environ, GLOG_v="3", PYTHONUNBUFFERED="1", **(env or {}))
        self.proc = subprocess.Popen([sys.executable, os.path.join(REPO_DIR, script), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env, cwd=cwd)
        self.lines, self.seen = queue.Queue(), []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, pattern, timeout=300):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                break
            self.seen.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no line matching {pattern!r}:\n{''.join(self.seen)[-3000:]}")

    def kill(self):
        """SIGKILL; returns False when the process had already finished by itself."""
        if self.proc.poll() is not None:
            assert self.proc.returncode == 0, "".join(self.seen)[-3000:]
            return False
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=60)
        return True


@pytest.mark.slow
def test_sigkill_at_any_moment_then_resume_matches_an_uninterrupted_run(folder, tmp_path,
                                                                        uninterrupted):
    """Killed while writing epoch 2's checkpoint, then while copying it to last.ckpt, then at
    a random moment; each time --resume auto continues from the newest complete checkpoint
    and the finished run's weights, optimizer moments, EMA weights and step count equal the
    uninterrupted run's, bit for bit on CPU (EMA and gradient accumulation on: the resumes
    start at epochs 1 and 2)."""
    out = tmp_path / "run"
    cfg = run_config(tmp_path / "c.yaml", folder, out)

    run = Run(["--config", cfg], "tests/kill_harness.py", env={"ACMIX_STALL": "save:2"})
    stalled = run.wait_for(r"^STALLED ").split()[1]
    assert run.kill()
    assert os.path.basename(stalled).startswith(".epoch_0002.tmp-")
    assert os.path.exists(stalled) and not os.path.exists(out / "epoch_0002.ckpt")
    assert int(entries(str(out / "last.ckpt"))["epoch"]) == 1

    run = Run(["--config", cfg, "--resume", "auto"], "tests/kill_harness.py",
              env={"ACMIX_STALL": "copy:1"})
    run.wait_for(r"removed 1 unfinished write\(s\) of an interrupted run: \.epoch_0002\.tmp-")
    run.wait_for(r"^STALLED .*\.last\.tmp-")
    assert run.kill()
    assert int(entries(str(out / "last.ckpt"))["epoch"]) == 1
    assert int(entries(str(out / "epoch_0002.ckpt"))["epoch"]) == 2

    run = Run(["--config", cfg, "--resume", "auto"])
    run.wait_for(r"resumed from .*epoch_0002\.ckpt: 2 of 3 epochs done")
    delay = np.random.default_rng().uniform(0.0, 8.0)
    time.sleep(delay)
    print(f"random kill {delay:.2f} s after resuming: killed={run.kill()}")

    proc = run_script("train.py", "--config", cfg, "--resume", "auto")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    whole, resumed = entries(str(uninterrupted / "last.ckpt")), entries(str(out / "last.ckpt"))
    assert set(whole) == set(resumed) and int(resumed["epoch"]) == RUN_EPOCHS
    assert any(k.startswith("moments.") for k in whole) and "ema.fc.weight" in whole
    for key in whole:
        np.testing.assert_array_equal(resumed[key], whole[key], err_msg=key)
    assert int(resumed["global_step"].item()) == RUN_EPOCHS * 3
    # the EMA moved away from the weights
    assert not np.array_equal(whole["ema.fc.weight"], whole["fc.weight"])
    assert not [f for f in os.listdir(out) if atomic.is_temporary(f)]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3] and "val_top1_ema" in records[1]
    # a finished run resumed again does nothing more
    Trainer(C.resolve(cfg), "CPU", resume="auto").fit()
    assert int(entries(str(out / "last.ckpt"))["epoch"]) == RUN_EPOCHS


@pytest.mark.slow
def test_a_nan_loss_names_epoch_and_step_and_keeps_the_last_checkpoint(tmp_path, folder,
                                                                      uninterrupted):
    out = tmp_path / "run"
    shutil.copytree(uninterrupted, out)
    before = {name: (out / name).read_bytes() for name in os.listdir(out) if ".ckpt" in name}
    proc = run_script("train.py", "--config", run_config(tmp_path / "c.yaml", folder, out),
                      "--resume", str(out / "epoch_0002.ckpt"), "--set", "lr=1e30")
    assert re.search(r"error: the loss became (nan|inf) at epoch 3, step \d; the last good "
                     f"checkpoint is kept in {out}", error_line(proc))
    assert before == {name: (out / name).read_bytes() for name in os.listdir(out)
                      if ".ckpt" in name}


@pytest.mark.slow
def test_broken_images_are_skipped_counted_and_leave_no_stray_files(broken_folder, tmp_path):
    """One epoch over a tree holding empty, truncated, text, GIF and README files: the run
    finishes, counts what it skipped, and writes nothing outside its output dir (under HOME
    only matplotlib's font cache and our compiled C++ kernels, both documented caches); with skip_bad_images false it stops naming the first bad
    file."""
    work, home, out = tmp_path / "work", tmp_path / "home", tmp_path / "run"
    work.mkdir()
    home.mkdir()
    cfg = train_config(tmp_path, broken_folder, out, epochs=1)
    proc = run_script("train.py", "--config", cfg, cwd=work, env={"HOME": str(home)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ignoring 1 file(s) in" in proc.stdout and "class_0/README.txt" in proc.stdout
    assert "epoch 1: skipped 5 unreadable train and 1 val image(s)" in proc.stdout
    assert os.listdir(work) == [] and home_files(home) == []
    assert sorted(os.listdir(out)) == ["best.ckpt", "config.yaml", "curves.png",
                                       "epoch_0001.ckpt", "last.ckpt", "metrics.jsonl"]

    proc = run_script("train.py", "--config", cfg, "--output-dir", str(tmp_path / "fatal"),
                      "--set", "skip_bad_images=false", cwd=work, env={"HOME": str(home)})
    assert re.search(r"error: unreadable image .*broken/train/class_\d/\w+\.(png|jpg): .+ "
                     r"\(set skip_bad_images: true to skip such files\)$", error_line(proc))
    assert os.listdir(work) == [] and home_files(home) == []


def home_files(home):
    """Files under HOME other than matplotlib's font cache and the compiled C++ kernels
    (mindspore_acmix.cache)."""
    caches = (os.path.join(".cache", "matplotlib"), os.path.join(".cache", "mindspore-acmix",
                                                                 "kernels"))
    return [os.path.join(d, f) for d, _, files in os.walk(home) for f in files
            if not os.path.relpath(d, home).startswith(caches)]


@pytest.mark.parametrize("case,message", [
    ("missing", r"checkpoint \S+/nope.ckpt does not exist"),
    ("empty", r"checkpoint \S+/empty.ckpt is empty \(0 bytes\)"),
    ("truncated", r"checkpoint \S+/truncated.ckpt is truncated"),
    ("garbage", r"checkpoint \S+/garbage.ckpt is truncated or corrupt"),
    ("flipped", r"checkpoint \S+/flipped.ckpt is truncated or corrupt: .*CRC"),
    ("classes", r"parameter fc.weight has shape \(3, (\d+)\) there but \(5, \1\) here"),
    ("architecture", r"lacks \d+ parameters of this network: layer1\.0\.conv2\.\w"),
])
def test_broken_checkpoints_give_one_line_and_exit_2(uninterrupted, tmp_path, case, message):
    good = uninterrupted / "last.ckpt"
    data = good.read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0x01
    payload = {"empty": b"", "truncated": data[:len(data) // 2], "garbage": os.urandom(5000),
               "flipped": bytes(flipped)}
    path = tmp_path / f"{case}.ckpt"
    if case in payload:
        path.write_bytes(payload[case])
    args = ["--checkpoint", str(path) if case in payload or case == "missing" else str(good)]
    if case == "missing":
        args[1] = str(tmp_path / "nope.ckpt")
    overrides = {"classes": ["--set", "num_classes=5"],
                 "architecture": ["--set", "model=acmix_resnet_tiny", "--set",
                                  "model_kwargs={k_att: 3}"]}.get(case, [])
    config = str(uninterrupted / "config.yaml")
    proc = run_script("eval.py", "--config", config, *args, *overrides, cwd=tmp_path)
    assert re.search(message, error_line(proc))
    if case == "garbage":
        debug = run_script("eval.py", "--config", config, *args, "--debug", cwd=tmp_path)
        assert debug.returncode == 2 and "Traceback" in debug.stderr


@pytest.mark.parametrize("setting,message", [
    ("batch_sise=8", r"unknown key 'batch_sise' \(did you mean batch_size\?\)"),
    ("batch_size=0", "batch_size must be > 0, got 0"),
    ("lr=-0.1", "lr must be > 0, got -0.1"),
    ("epochs=0", "epochs must be > 0, got 0"),
    ("epochs=three", "epochs must be an integer, got 'three'"),
    ("data_dir=/no/such/folder", "dataset folder /no/such/folder/train does not exist"),
    ("data_dir=EMPTY", "holds no images in class sub-folders"),
])
def test_config_and_dataset_mistakes_give_one_line_and_exit_2(folder, tmp_path, setting,
                                                            message):
    empty = tmp_path / "empty"
    (empty / "train" / "a").mkdir(parents=True)
    cfg = train_config(tmp_path, folder, tmp_path / "run")
    proc = run_script("train.py", "--config", cfg, "--set", setting.replace("EMPTY", str(empty)),
                      cwd=tmp_path)
    assert re.search(message, error_line(proc))
    assert not (tmp_path / "run" / "last.ckpt").exists()


def test_a_fresh_run_refuses_to_overwrite_checkpoints(uninterrupted, tmp_path, folder):
    before = (uninterrupted / "last.ckpt").read_bytes()
    proc = run_script("train.py", "--config", run_config(tmp_path / "c.yaml", folder,
                                                         uninterrupted))
    assert "already holds checkpoints" in error_line(proc)
    assert (uninterrupted / "last.ckpt").read_bytes() == before


# ---------------------------------------------------------------------- safety
UNSAFE = [(r"(?<![\w.])(eval|exec)\(", "eval/exec"), (r"\bpickle\b", "pickle"),
          (r"yaml\.(load|unsafe_load)\(", "yaml.load"), (r"allow_pickle\s*=\s*True", "pickle"),
          (r"torch\.load\((?![^)]*weights_only=True)", "torch.load without weights_only")]


def test_no_unsafe_deserialisation_or_code_execution():
    sources = [os.path.join(d, f) for top in ("mindspore_acmix", "scripts", ".")
               for d, _, files in os.walk(os.path.join(REPO_DIR, top))
               if top != "." or d == REPO_DIR
               for f in files if f.endswith(".py")]
    assert len(sources) > 20
    found = []
    for path in sources:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                found += [f"{os.path.relpath(path, REPO_DIR)}:{number}: {what}"
                          for pattern, what in UNSAFE if re.search(pattern, line)]
    assert found == []
