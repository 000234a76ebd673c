"""Data parallelism under msrun on CPU (MindSpore's own collectives): two "nodes" on this
machine; a 2-worker job with a non-finite gradient and unreadable images on one rank only,
then one worker SIGKILLed and the run resumed on one worker; per-rank randomness and the
exact resume of a model with DropPath, dropout and mixup/cutmix.

Each msrun launch costs about 15 s of start-up, so the launches are few and check several
things each."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from mindspore import Tensor

from mindspore_acmix import config as C
from mindspore_acmix.checkpoint import read_checkpoint
from mindspore_acmix.data.pipeline import ImageFolderSplit, epoch_indices
from mindspore_acmix.seeding import step_key
from mindspore_acmix.engine.lost_worker import lost_workers
from mindspore_acmix.engine.optim import lr_schedule
from mindspore_acmix.engine.trainer import Trainer
from mindspore_acmix.layers.stochastic import DropPath, Dropout, set_key

from conftest import REPO_DIR, make_image_folder, run_script, write_config

LAUNCHER = os.path.join(REPO_DIR, "scripts", "run_distribute_train.sh")
HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launcher_env(log_dir, **extra):
    # as in an activated virtual environment: msrun and python from the interpreter's bin/
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    return dict(os.environ, GLOG_v="3", PYTHONUNBUFFERED="1", LOG_DIR=str(log_dir), PATH=path,
                MASTER_PORT=str(free_port()), **extra)


def read_metrics(out):
    with open(os.path.join(out, "metrics.jsonl")) as fh:
        return [json.loads(line) for line in fh]


def read_log(path):
    return path.read_text(errors="replace") if path.exists() else ""


def fingerprint(values):
    return np.asarray(values, np.float64).round(6).tolist()


@pytest.fixture
def folder(tiny_folder):
    return tiny_folder


# ---------------------------------------------------------------------- without msrun
def test_stochastic_layers_are_keyed_by_seed_rank_and_step():
    """DropPath and dropout masks: a function of the key alone (so of seed, rank, step),
    different for the other rank, for the next call, and in proportion."""
    x = Tensor(np.ones((256, 2, 3), np.float32))
    drop_path, dropout = DropPath(0.25), Dropout(0.5)
    drop_path.set_train(True)
    dropout.set_train(True)

    def masks(key):
        set_key(key.asnumpy())
        return drop_path(x).asnumpy(), drop_path(x).asnumpy(), dropout(x).asnumpy()

    first, again, other_rank = masks(step_key(0, 0, 7)), masks(step_key(0, 0, 7)), masks(
        step_key(0, 1, 7))
    for a, b, c in zip(first, again, other_rank):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
    assert not np.array_equal(first[0], first[1])            # every call draws anew
    kept = first[0].reshape(256, -1)
    assert np.all(kept.min(1) == kept.max(1))                # whole samples
    assert 0.6 < (kept[:, 0] > 0).mean() < 0.9 and 0.4 < (first[2] > 0).mean() < 0.6


def test_ranks_augment_differently_and_reproducibly(tmp_path):
    """Every image of a class is the same picture: sample k of rank 0 and of rank 1 are the
    same input whenever their labels agree, so equal outputs there would mean a shared
    augmentation stream."""
    root = make_image_folder(str(tmp_path / "same"), train_per_class=16, val_per_class=1)
    for split in ("train", "val"):
        for c in range(3):
            folder = os.path.join(root, split, f"class_{c}")
            names = sorted(os.listdir(folder))
            for name in names[1:]:
                with open(os.path.join(folder, names[0]), "rb") as src, \
                        open(os.path.join(folder, name), "wb") as dst:
                    dst.write(src.read())
    cfg = C.resolve(write_config(tmp_path / "c.yaml", data_dir=root, batch_size=12, hflip=0.5,
                                 crop_scale=[0.3, 1.0]))

    def batch(rank):
        batches = list(ImageFolderSplit(cfg, "train", rank, 2).train_batches(0))
        return (np.concatenate([images.asnumpy() for images, _ in batches]),
                np.concatenate([labels.asnumpy() for _, labels in batches]))

    (x0, y0), (x1, y1), (again, _) = batch(0), batch(1), batch(0)
    np.testing.assert_array_equal(x0, again)
    same_input = np.flatnonzero(y0 == y1)
    assert len(same_input) >= 4
    differ = [not np.array_equal(x0[i], x1[i]) for i in same_input]
    assert sum(differ) >= len(same_input) - 1, differ


@pytest.mark.slow
def test_droppath_dropout_mixup_cutmix_run_resumes_bit_identically(folder, tmp_path):
    """A Swin-ACmix with stochastic depth and dropout, trained with mixup and cutmix: resumed
    in a fresh trainer from the epoch-1 checkpoint of an uninterrupted run, it ends with that
    run's weights and optimizer state, bit for bit."""
    swin = dict(img_size=16, patch_size=4, embed_dim=12, depths=[2], num_heads=[3],
                window_size=4, drop_path_rate=0.5, drop_rate=0.1)

    def run(out, **kw):
        cfg = C.resolve(write_config(tmp_path / "c.yaml", data_dir=folder, epochs=2,
                                     output_dir=str(out), model="swin_acmix_tiny",
                                     model_kwargs=swin, mixup=0.8, cutmix=1.0, batch_size=24,
                                     optimizer="adamw", lr=1e-3))
        return Trainer(cfg, "CPU", **kw).fit()

    run(tmp_path / "whole")
    run(tmp_path / "split", resume=str(tmp_path / "whole" / "epoch_0001.ckpt"))
    whole = read_checkpoint(str(tmp_path / "whole" / "last.ckpt"))
    split = read_checkpoint(str(tmp_path / "split" / "last.ckpt"))
    assert set(whole) == set(split) and int(split["epoch"].asnumpy()) == 2
    compared = 0
    for key in whole:
        if hasattr(whole[key], "asnumpy"):
            np.testing.assert_array_equal(whole[key].asnumpy(), split[key].asnumpy(),
                                          err_msg=key)
            compared += 1
    assert compared > 20 and any(k.startswith("adam_m.") for k in whole)


