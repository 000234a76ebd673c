"""Training and evaluation on a small generated ImageFolder, and the data pipeline and
schedule they rest on (exact resume: test_reliability.py)."""
import json
import os

import numpy as np
import pytest

from mindspore_acmix import config as C
from mindspore_acmix.data.digits import ensure_digits, stratified_split
from mindspore_acmix.data.pipeline import DataError, ImageFolderSplit, epoch_indices
from mindspore_acmix.engine.optim import lr_schedule, param_groups
from mindspore_acmix.engine.evaluate import batch_metrics
from mindspore_acmix import create_model

from conftest import run_script, write_config


@pytest.fixture
def folder(tiny_folder):
    return tiny_folder


def read_metrics(out):
    with open(os.path.join(out, "metrics.jsonl")) as fh:
        return [json.loads(line) for line in fh]


# ---------------------------------------------------------------------- pieces
def test_lr_schedule_warmup_then_cosine():
    cfg = dict(lr=0.1, batch_size=32, lr_batch_size=256, epochs=10, warmup_epochs=2,
               warmup_start_factor=0.25, min_lr=0.001)
    lrs = lr_schedule(cfg, steps_per_epoch=5, world=8)   # global batch 256: peak 0.1
    assert len(lrs) == 50
    assert lrs[0] == pytest.approx(0.025)
    assert lrs[10] == pytest.approx(0.1)                  # end of warmup = peak
    assert np.all(np.diff(lrs[:10]) > 0) and np.all(np.diff(lrs[10:]) < 0)
    assert lrs[-1] == pytest.approx(0.001 + 0.5 * 0.099 * (1 + np.cos(np.pi * 39 / 40)))


def test_no_weight_decay_on_norms_biases_and_rates():
    net = create_model("acmix_resnet_tiny", num_classes=3)
    decay, no_decay, _ = param_groups(net, 1e-4)
    no_decay_names = {p.name for p in no_decay["params"]}
    assert "layer1.0.conv2.rate1" in no_decay_names and "bn1.gamma" in no_decay_names
    assert "layer1.0.conv2.conv1.bias" in no_decay_names and "fc.bias" in no_decay_names
    assert all(p.ndim > 1 for p in decay["params"]) and "fc.weight" in {
        p.name for p in decay["params"]}
    assert no_decay["weight_decay"] == 0.0


def test_batch_metrics():
    logits = np.array([[3.0, 1.0, 0.0, -1.0, -2.0, -3.0], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    hits1, hits5, loss, n = batch_metrics(logits, np.array([0, 0]))
    assert (hits1, hits5, n) == (1, 1, 2)
    expected = -(logits[0, 0] - np.log(np.exp(logits[0]).sum())) - (
        logits[1, 0] - np.log(np.exp(logits[1]).sum()))
    assert loss == pytest.approx(expected)


def test_epoch_indices_shard_a_per_epoch_permutation():
    a0, b0 = (epoch_indices(10, 3, 0, r, 2, True) for r in (0, 1))
    assert len(a0) == len(b0) == 5 and not set(a0) & set(b0)
    assert epoch_indices(10, 3, 0, 0, 2, True) == a0          # deterministic
    assert epoch_indices(10, 3, 1, 0, 2, True) != a0          # another epoch, another order
    assert sorted(epoch_indices(7, 0, 0, 0, 2, False) + epoch_indices(7, 0, 0, 1, 2, False)) \
        == list(range(7))                                    # eval: every sample once


def test_digits_tree_is_stratified_and_complete(tmp_path):
    labels = np.repeat(np.arange(10), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    train, val = stratified_split(labels)
    assert len(train) + len(val) == 1797 and not set(train) & set(val)
    for c in range(10):
        assert abs((labels[val] == c).sum() / (labels == c).sum() - 0.2) < 0.01
    root = ensure_digits(str(tmp_path / "digits"))
    counts = [len(os.listdir(os.path.join(root, s, str(c)))) for s in ("train", "val")
              for c in range(10)]
    assert sum(counts) == 1797 and os.path.isfile(os.path.join(root, "COMPLETE"))
    assert ensure_digits(root) == root                         # written once


def test_pipeline_batches_are_normalised_and_deterministic(folder, tmp_path):
    cfg = C.resolve(write_config(tmp_path / "c.yaml", data_dir=folder))
    split = ImageFolderSplit(cfg, "train")
    assert split.steps_per_epoch == 72 // 12
    first = [b["image"] for b in split.epoch(0).create_dict_iterator(num_epochs=1,
                                                                      output_numpy=True)]
    again = [b["image"] for b in split.epoch(0).create_dict_iterator(num_epochs=1,
                                                                      output_numpy=True)]
    other = [b["image"] for b in split.epoch(1).create_dict_iterator(num_epochs=1,
                                                                      output_numpy=True)]
    assert first[0].shape == (12, 3, 16, 16) and first[0].dtype == np.float32
    assert -1.5 < float(np.mean(first[0])) < 1.5
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
    val = ImageFolderSplit(cfg, "val")
    labels = np.concatenate([b["label"] for b in val.epoch(0).create_dict_iterator(
        num_epochs=1, output_numpy=True)])
    assert sorted(labels.tolist()) == [0] * 8 + [1] * 8 + [2] * 8


def test_dataset_problems_are_named(folder, tmp_path):
    cfg = C.resolve(write_config(tmp_path / "c.yaml", data_dir=str(tmp_path / "none")))
    with pytest.raises(DataError, match="none/train does not exist"):
        ImageFolderSplit(cfg, "train")
    os.makedirs(tmp_path / "empty" / "train" / "a")
    cfg["data_dir"] = str(tmp_path / "empty")
    with pytest.raises(DataError, match="holds no images"):
        ImageFolderSplit(cfg, "train")
    cfg["data_dir"], cfg["num_classes"] = folder, 5
    with pytest.raises(DataError, match="has 3 class folders but num_classes is 5"):
        ImageFolderSplit(cfg, "train")


# ---------------------------------------------------------------------- runs
# Exact resume (stop, kill, resume, compare bit for bit with this same run) is
# test_reliability.py's test_sigkill_at_any_moment_then_resume_matches_an_uninterrupted_run.
def test_training_improves_and_eval_agrees(trained_run):
    out, proc = trained_run
    out = str(out)
    records = read_metrics(out)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    assert max(r["val_top1"] for r in records) >= 0.9      # chance is 1/3
    for name in ("last.ckpt", "best.ckpt", "config.yaml", "curves.png", "epoch_0003.ckpt",
                 "epoch_0002.ckpt"):
        assert os.path.isfile(os.path.join(out, name)), name
    assert not os.path.exists(os.path.join(out, "epoch_0001.ckpt"))   # keep_checkpoints: 2
    assert "step 6/6" in proc.stdout and "img/s" in proc.stdout and "ETA" in proc.stdout

    proc = run_script("eval.py", "--checkpoint", os.path.join(out, "best.ckpt"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result) >= {"top1", "top5", "loss", "num_samples"}
    assert result["num_samples"] == 24
    best = max(records, key=lambda r: r["val_top1"])
    assert result["top1"] == pytest.approx(best["val_top1"])
