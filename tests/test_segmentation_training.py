"""The task side of segmentation: the built-in digit canvases, the image + mask pipeline
(bad samples named and skipped), the config's segmentation keys, the poly schedule, and
train.py / eval.py on a tiny segmentation run (resumed exactly)."""
import json
import os

import numpy as np
import pytest
import yaml
from PIL import Image

from mindspore_acmix import config as C
from mindspore_acmix.checkpoint import read_checkpoint
from mindspore_acmix.data import digit_canvases, segmentation as seg
from mindspore_acmix.data.image_check import DataError
from mindspore_acmix.engine.optim import poly_schedule

from conftest import error_line, run_script


# ---------------------------------------------------------------------- digit canvases
def test_digit_canvases_are_deterministic_and_labelled_by_their_digits():
    first, again = digit_canvases.generate("val", 6), digit_canvases.generate("val", 6)
    for (image, mask), (image2, mask2) in zip(first, again):
        np.testing.assert_array_equal(image, image2)
        np.testing.assert_array_equal(mask, mask2)
    assert not np.array_equal(first[0][1], digit_canvases.generate("train", 1)[0][1])
    for image, mask in first:
        assert image.shape == (64, 64, 3) and mask.shape == (64, 64) and image.dtype == np.uint8
        values = set(np.unique(mask).tolist())
        assert values <= set(range(11)) | {255} and 0 in values
        digits = values - {0, 255}
        assert 1 <= len(digits) <= 4
        # strokes are drawn bright over a dark background; the rims between are ignored
        grey = image.astype(float).mean(-1)
        assert grey[(mask >= 1) & (mask <= 10)].mean() > grey[mask == 0].mean() + 60
    assert sum((mask == 255).sum() for _, mask in first) > 0


def test_digit_canvases_are_written_once_as_a_segfolder(tmp_path, monkeypatch):
    monkeypatch.setattr(digit_canvases, "COUNTS", {"train": 3, "val": 2})
    root = digit_canvases.ensure_digit_canvases(str(tmp_path / "canvases"))
    pairs = seg.scan_pairs(root, "digits", "val")
    assert [p[0] for p in pairs] == ["0000.png", "0001.png"]
    image, label = seg.read_pair(pairs[1], 11, 255, False)
    expected = digit_canvases.generate("val", 2)[1]
    np.testing.assert_array_equal(image, expected[0])
    np.testing.assert_array_equal(label, expected[1])
    stamp = os.path.getmtime(os.path.join(root, "COMPLETE"))
    assert digit_canvases.ensure_digit_canvases(root) == root
    assert os.path.getmtime(os.path.join(root, "COMPLETE")) == stamp


# ---------------------------------------------------------------------- pipeline
def test_rescale_and_reduce_zero_label_follow_mmseg(tmp_path):
    # mmcv keep-ratio rescale to (2048, 512): the short side reaches 512 first
    assert seg.rescale_size(375, 500, (2048, 512)) == (512, 683)
    assert seg.rescale_size(512, 4000, (2048, 512)) == (262, 2048)
    Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(tmp_path / "a.jpg")
    Image.fromarray(np.array([[0, 1, 150], [2, 0, 255]], np.uint8)).save(tmp_path / "a.png")
    pair = ("a.jpg", str(tmp_path / "a.jpg"), str(tmp_path / "a.png"))
    _, label = seg.read_pair(pair, 150, 255, reduce_zero_label=True)
    np.testing.assert_array_equal(label, [[255, 0, 149], [1, 255, 255]])