def test_the_lost_worker_is_named_from_the_launch_logs(tmp_path):
    """Node 0 of a two-node job whose rank 1 (on node 1) died: msrun only saw its own worker
    end by the scheduler's SIGTERM, the scheduler names the rank that stopped answering;
    node 1's own msrun saw the SIGKILL."""
    (tmp_path / "worker_0.log").write_text("rank 0 of 2, pid 100\n")
    (tmp_path / "worker_1.log").write_text("rank 1 of 2, pid 200\n")
    (tmp_path / "msrun_node_0.log").write_text(
        "[ERROR] ... Worker process 100 exit with exception. Error code: -15.\n")
    (tmp_path / "scheduler.log").write_text(
        "[ERROR] ... UpdateTopoState] The node: 1 is timed out. It may exit with exception\n")
    (tmp_path / "msrun_node_1.log").write_text(
        "[ERROR] ... Worker process 200 exit with exception. Error code: -9.\n")
    assert lost_workers(str(tmp_path), 0) == [
        (1, None, "stopped answering the scheduler (its process or node died)")]
    os.remove(tmp_path / "scheduler.log")
    assert lost_workers(str(tmp_path), 1) == [
        (1, "200", "was killed by SIGKILL (by hand or by the out-of-memory killer)")]


@pytest.mark.parametrize("args,env,message", [
    (["0"], {}, "NUM_WORKERS must be a positive integer (workers on this node), got '0'"),
    (["8"], {"NUM_NODES": "two"}, "NUM_NODES must be a positive integer, got 'two'"),
    (["8"], {"NUM_NODES": "2"}, "MASTER_ADDR is not set: with NUM_NODES=2 every node needs "
                                "node 0's address"),
    (["8"], {"NUM_NODES": "2", "NODE_RANK": "2", "MASTER_ADDR": "10.0.0.1"},
     "NODE_RANK must be an integer from 0 to NUM_NODES-1 (1), got '2'"),
    (["8"], {"MASTER_PORT": "80"}, "MASTER_PORT must be a port number from 1024 to 65535"),
])
def test_the_launcher_checks_its_arguments(tmp_path, args, env, message):
    cfg = write_config(tmp_path / "c.yaml")
    launch = ("NUM_NODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT")
    env = dict({k: v for k, v in os.environ.items() if k not in launch}, **env)
    proc = subprocess.run(["bash", LAUNCHER, *args, cfg], env=env, capture_output=True,
                          text=True, timeout=60)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(
        f"error: {message}"), proc.stderr


