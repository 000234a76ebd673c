"""The Ascend 310 flow: the C++ program type-checks against MindSpore's public C++ headers, and
the whole flow (preprocess -> infer -> postprocess, scripts/run_infer_310.sh) runs end to end
on digits images with the Python twin of the program, reporting eval.py's accuracy."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from mindspore_acmix.checkpoint import read_checkpoint
from mindspore_acmix.cli import REPO_DIR
from mindspore_acmix.deploy import (ARGS_FILE, LABEL_FILE, RESULT_DIR, TIME_DIR, TIME_FILE,
                                    parse_infer_args, read_labels)
from mindspore_acmix.tools import rates

from conftest import assert_close, doc_command, run_script, run_words

INFER_DIR = os.path.join(REPO_DIR, "ascend310_infer")
TINY_CONFIG = os.path.join(REPO_DIR, "configs", "digits", "acmix_resnet_tiny.yaml")


def cpp_headers():
    """The folder holding include/api/model.h: $MS_CPP_HEADERS, an unpacked MindSpore Lite
    package in $LITE_HOME (runtime/), or what scripts/fetch_cpp_headers.sh wrote."""
    candidates = [os.environ.get("MS_CPP_HEADERS"),
                  os.environ.get("LITE_HOME") and os.path.join(os.environ["LITE_HOME"], "runtime"),
                  os.path.join(REPO_DIR, ".cache", "mindspore_cpp_headers")]
    for folder in candidates:
        if folder and os.path.isfile(os.path.join(folder, "include", "api", "model.h")):
            return folder
    return None


def test_cpp_program_type_checks_against_mindspore_headers():
    compiler = shutil.which("g++")
    headers = cpp_headers()
    if compiler is None:
        pytest.skip("g++ not found: the C++ syntax check needs a C++17 compiler")
    if headers is None:
        pytest.skip("MindSpore C++ API headers not found: run `bash scripts/fetch_cpp_headers.sh` "
                    "(or set MS_CPP_HEADERS / LITE_HOME)")
    proc = subprocess.run(
        [compiler, "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-I", INFER_DIR,
         "-isystem", headers, "-isystem", os.path.join(headers, "include"),
         os.path.join(INFER_DIR, "src", "main.cc"), os.path.join(INFER_DIR, "src", "utils.cc")],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]


def run_flow(mindir, data, route, cwd, config):
    env = dict(os.environ, GLOG_v="3", INFER_BACKEND="python", PYTHON=sys.executable,
               CONFIG=config or "")
    if config is None:
        del env["CONFIG"]
    return subprocess.run(["bash", os.path.join(REPO_DIR, "scripts", "run_infer_310.sh"),
                           str(mindir), str(data), "0", route],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=900)


def last_json(text):
    return json.loads(text.strip().splitlines()[-1])


TRAIN_PER_CLASS, VAL_PER_CLASS = 8, 4


@pytest.fixture(scope="module")
def digits_subset(tmp_path_factory):
    """An ImageFolder of the digits data's first TRAIN_PER_CLASS train and VAL_PER_CLASS val
    images of each class: the flow's cost is per image, its checks are not."""
    from mindspore_acmix.data.digits import ensure_digits
    source, root = ensure_digits(None), tmp_path_factory.mktemp("digits_subset")
    for split, count in (("train", TRAIN_PER_CLASS), ("val", VAL_PER_CLASS)):
        for label in sorted(os.listdir(os.path.join(source, split))):
            os.makedirs(root / split / label)
            for name in sorted(os.listdir(os.path.join(source, split, label)))[:count]:
                shutil.copyfile(os.path.join(source, split, label, name),
                                root / split / label / name)
    return root


def check_rates(out, json_path):
    """rates.png beside the run's curves, and the rates tool's JSON: the checkpoint's rates,
    which training moved away from their initial 0.5."""
    assert os.path.getsize(out / "rates.png") > 1000
    trained = read_checkpoint(str(out / "last.ckpt"))
    assert rates.run([str(out / "last.ckpt"), "--json", str(json_path)]) == 0
    layers = json.loads(json_path.read_text())["layers"]
    assert [r["rate1"] for r in layers] == [
        float(trained[f"layer{s}.0.conv2.rate1"].asnumpy()[0]) for s in (1, 2, 3, 4)]
    assert all(r["rate1"] != 0.5 for r in layers)