def seg_cfg(**values):
    cfg = {"crop_size": [8, 8], "scale": [12, 12], "ratio_range": [1.0, 1.0],
           "cat_max_ratio": 1.0, "ignore_index": 255, "hflip": 0.0, "photometric": False,
           "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
    cfg.update(values)
    return cfg


def test_train_transform_crops_pads_with_ignore_and_repeats_with_its_seed():
    image = np.arange(6 * 4 * 3, dtype=np.uint8).reshape(6, 4, 3)
    label = np.arange(24, dtype=np.int32).reshape(6, 4) % 3
    # scale 12 -> the 6x4 image becomes 12x8; the 8x8 crop fits in width, not in height
    x, y = seg.train_transform(image, label, np.random.default_rng(0), seg_cfg())
    assert x.shape == (3, 8, 8) and y.shape == (8, 8) and y.dtype == np.int32
    x2, y2 = seg.train_transform(image, label, np.random.default_rng(0), seg_cfg())
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    # a smaller image is padded: label ignore_index, image 0, on the bottom and right
    small = seg_cfg(scale=[4, 3])  # 6x4 -> 4x3 (ratio kept)
    x, y = seg.train_transform(image, label, np.random.default_rng(1), small)
    assert (y[4:] == 255).all() and (y[:, 3:] == 255).all() and (y[:4, :3] != 255).all()
    assert (x[:, 4:] == 0).all() and (x[:, :, 3:] == 0).all()


def test_random_crop_redraws_a_crop_dominated_by_one_class():
    label = np.zeros((40, 40), np.int32)
    label[:, 20:] = 1  # a crop of 12 columns is mixed (< 75% one class) at 5 of 29 offsets
    image = np.zeros((40, 40, 3), np.uint8)

    def mixed(cat_max_ratio):
        found = 0
        for seed in range(40):
            _, crop = seg.random_crop(image, label, np.random.default_rng(seed), (12, 12),
                                      cat_max_ratio, 255)
            counts = np.bincount(crop.ravel(), minlength=2)
            found += counts.max() / counts.sum() < 0.75
        return found / 40

    assert mixed(1.0) < 0.35 and mixed(0.75) > 0.6


def make_seg_folder(root, n_train=8, n_val=4, size=32, seed=0):
    """A segfolder of 3 learnable classes: 0 background noise, 1 a bright square, 2 a
    bright bar."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("val", n_val)):
        os.makedirs(os.path.join(root, "images", split))
        os.makedirs(os.path.join(root, "masks", split))
        for i in range(count):
            image = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
            mask = np.zeros((size, size), np.uint8)
            y, x = rng.integers(0, size - 12, 2)
            mask[y:y + 10, x:x + 10] = 1
            x0 = (i * 5) % (size - 4)
            mask[size // 2:, x0:x0 + 4] = 2
            image[mask == 1] = 220
            image[mask == 2] = [60, 200, 60]
            Image.fromarray(image).save(os.path.join(root, "images", split, f"{i:02d}.png"))
            Image.fromarray(mask).save(os.path.join(root, "masks", split, f"{i:02d}.png"))
    return root


def split_cfg(root, **values):
    cfg = {"task": "segmentation", "model": "resnet_tiny", "num_classes": 3,
           "dataset": "segfolder", "data_dir": root, "batch_size": 4, "eval_interval": 2,
           "max_iters": 4, "crop_size": [16, 16], "scale": [32, 32], "ratio_range": [0.5, 1.0],
           "hflip": 0.5, "photometric": True, "num_workers": 1}
    return C.resolve(None, list({**values, **{k: v for k, v in cfg.items()
                                              if k not in values}}.items()))


def test_bad_masks_are_named_and_skipped_and_batches_stay_full(tmp_path):
    root = make_seg_folder(str(tmp_path / "data"))
    masks = os.path.join(root, "masks", "train")
    os.remove(os.path.join(masks, "01.png"))  # missing
    Image.fromarray(np.zeros((31, 32), np.uint8)).save(os.path.join(masks, "02.png"))  # size
    Image.fromarray(np.full((32, 32), 7, np.uint8)).save(os.path.join(masks, "03.png"))  # range
    lines = []
    split = seg.SegmentationSplit(split_cfg(root), "train", log=lines.append)
    assert split.warnings() == [f"1 image(s) of {root} (train) have no mask and are skipped"]
    batches = list(split.train_batches(0))
    assert len(batches) == 2 and all(x.shape == (4, 3, 16, 16) for x, _ in batches)
    # a pass reads every sample, so two periods of 8 meet each bad one: named once each
    assert split.skipped >= 3
    list(split.train_batches(1))
    assert len(lines) == 3, lines
    text = "\n".join(lines)
    assert "01.png: no mask" in text
    assert "02.png: mask is 32x31, its image 02.png is 32x32" in text
    assert "03.png: labels 7 are neither a class (0-2) nor ignore_index 255" in text
    # evaluation skips them too, and counts them
    assert [names for _, _, names in split.eval_batches()] == [["00.png", "04.png", "05.png",
                                                                "06.png"], ["07.png"]]
    with pytest.raises(DataError, match=r"1 image\(s\) of .* have no mask, e.g. 01.png"):
        seg.SegmentationSplit(split_cfg(root, skip_bad_images=False), "train")
    strict = seg.SegmentationSplit(split_cfg(root, skip_bad_images=False), "val")
    Image.fromarray(np.zeros((32, 30), np.uint8)).save(os.path.join(root, "masks", "val",
                                                                    "00.png"))
    with pytest.raises(DataError, match=r"00.png: mask is 30x32.*skip_bad_images: true"):
        strict.read(0)


def test_training_stream_is_a_function_of_the_position():
    """A resumed run reads the same samples: stream positions map to samples by (seed, pass)
    only, each pass a permutation of every sample."""
    split = seg.SegmentationSplit.__new__(seg.SegmentationSplit)
    split.cfg, split.num_samples, split.world, split.rank = {"seed": 3}, 10, 1, 0
    first_pass = [split.stream_index(p) for p in range(10)]
    assert sorted(first_pass) == list(range(10))
    assert first_pass == [split.stream_index(p) for p in range(10)]
    assert [split.stream_index(p) for p in range(10, 20)] != first_pass


# ---------------------------------------------------------------------- config and schedule
@pytest.mark.parametrize("extra,match", [
    ("epochs: 3\n", r"epochs is a key of task classification; this config's task is "
                    r"segmentation"),
    ("max_iters: 10\neval_interval: 4\n", r"max_iters \(10\) must be a multiple of "
                                          r"eval_interval \(4\)"),
    ("num_classes: 10\n", r"the digits data has 11 classes, num_classes is 10"),
    ("dataset: imagefolder\n", r"dataset imagefolder is classification data"),
    ("test_stride: [100, 100]\n", r"test_stride \[100, 100\] is larger than crop_size"),
    ("class_names: [a, b]\n", r"class_names has 2 names for 11 classes"),
    ("class_weight: [1, 2]\n", r"class_weight has 2 weights for 11 classes"),
    ("class_weight: [1, -2]\n", r"class_weight must be non-negative numbers, got \[1, -2\]"),
])
def test_segmentation_config_mistakes_are_named(tmp_path, extra, match):
    base = ("task: segmentation\nmodel: resnet_tiny\nnum_classes: 11\ndataset: digits\n"
            "crop_size: [64, 64]\n")
    path = tmp_path / "c.yaml"
    text = base + extra
    if extra.startswith(("num_classes", "dataset")):
        text = text.replace("num_classes: 11\n", "", extra.startswith("num_classes"))
        text = text.replace("dataset: digits\n", "", extra.startswith("dataset"))
    path.write_text(text)
    with pytest.raises(C.ConfigError, match=match):
        C.resolve(str(path))


def test_classification_rejects_segmentation_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: resnet_tiny\nnum_classes: 10\ndataset: digits\nmax_iters: 5\n")
    with pytest.raises(C.ConfigError, match="max_iters is a key of task segmentation; this "
                                            "config's task is classification"):
        C.resolve(str(path))


def test_poly_schedule_with_linear_warmup_as_mmcv():
    cfg = {"lr": 0.01, "batch_size": 4, "lr_batch_size": 8, "max_iters": 10,
           "warmup_iters": 4, "warmup_start_factor": 0.1, "poly_power": 0.9, "min_lr": 1e-4}
    lrs = poly_schedule(cfg, world=2)  # global batch 8: the peak lr is 0.01
    poly = [(0.01 - 1e-4) * (1 - t / 10) ** 0.9 + 1e-4 for t in range(10)]
    warm = [1 - (1 - t / 4) * 0.9 for t in range(4)] + [1.0] * 6
    np.testing.assert_allclose(lrs, np.multiply(poly, warm), rtol=1e-6)
    assert lrs[0] == pytest.approx(0.001, rel=1e-5)


def test_no_decay_keys_select_by_name():
    from mindspore import nn
    from mindspore_acmix.engine.optim import param_groups

    net = nn.SequentialCell(nn.Dense(2, 3), nn.LayerNorm((3,)))
    norm = list(net.cells())[1]
    norm.gamma.name, norm.beta.name = "norm.gamma", "norm.beta"
    names = lambda groups, i: sorted(p.name for p in groups[i]["params"])  # noqa: E731
    everything = param_groups(net, 0.1, [])
    assert names(everything, 1) == [] and len(everything[0]["params"]) == 4
    custom = param_groups(net, 0.1, ["norm"])
    assert names(custom, 1) == ["norm.beta", "norm.gamma"]
    assert "0.bias" in names(custom, 0)  # mmcv custom_keys decay what they do not name
    assert "0.bias" in names(param_groups(net, 0.1, None), 1)  # the model's rule


# ---------------------------------------------------------------------- train.py / eval.py
def seg_run_config(path, root, out, **values):
    cfg = {"task": "segmentation", "model": "resnet_tiny",
           "model_kwargs": {"neck_channels": 16, "head_channels": 16},
           "num_classes": 3, "class_names": ["background", "square", "bar"],
           "dataset": "segfolder", "data_dir": root, "crop_size": [32, 32], "scale": [32, 32],
           "ratio_range": [0.75, 1.25], "hflip": 0.5, "batch_size": 4, "num_workers": 1,
           "optimizer": "adamw", "lr": 0.003, "lr_batch_size": 4, "weight_decay": 0.01,
           "max_iters": 6, "eval_interval": 2, "warmup_iters": 2, "poly_power": 0.9,
           "mean": [60.0, 60.0, 60.0], "std": [60.0, 60.0, 60.0], "device": "CPU",
           "output_dir": str(out), "keep_checkpoints": 2, "log_interval": 1}
    cfg.update(values)
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def entries(path):
    return {k: v.asnumpy() for k, v in read_checkpoint(path).items() if hasattr(v, "asnumpy")}


@pytest.fixture(scope="module")
def seg_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seg")
    root = make_seg_folder(str(tmp / "data"))
    out = tmp / "run"
    proc = run_script("train.py", "--config", seg_run_config(tmp / "c.yaml", root, out))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return tmp, root, out, proc


@pytest.mark.slow
def test_a_segmentation_run_records_miou_and_draws_its_predictions(seg_run):
    _, _, out, proc = seg_run
    assert "iter 2/6: train loss" in proc.stdout and "best val mIoU" in proc.stdout
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records] == [2, 4, 6]
    for r in records:
        assert 0 <= r["val_mIoU"] <= 1 and 0 <= r["val_mAcc"] <= 1 and 0 < r["val_aAcc"] <= 1
        assert len(r["val_IoU"]) == 3 and r["val_samples"] == 4
        ious = [v for v in r["val_IoU"] if v is not None]
        assert r["val_mIoU"] == pytest.approx(np.mean(ious))
    assert records[-1]["lr"] < records[0]["lr"]  # poly decay
    for name in ("predictions.png", "curves.png", "best.ckpt", "last.ckpt"):
        assert (out / name).is_file(), name
    meta = entries(str(out / "last.ckpt"))
    assert int(meta["epoch"]) == 3 and float(meta["best_mIoU"]) == pytest.approx(
        max(r["val_mIoU"] for r in records), abs=1e-6)


@pytest.mark.slow
def test_eval_prints_the_per_class_iou_table(seg_run):
    _, _, out, _ = seg_run
    proc = run_script("eval.py", "--checkpoint", str(out / "last.ckpt"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert result["mIoU"] == pytest.approx(last["val_mIoU"], abs=1e-9)
    assert result["num_samples"] == 4 and len(result["IoU"]) == 3
    table = proc.stderr
    assert "class" in table and "IoU" in table
    for name, iou in zip(["background", "square", "bar"], result["IoU"]):
        assert f"{name}" in table and (iou is None or f"{100 * iou:6.2f}%" in table)


@pytest.mark.slow
def test_a_segmentation_run_resumes_exactly(seg_run):
    tmp, root, whole_out, _ = seg_run
    out = tmp / "resumed"
    cfg = seg_run_config(tmp / "r.yaml", root, out)
    proc = run_script("train.py", "--config", cfg, "--stop-after", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "stopping after 1 evaluation interval(s) as asked" in proc.stdout
    proc = run_script("train.py", "--config", cfg, "--resume", "auto")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 of 6 iterations done" in proc.stdout
    whole, resumed = entries(str(whole_out / "last.ckpt")), entries(str(out / "last.ckpt"))
    assert set(whole) == set(resumed) and any(k.startswith("adam_m.") for k in whole)
    for key in whole:
        np.testing.assert_array_equal(resumed[key], whole[key], err_msg=key)


def test_a_segmentation_key_in_a_classification_run_is_one_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: resnet_tiny\nnum_classes: 10\ndataset: digits\nhead: upernet\n")
    assert "head is a key of task segmentation" in error_line(
        run_script("train.py", "--config", str(path)))


def test_pretrained_backbone_loads_a_classification_checkpoint_strictly(tmp_path):
    import mindspore as ms
    from mindspore_acmix import create_model
    from mindspore_acmix.checkpoint import CheckpointError
    from mindspore_acmix.engine.tasks import build_segmentor

    classifier = create_model("resnet_tiny", num_classes=10)
    path = str(tmp_path / "cls.ckpt")
    ms.save_checkpoint(classifier, path)
    cfg = split_cfg(str(tmp_path), pretrained_backbone=path)
    lines = []
    net = build_segmentor(cfg, lines.append)
    weights = {p.name: p.asnumpy() for p in classifier.get_parameters()}
    backbone = {p.name: p.asnumpy() for p in net.backbone.get_parameters()}
    assert all(name.startswith("backbone.") for name in backbone)  # names restored
    for name, value in backbone.items():
        np.testing.assert_array_equal(value, weights[name[len("backbone."):]], err_msg=name)
    assert "dropped (classification only): fc.bias, fc.weight" in lines[0]
    other = create_model("acmix_resnet_tiny", num_classes=10)
    ms.save_checkpoint(other, path)
    with pytest.raises(CheckpointError, match="cls.ckpt"):
        build_segmentor(cfg)
    # eval.py builds without it: the run's checkpoint holds the weights
    build_segmentor(cfg, pretrained=False)