# ---------------------------------------------------------------------- under msrun
@pytest.mark.slow
def test_two_nodes_train_in_step(folder, tmp_path):
    """Two msrun launches on this machine as nodes 0 and 1 of one job (one worker each,
    master 127.0.0.1, a shared output and log directory): both finish, the weights are
    identical on both ranks, rank 0 alone writes the checkpoints."""
    out, logs = tmp_path / "run", tmp_path / "logs"
    cfg = write_config(tmp_path / "c.yaml", data_dir=folder, epochs=1, output_dir=str(out),
                       batch_size=6, log_interval=3)
    env = launcher_env(logs, NUM_NODES="2", MASTER_ADDR="127.0.0.1")
    nodes = [subprocess.Popen(["bash", LAUNCHER, "1", cfg], env=dict(env, NODE_RANK=str(n)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              cwd=str(tmp_path)) for n in (0, 1)]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    worker = [read_log(logs / f"worker_{r}.log") for r in (0, 1)]
    for n in (0, 1):
        assert nodes[n].returncode == 0, outputs[n][-2000:] + worker[n][-3000:]
        assert f"node {n} of 2: 1 of 2 workers, scheduler 127.0.0.1" in outputs[n]
        assert "weights identical on all 2 ranks" in worker[n]
        assert f"rank {n} of 2, pid" in worker[n]
    # the loss in the log is the mean over ranks: the same line on both
    assert re.findall(r"step 6/6 loss (\S+)", worker[0]) == re.findall(r"step 6/6 loss (\S+)",
                                                                        worker[1])
    assert read_metrics(out)[0]["val_samples"] == 24          # 12 + 12: every image once
    assert sorted(f for f in os.listdir(out) if f.endswith(".ckpt")) == [
        "best.ckpt", "epoch_0001.ckpt", "last.ckpt"]


@pytest.mark.slow
def test_one_rank_overflows_and_skips_images_then_a_worker_dies_and_the_run_resumes(
        tmp_path):
    """One 2-worker job (tests/harness: loss scaling on, an inf in rank 1's 3rd batch,
    every rank's batches recorded) over a tree whose unreadable images all fall in rank 1's
    shard of epoch 1: both ranks run the same 6 steps, skip step 3 together and keep equal
    weights; the skips are counted. In epoch 2 rank 1 is SIGKILLed: the job ends at once,
    non-zero, naming rank 1; --resume auto on one worker finishes the run and says what
    changed."""
    root = make_image_folder(str(tmp_path / "data"), train_per_class=16, val_per_class=4)
    files = [os.path.join(root, "train", c, f) for c in sorted(os.listdir(f"{root}/train"))
             for f in sorted(os.listdir(f"{root}/train/{c}"))]
    bad = epoch_indices(len(files), 0, 0, 1, 2, True)[:3]    # in rank 1's shard of epoch 1
    for i in bad:
        with open(files[i], "wb") as fh:
            fh.write(b"not an image")
    out, logs, records = tmp_path / "run", tmp_path / "logs", tmp_path / "records"
    records.mkdir()
    cfg = write_config(tmp_path / "c.yaml", data_dir=root, epochs=2, output_dir=str(out),
                       batch_size=4, log_interval=2)
    env = launcher_env(logs, ACMIX_HARNESS_OUT=str(records), PYTHONPATH=os.pathsep.join(
        [HARNESS, REPO_DIR, os.environ.get("PYTHONPATH", "")]))
    job = subprocess.Popen(["bash", LAUNCHER, "2", cfg], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=str(tmp_path))
    deadline = time.time() + 300
    while "epoch 2/2 step 2/6" not in read_log(logs / "worker_1.log"):
        assert job.poll() is None and time.time() < deadline, (
            read_log(logs / "worker_0.log")[-3000:] + read_log(logs / "worker_1.log")[-3000:])
        time.sleep(0.5)
    pid = int(re.search(r"rank 1 of 2, pid (\d+)", read_log(logs / "worker_1.log")).group(1))
    os.kill(pid, signal.SIGKILL)
    killed = time.time()
    stdout, stderr = job.communicate(timeout=180)
    assert time.time() - killed < 120 and job.returncode != 0
    assert f"error: lost worker rank 1 (pid {pid}): it was killed by SIGKILL" in stderr, \
        stderr[-3000:]

    ranks = [json.load(open(records / f"rank_{r}.json"))["0"] for r in (0, 1)]
    for r in ranks:
        assert len(r["labels"]) == len(r["losses"]) == 6            # 24 images a rank, 4 a batch
        assert r["overflows"] == [False, False, True, False, False, False]
        assert r["optimizer_step"] == 5                              # step 3 was not applied
    assert [r["skipped"] for r in ranks] == [0, 3]
    # the loss each rank sees is the mean over ranks
    assert fingerprint(ranks[0]["losses"][3:]) == fingerprint(ranks[1]["losses"][3:])
    assert all(np.isfinite(ranks[0]["losses"][i]) for i in (0, 1, 3, 4, 5))
    for r in (0, 1):
        assert "weights identical on all 2 ranks" in read_log(logs / f"worker_{r}.log")
    record = read_metrics(out)[0]
    assert record["skipped_images"] == 3
    cfg_now = C.resolve(cfg)
    assert record["lr"] == pytest.approx(float(lr_schedule(cfg_now, 6, 2)[4]))   # optimizer's
    assert int(read_checkpoint(str(out / "last.ckpt"))["epoch"].asnumpy()) == 1

    proc = run_script("train.py", "--config", cfg, "--resume", "auto", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert ("resuming a run trained on 2 worker(s) with 1: global batch 8 -> 4, peak lr "
            "0.03333 -> 0.01667 (linear scaling), steps per epoch 6 -> 12") in proc.stdout
    assert [r["epoch"] for r in read_metrics(out)] == [1, 2]
    assert int(read_checkpoint(str(out / "last.ckpt"))["epoch"].asnumpy()) == 2
