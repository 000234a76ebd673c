"""Detection data: COCO `instances_*.json` annotations read with pycocotools, mmdetection's
1x pipeline (resize keeping the ratio to img_scale, flip, normalise, pad) to one fixed
pad_size (graph mode compiles one shape), and RetinaNet's targets assigned here, in NumPy,
so that the network's inputs are static (N anchors x 5) tensors and the compiled graph holds
no IoU matrix.

Layout of data_dir: `annotations/instances_{split}.json` and the images under `{split}/`
(`train2017`, `val2017` for COCO; the split names are the config's train_split / val_split).
Crowd boxes are ignored (RetinaNet's assigner takes no ignore boxes); images without boxes
are kept. A box with no area, one wholly outside its image or one of an unknown category is
named (once) and skipped; a box partly outside is clipped to the image."""
import contextlib
import io
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..checks import ceil_div
from .image_check import DataError, check_one_batch
from .segmentation import normalize, rescale_size, resize_array


class ImageRecord:
    """One image of a split: its file, size, and clean (x1, y1, x2, y2) boxes and labels."""

    def __init__(self, image_id, path, height, width, boxes, labels):
        self.image_id, self.path, self.height, self.width = image_id, path, height, width
        self.boxes, self.labels = boxes, labels


def clean_boxes(coco, image, cat_to_label, problems):
    """(boxes (K, 4) float32 x1y1x2y2, labels (K,) int64) of one image's annotations, crowd
    ones left out; bad ones described in `problems` and left out."""
    boxes, labels = [], []
    h, w = image["height"], image["width"]
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]], iscrowd=None)):
        where = f"{image['file_name']} (annotation {ann.get('id')})"
        if ann.get("iscrowd", 0):
            continue
        x, y, bw, bh = (float(v) for v in ann["bbox"])
        if ann.get("category_id") not in cat_to_label:
            problems.append(f"{where}: unknown category {ann.get('category_id')!r}")
            continue
        if bw <= 0 or bh <= 0:
            problems.append(f"{where}: box {ann['bbox']} has no area")
            continue
        x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + bw, w), min(y + bh, h)
        if x2 <= x1 or y2 <= y1:
            problems.append(f"{where}: box {ann['bbox']} lies outside the {w}x{h} image")
            continue
        boxes.append([x1, y1, x2, y2])
        labels.append(cat_to_label[ann["category_id"]])
    return (np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64))


def load_coco(ann_file, image_dir, log=print):
    """(pycocotools COCO, sorted category ids, [ImageRecord]) of an instances json; every
    bad annotation is named in the log and skipped."""
    from pycocotools.coco import COCO

    if not os.path.isfile(ann_file):
        raise DataError(f"{ann_file}: no such annotation file")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            coco = COCO(ann_file)
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{ann_file}: not a COCO instances file ({exc})") from None
    cat_ids = sorted(coco.getCatIds())
    cat_to_label = {c: i for i, c in enumerate(cat_ids)}
    records, problems = [], []
    for image_id in sorted(coco.getImgIds()):
        image = coco.loadImgs([image_id])[0]
        boxes, labels = clean_boxes(coco, image, cat_to_label, problems)
        records.append(ImageRecord(image_id, os.path.join(image_dir, image["file_name"]),
                                   image["height"], image["width"], boxes, labels))
    for line in problems:
        log(f"skipping a bad annotation: {line}")
    return coco, cat_ids, records


def transform(image, boxes, cfg, flip=False):
    """mmdet's pipeline on one RGB uint8 image and its boxes: resize keeping the ratio to
    img_scale (boxes scaled by the actual w and h factors and clipped), optional horizontal
    flip, normalise, zero-pad to pad_size. Returns ((3, PH, PW) float32, boxes, img_shape
    (h, w) after resizing, (w_scale, h_scale))."""
    from PIL import Image

    h, w = image.shape[:2]
    nh, nw = rescale_size(h, w, cfg["img_scale"])
    ph, pw = cfg["pad_size"]
    if nh > ph or nw > pw:
        raise DataError(f"an image resized to {nh}x{nw} does not fit pad_size {ph}x{pw}")
    image = resize_array(image, (nh, nw), Image.BILINEAR)
    scale = np.array([nw / w, nh / h, nw / w, nh / h], np.float32)
    boxes = boxes * scale
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, nw)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, nh)
    if flip:
        image = image[:, ::-1]
        boxes = np.stack([nw - boxes[:, 2], boxes[:, 1], nw - boxes[:, 0], boxes[:, 3]], 1)
    padded = np.zeros((3, ph, pw), np.float32)
    padded[:, :nh, :nw] = normalize(image, cfg["mean"], cfg["std"])
    return padded, boxes, (nh, nw), (nw / w, nh / h)


