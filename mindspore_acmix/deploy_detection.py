"""A detector in the Ascend 310 flow (preprocess.py, the inference program, postprocess.py).

The program runs the exported MindIR (export.py: detection.FlatOutputs, batch 1) on float32
inputs and writes its raw outputs; decoding and NMS stay here, in the one postprocess that
evaluation uses. Files, beside the classifier's (mindspore_acmix/deploy.py):

- `<pre>/img_data/<name>.bin`: one image through eval's pipeline (resize keeping the ratio to
  img_scale, normalise, zero-pad to pad_size), float32 (1, 3, PH, PW), no header;
- `<pre>/label.json`: what scoring needs: {"task": "detection", "ann_file", the anchors and
  inference settings, "images": {<name>: [image id, [h, w] resized, [w scale, h scale]]}};
- `<pre>/infer_args.txt`: `--image_size=PH,PW` (the program checks the model input);
- `result_Files/<name>_<i>.bin`: output i of one image, float32 without header: for i < L
  the class logits of level i, (A * classes, h_i, w_i); for L <= i < 2L the box deltas of
  level i - L, (A * 4, h_i, w_i); h_i, w_i = ceil(pad / stride_i).

`<name>` is the image's file name without extension.
"""
import json
import os

import numpy as np

from .detection.anchors import AnchorSpec, InferCfg, postprocess

TASK = "detection"


def write_inputs(cfg, detector, out_dir, image_dir, labels_only=False):
    """label.json and infer_args.txt in out_dir, and unless labels_only the .bin inputs in
    image_dir, for the validation split of cfg's COCO-layout data. Returns the image count."""
    from .data.detection import DetectionSplit
    from .deploy import ARGS_FILE, LABEL_FILE, write_bin
    from .detection import image_targets

    split = DetectionSplit(cfg, "val", detector.anchors, detector.train_cfg, assign=image_targets)
    spec, infer = detector.anchors, detector.test_cfg
    images = {}
    if not labels_only:
        os.makedirs(image_dir, exist_ok=True)
    for index, record in enumerate(split.records):
        name = os.path.splitext(os.path.basename(record.path))[0]
        if name in images:
            raise ValueError(f"two images are named {name} in {split.ann_file}")
        image, _, img_shape, scale = split.sample(index)
        images[name] = [record.image_id, list(img_shape), list(scale)]
        if not labels_only:
            write_bin(os.path.join(image_dir, name + ".bin"), image[None])
    meta = {"task": TASK, "ann_file": os.path.abspath(split.ann_file),
            "pad_size": list(split.pad_shape), "num_classes": cfg["num_classes"],
            "strides": list(spec.strides), "octave_base_scale": spec.octave_base_scale,
            "scales_per_octave": spec.scales_per_octave, "ratios": list(spec.ratios),
            "infer": {k: getattr(infer, k) for k in ("nms_pre", "score_thr", "nms_iou",
                                                     "max_per_img")},
            "images": images}
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, LABEL_FILE), "w") as fh:
        json.dump(meta, fh, indent=1, sort_keys=True)
    with open(os.path.join(out_dir, ARGS_FILE), "w") as fh:
        fh.write(f"--image_size={split.pad_shape[0]},{split.pad_shape[1]}\n")
    return len(images)


def is_detection_labels(labels):
    """Whether a loaded label.json is a detector's (write_inputs) rather than a classifier's."""
    return isinstance(labels, dict) and labels.get("task") == TASK


def read_outputs(result_dir, name, spec, num_classes, pad_shape):
    """([class logits per level], [box deltas per level]) of one image's result files."""
    from .deploy import read_bin

    sizes = spec.feat_sizes(pad_shape)
    cls, reg = [], []
    for i, (h, w) in enumerate(sizes):
        for outputs, k, index in ((cls, num_classes, i), (reg, 4, len(sizes) + i)):
            path = os.path.join(result_dir, f"{name}_{index}.bin")
            if not os.path.isfile(path):
                raise FileNotFoundError(f"no result file {path} for image {name}")
            outputs.append(read_bin(path, (spec.num_base * k, h, w)))
    return cls, reg


def score(result_dir, meta):
    """{AP, AP50, AP75, APs, APm, APl, num_samples, num_detections} of the result files
    against the annotation file, through the shared postprocess and COCOeval."""
    import contextlib
    import io

    from pycocotools.coco import COCO

    from .detection.evaluation import coco_metrics, detection_rows

    spec = AnchorSpec(tuple(meta["strides"]), meta["octave_base_scale"],
                      meta["scales_per_octave"], tuple(meta["ratios"]))
    pad_shape = tuple(meta["pad_size"])
    level_anchors, infer = spec.level_anchors(pad_shape), InferCfg(**meta["infer"])
    if not meta["images"]:
        raise ValueError(f"label file lists no images; nothing to score in {result_dir}")
    rows = []
    for name in sorted(meta["images"]):
        image_id, img_shape, (sx, sy) = meta["images"][name]
        cls, reg = read_outputs(result_dir, name, spec, meta["num_classes"], pad_shape)
        boxes, scores, labels = postprocess(cls, reg, level_anchors, tuple(img_shape),
                                            np.array([sx, sy, sx, sy]), infer)
        rows.append(detection_rows(image_id, boxes, scores, labels))
    rows = np.concatenate(rows)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco = COCO(meta["ann_file"])
    result = coco_metrics(coco, rows, sorted(coco.getCatIds()),
                          image_ids=[v[0] for v in meta["images"].values()])
    result = {k: (None if np.isnan(v) else v) for k, v in result.items()}
    result.update(num_samples=len(meta["images"]), num_detections=len(rows))
    return result