@pytest.mark.slow
def test_flow_on_digits_reports_eval_accuracy(tmp_path, tmp_path_factory, digits_subset):
    """train.py (the digits recipe on a subset of the digits images, 1 epoch without warm-up,
    eval resize 36 -> crop 32) -> eval.py -> docs/export.md's export and 310 commands, verbatim
    but for the placeholders, from a directory laid out like the clone -> the flow by both
    routes; the Python twin writes what the C++ program writes. The run's ACmix rates: its
    rates.png and the rates tool."""
    for name in ("configs", "export.py"):
        os.symlink(os.path.join(REPO_DIR, name), tmp_path / name)
    out = tmp_path / "outputs" / "acmix_resnet_tiny_digits"  # where docs/export.md's export reads
    proc = run_script("train.py", "--config", TINY_CONFIG, "--epochs", "1", "--output-dir",
                      str(out), "--batch-size", "20", "--set", "device=CPU", "--set",
                      "dataset=imagefolder", "--set", f"data_dir={digits_subset}", "--set",
                      "eval_resize=36", "--set", "warmup_epochs=0",
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = out / "best.ckpt"
    check_rates(out, tmp_path_factory.mktemp("rates") / "rates.json")
    proc = run_script("eval.py", "--checkpoint", str(ckpt), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = last_json(proc.stdout)
    proc = run_words(doc_command("docs/export.md", "python export.py --config configs/digits/"), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    mindir = tmp_path / "acmix_tiny.mindir"
    assert mindir.is_file()
    val = str(digits_subset / "val")
    n = sum(len(files) for _, _, files in os.walk(val))
    assert n == 10 * VAL_PER_CLASS
    for route in ("bin", "jpeg"):
        work = tmp_path / route
        work.mkdir()
        os.symlink(os.path.join(REPO_DIR, "scripts"), work / "scripts")
        words = [{"CONFIG=C": f"CONFIG={out / 'config.yaml'}", "net.mindir": str(mindir),
                  "/data/imagenet/val": val, "jpeg": route}.get(word, word)
                 for word in doc_command("docs/export.md", "CONFIG=C bash scripts/run_infer_310.sh")]
        proc = run_words(words, work, env={"INFER_BACKEND": "python", "PYTHON": sys.executable})
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        got = last_json((work / "acc.log").read_text())
        assert got["num_samples"] == expected["num_samples"] == n
        assert got["top1"] == expected["top1"] and got["top5"] == expected["top5"], (route, got,
                                                                                   expected)
        assert abs(got["loss"] - expected["loss"]) <= 1e-5 * max(1.0, expected["loss"])
        labels = read_labels(work / "preprocess_Result" / LABEL_FILE)
        assert len(labels) == n  # "<class>_<file stem>": the class folder's index
        assert all(label == int(name.split("_")[0]) for name, label in labels.items())
        results = sorted(os.listdir(work / RESULT_DIR))
        assert results == sorted(f"{name}_0.bin" for name in labels)
        logits = np.fromfile(work / RESULT_DIR / results[0], np.float32)
        assert logits.shape == (10,) and np.isfinite(logits).all()
        timing = (work / TIME_DIR / TIME_FILE).read_text()
        assert timing.startswith("NN inference cost average time: ")
        assert timing.rstrip().endswith(f"ms of infer_count {n}")
        args = parse_infer_args((work / "preprocess_Result" / ARGS_FILE).read_text())
        assert args == {"resize": 36, "crop": 32, "mean": [40.0] * 3, "std": [75.0] * 3,
                        "interpolation": "bilinear"}
        bins = os.listdir(work / "preprocess_Result" / "img_data") if route == "bin" else []
        assert len(bins) == (n if route == "bin" else 0)
        if route == "bin":  # float32 (1, 3, 32, 32), no header
            assert os.path.getsize(work / "preprocess_Result" / "img_data" / bins[0]) == 3 * 32 * 32 * 4
    # the JPEG route's preprocessing (the C++ program's) gives eval.py's inputs, image by image
    for name in results:
        assert_close(np.fromfile(tmp_path / "jpeg" / RESULT_DIR / name, np.float32),
                     np.fromfile(tmp_path / "bin" / RESULT_DIR / name, np.float32), 1e-5, name)
    assert sorted(os.listdir(tmp_path)) == ["acmix_tiny.mindir", "bin", "configs", "export.py",
                                            "jpeg", "outputs"]


def test_flow_stops_at_the_first_failing_stage(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "net.mindir").write_bytes(b"not used")
    proc = run_flow(tmp_path / "net.mindir", tmp_path / "empty", "bin", tmp_path, TINY_CONFIG)
    assert proc.returncode == 1
    assert "error: stage 'preprocess' failed; see preprocess.log" in proc.stderr
    assert "holds no images" in (tmp_path / "preprocess.log").read_text()
    assert not (tmp_path / "infer.log").exists() and not (tmp_path / "acc.log").exists()
    proc = run_flow(tmp_path / "missing.mindir", tmp_path / "empty", "bin", tmp_path, TINY_CONFIG)
    assert proc.returncode == 2 and "error: MindIR" in proc.stderr
    # without CONFIG the recipe is acmix_resnet50's (1000 classes): the error says what sets it
    (tmp_path / "empty" / "class_0").mkdir()
    (tmp_path / "empty" / "class_0" / "a.png").write_bytes(b"")
    proc = run_flow(tmp_path / "net.mindir", tmp_path / "empty", "bin", tmp_path, None)
    assert proc.returncode == 1
    assert "has 1 class folders but num_classes is 1000 in " in proc.stderr
    assert "give the model's training config (run_infer_310.sh: CONFIG=...;" in proc.stderr


@pytest.mark.slow
def test_detector_flow_scores_its_raw_outputs_as_evaluation_does(tmp_path):
    """A detector's MindIR through the flow (bin route, the Python twin): preprocess.py writes
    eval's padded inputs and the scoring metadata, the program writes every raw per-level
    output, postprocess.py decodes them with the shared postprocess and scores them with
    COCOeval: the same AP as the MindIR's outputs decoded here image by image; a 32x64
    (non-square) input; the JPEG route is refused with a clear line."""
    import yaml
    from PIL import Image

    from mindspore import Tensor
    from mindspore_acmix.data.detection import DetectionSplit
    from mindspore_acmix.data.digit_boxes import annotations
    from mindspore_acmix.deploy import MindIRRunner, export_network, prepare_for_export
    from mindspore_acmix.detection import FlatOutputs, image_targets, postprocess, split_outputs
    from mindspore_acmix.detection.evaluation import coco_metrics, detection_rows
    from mindspore_acmix.engine.tasks import build_detector

    data = tmp_path / "data"
    images, coco = annotations("val", 3)
    os.makedirs(data / "annotations")
    os.makedirs(data / "val")
    for name, image in images:
        Image.fromarray(image).save(data / "val" / name)
    (data / "annotations" / "instances_val.json").write_text(json.dumps(coco))
    cfg = yaml.safe_load(open(os.path.join(REPO_DIR, "configs", "digits",
                                           "det_acmix_resnet_tiny.yaml")))
    cfg.update(model="resnet_tiny", model_kwargs={}, dataset="coco", data_dir=str(data),
               val_split="val", device="CPU", img_scale=[64, 32], pad_size=[32, 64],
               detector_kwargs=dict(cfg["detector_kwargs"], fpn_channels=8, stacked_convs=1,
                                    score_thr=0.0, max_per_img=20))
    config = tmp_path / "det.yaml"
    config.write_text(yaml.safe_dump(cfg))
    from mindspore_acmix import config as config_lib
    full = config_lib.resolve(str(config))
    det = build_detector(full, pretrained=False)
    cell = FlatOutputs(prepare_for_export(det))
    mindir = export_network(cell, "MINDIR", (1, 3, 32, 64), str(tmp_path / "det"))

    work = tmp_path / "work"
    work.mkdir()
    proc = run_flow(mindir, data, "bin", work, str(config))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert (work / "preprocess_Result" / ARGS_FILE).read_text().strip() == "--image_size=32,64"
    got = last_json((work / "acc.log").read_text())

    split = DetectionSplit(full, "val", det.anchors, det.train_cfg, assign=image_targets)
    runner, anchors, rows = MindIRRunner(mindir), det.anchors.level_anchors((32, 64)), []
    for index, record in enumerate(split.records):
        image, _, img_shape, (sx, sy) = split.sample(index)
        name = os.path.splitext(os.path.basename(record.path))[0]
        assert_close(np.fromfile(work / "preprocess_Result" / "img_data" / f"{name}.bin",
                                 np.float32), image.ravel(), 0, name)
        outputs = runner.outputs(image[None])
        assert len(outputs) == 6  # 3 levels' class logits, then their box deltas
        python = [o.asnumpy() for o in cell(Tensor(image[None]))]
        for i, (output, reference) in enumerate(zip(outputs, python)):
            written = np.fromfile(work / RESULT_DIR / f"{name}_{i}.bin", np.float32)
            np.testing.assert_array_equal(written, output.ravel())
            np.testing.assert_allclose(output, reference, atol=1e-4)
        cls, reg = split_outputs([o[0] for o in outputs])
        rows.append(detection_rows(record.image_id, *postprocess(
            cls, reg, anchors, img_shape, np.array([sx, sy, sx, sy]), det.test_cfg)))
    expected = coco_metrics(split.coco, np.concatenate(rows), split.cat_ids)
    assert got["num_samples"] == 3 and got["num_detections"] == 60
    for key, value in expected.items():
        assert got[key] == (None if np.isnan(value) else value), key

    jpeg = tmp_path / "jpeg"
    jpeg.mkdir()
    proc = run_flow(mindir, data, "jpeg", jpeg, str(config))
    assert proc.returncode == 1
    assert "a detector takes the bin route" in (jpeg / "preprocess.log").read_text()