def read_image(path):
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable image ({exc})") from None


class DetectionSplit:
    """One split of a COCO-layout folder. Training: `train_batches(epoch)` yields
    steps_per_epoch (images, targets) batches, every rank its shard of the (seed, epoch)
    permutation. Evaluation: `eval_batches()` yields (images, metas) of this rank's share;
    a meta is (image_id, img_shape, (w_scale, h_scale)). `assign` is the detector's target
    assignment (detection.image_targets), given by the task: data imports no model code."""

    def __init__(self, cfg, split, anchors, train_cfg, rank=0, world=1, log=print, *, assign):
        self.cfg, self.split, self.rank, self.world = cfg, split, rank, world
        self.train = split == "train"
        self.log = log if rank == 0 else (lambda _: None)
        name = cfg["train_split" if self.train else "val_split"]
        root = dataset_root(cfg)
        self.ann_file = os.path.join(root, "annotations", f"instances_{name}.json")
        self.coco, self.cat_ids, self.records = load_coco(
            self.ann_file, os.path.join(root, name), self.log)
        self.num_samples = len(self.records)
        self.by_id = {r.image_id: r for r in self.records}
        self.skipped = 0
        self.pad_shape = tuple(cfg["pad_size"])
        self.anchors, self.train_cfg = anchors, train_cfg
        self.all_anchors = np.concatenate(anchors.level_anchors(self.pad_shape))
        self._targets = assign
        if self.train:
            check_one_batch(self.ann_file, self.num_samples, cfg["batch_size"], world)

    @property
    def steps_per_epoch(self):
        if self.train:
            return self.num_samples // (self.cfg["batch_size"] * self.world)
        return ceil_div(len(range(self.rank, self.num_samples, self.world)), self.cfg["batch_size"])

    def warnings(self):
        return []

    def sample(self, index, flip=False):
        """(image, boxes, img_shape, scale) of record `index` through the pipeline."""
        record = self.records[index]
        image = read_image(record.path)
        if image.shape[:2] != (record.height, record.width):
            raise DataError(f"{record.path}: the image is {image.shape[1]}x{image.shape[0]}, "
                            f"its annotation says {record.width}x{record.height}")
        return transform(image, record.boxes, self.cfg, flip)

    def _train_sample(self, epoch, position, index):
        rng = np.random.default_rng([self.cfg["seed"], epoch, position])
        image, boxes, img_shape, _ = self.sample(index, rng.uniform() < self.cfg["hflip"])
        valid = self.anchors.valid(self.pad_shape, img_shape)
        targets = self._targets(self.all_anchors, valid, boxes, self.records[index].labels,
                                self.cfg["num_classes"], self.train_cfg)
        return image, targets

    def train_batches(self, epoch):
        from mindspore import Tensor

        bs = self.cfg["batch_size"]
        order = np.random.default_rng([self.cfg["seed"], epoch]).permutation(self.num_samples)
        shard = order[self.rank::self.world]
        with ThreadPoolExecutor(self.cfg["num_workers"]) as pool:
            for step in range(self.steps_per_epoch):
                positions = range(step * bs, (step + 1) * bs)
                samples = list(pool.map(lambda p: self._train_sample(epoch, p, int(shard[p])),
                                        positions))
                yield (Tensor(np.stack([s[0] for s in samples])),
                       Tensor(np.stack([s[1] for s in samples])))

    def _eval_sample(self, index):
        image, _, img_shape, scale = self.sample(index)
        return image, (self.records[index].image_id, img_shape, scale)

    def eval_batches(self):
        bs = self.cfg["batch_size"]
        indices = list(range(self.rank, self.num_samples, self.world))
        with ThreadPoolExecutor(self.cfg["num_workers"]) as pool:
            for start in range(0, len(indices), bs):  # one batch in memory at a time
                chunk = list(pool.map(self._eval_sample, indices[start:start + bs]))
                yield np.stack([s[0] for s in chunk]), [s[1] for s in chunk]


def dataset_root(cfg):
    """data_dir, or the built-in digit boxes (written on first use) for dataset digits."""
    if cfg["dataset"] == "digits":
        from .digit_boxes import ensure_digit_boxes
        return ensure_digit_boxes(cfg["data_dir"])
    return cfg["data_dir"]
