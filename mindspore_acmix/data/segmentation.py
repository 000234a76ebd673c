"""Image + mask data for semantic segmentation: the folder layouts, mmsegmentation's training
pipeline with static shapes, the evaluation transform, and the splits the trainer reads.

Layouts (`dataset` in a config):
- ade20k: `images/{training,validation}/*.jpg`, `annotations/{training,validation}/*.png`,
  150 classes, reduce_zero_label (0 "other" becomes ignore, the rest minus one);
- segfolder: `images/{train,val}/*`, `masks/{train,val}/*.png` (same file stem), the config's
  num_classes and ignore_index;
- digits: the built-in digit canvases (data/digit_canvases.py), a segfolder of 11 classes.

A sample is bad when its mask is missing, unreadable, of another size than its image, or holds
a label that is neither a class nor ignore_index: it is named (once) and skipped, counted
like unreadable images in classification. Batches have static shapes (graph mode): training
crops are padded to crop_size (image 0, mask ignore_index); evaluation images are resized to
the test scale and padded in a batch to the largest one.

Order and augmentation are explicit functions of (seed, position): training draws from an
endless stream of per-pass permutations, sharded by rank, and sample j of the stream is
augmented with the generator seeded by (seed, j). So an iteration-based run resumed at an
evaluation boundary reads exactly the batches the uninterrupted run would have read.
"""
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..checks import ceil_div
from .image_check import IMAGE_EXTENSIONS, DataError, check_one_batch

LAYOUTS = {  # dataset -> (image folder, mask folder, {split: folder name})
    "ade20k": ("images", "annotations", {"train": "training", "val": "validation"}),
    "segfolder": ("images", "masks", {"train": "train", "val": "val"}),
    "digits": ("images", "masks", {"train": "train", "val": "val"}),
}
ADE20K_CLASSES = 150


def dataset_root(cfg):
    """The folder of a segmentation config, writing the built-in digit canvases on first use."""
    if cfg["dataset"] == "digits":
        from .digit_canvases import ensure_digit_canvases
        return ensure_digit_canvases(cfg["data_dir"])
    return cfg["data_dir"]


def reduces_zero_label(cfg):
    """ADE20K's label 0 ("other") is ignored and the rest shifted down, unless the config
    says otherwise."""
    flag = cfg["reduce_zero_label"]
    return cfg["dataset"] == "ade20k" if flag is None else flag


def scan_pairs(root, dataset, split):
    """([(name, image path, mask path or None)] sorted by name) of one split; DataError when
    the image folder is missing or empty."""
    image_dir, mask_dir, names = LAYOUTS[dataset]
    images = os.path.join(root, image_dir, names[split])
    masks = os.path.join(root, mask_dir, names[split])
    if not os.path.isdir(images):
        raise DataError(f"dataset folder {images} does not exist (expected {root}/{image_dir}/"
                        f"{names[split]}/<image> and {root}/{mask_dir}/{names[split]}/<mask>.png)")
    mask_files = {os.path.splitext(f)[0]: f for f in os.listdir(masks)
                  if f.lower().endswith(".png")} if os.path.isdir(masks) else {}
    pairs = []
    for f in sorted(os.listdir(images)):
        if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS:
            stem = os.path.splitext(f)[0]
            mask = mask_files.get(stem)
            pairs.append((f, os.path.join(images, f), mask and os.path.join(masks, mask)))
    if not pairs:
        raise DataError(f"dataset folder {images} holds no images")
    return pairs


class BadSample(ValueError):
    """A sample that cannot be used; the message names the file and the problem."""


def read_pair(pair, num_classes, ignore_index, reduce_zero_label):
    """(RGB uint8 image, int32 label map) of one (name, image path, mask path) pair, or
    BadSample saying why not."""
    from PIL import Image

    name, image_path, mask_path = pair
    if mask_path is None:
        raise BadSample(f"{image_path}: no mask (expected a PNG of the same name in the "
                        "mask folder)")
    try:
        with Image.open(image_path) as img:
            image = np.asarray(img.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadSample(f"{image_path}: unreadable image ({exc})") from None
    try:
        with Image.open(mask_path) as img:
            if img.mode not in ("L", "P", "I", "I;16"):
                raise BadSample(f"{mask_path}: a mask must be a single-channel PNG of class "
                                f"indices, this one is {img.mode}")
            label = np.asarray(img, dtype=np.int32)
    except (OSError, SyntaxError) as exc:
        raise BadSample(f"{mask_path}: unreadable mask ({exc})") from None
    if label.shape != image.shape[:2]:
        raise BadSample(f"{mask_path}: mask is {label.shape[1]}x{label.shape[0]}, its image "
                        f"{name} is {image.shape[1]}x{image.shape[0]}")
    if reduce_zero_label:  # as mmsegmentation: 0 -> ignore, 1..K -> 0..K-1
        label = label - 1
        label[(label == -1) | (label == 254)] = ignore_index
    bad = (label >= num_classes) & (label != ignore_index) | (label < 0)
    if bad.any():
        values = np.unique(label[bad])
        shown = ", ".join(str(v + 1 if reduce_zero_label else v) for v in values[:5])
        raise BadSample(f"{mask_path}: labels {shown} are neither a class (0-"
                        f"{num_classes - 1 + int(reduce_zero_label)}) nor ignore_index "
                        f"{ignore_index}")
    return image, label


# ------------------------------------------------------------------ transforms (NumPy/PIL)
def resize_array(array, size, resample):
    """`array` (H, W[, C]) resized to size (h, w) with PIL (bilinear for images, nearest for
    labels)."""
    from PIL import Image

    h, w = size
    if array.shape[:2] == (h, w):
        return array
    if array.ndim == 2:  # labels: nearest on int32 ('I' mode)
        return np.asarray(Image.fromarray(array.astype(np.int32)).resize((w, h), Image.NEAREST),
                          np.int32)
    return np.asarray(Image.fromarray(array).resize((w, h), resample))


def rescale_size(h, w, scale):
    """mmcv's keep-ratio rescale: the largest (h, w) with the long side <= max(scale) and the
    short side <= min(scale)."""
    factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return int(h * factor + 0.5), int(w * factor + 0.5)


def random_resize(image, label, rng, scale, ratio_range):
    """mmseg Resize(img_scale=scale, ratio_range): the scale times a uniform ratio, keep ratio."""
    from PIL import Image

    ratio = rng.uniform(*ratio_range)
    size = rescale_size(*image.shape[:2], (scale[0] * ratio, scale[1] * ratio))
    return resize_array(image, size, Image.BILINEAR), resize_array(label, size, Image.NEAREST)


def random_crop(image, label, rng, crop, cat_max_ratio, ignore_index):
    """mmseg RandomCrop: up to 10 draws until no class covers more than cat_max_ratio of the
    crop's labelled pixels (the last draw is kept)."""
    h, w = label.shape
    ch, cw = min(crop[0], h), min(crop[1], w)
    for _ in range(10):
        y = int(rng.integers(0, h - ch + 1))
        x = int(rng.integers(0, w - cw + 1))
        if cat_max_ratio >= 1:
            break
        window = label[y:y + ch, x:x + cw]
        _, counts = np.unique(window[window != ignore_index], return_counts=True)
        if len(counts) > 1 and counts.max() / counts.sum() < cat_max_ratio:
            break
    return image[y:y + ch, x:x + cw], label[y:y + ch, x:x + cw]


def photometric_distortion(image, rng):
    """mmseg PhotoMetricDistortion: brightness (delta 32), contrast (0.5-1.5) before or after
    saturation (0.5-1.5) and hue (delta 18 of OpenCV's 180), each with probability 0.5. HSV
    through PIL (hue on 0-255: the delta is scaled by 256/180)."""
    from PIL import Image

    img = image.astype(np.float32)
    if rng.integers(2):
        img = img + rng.uniform(-32, 32)
    contrast_first = rng.integers(2)
    if contrast_first and rng.integers(2):
        img = img * rng.uniform(0.5, 1.5)
    img = np.clip(img, 0, 255).astype(np.uint8)
    saturate, hue = rng.integers(2), rng.integers(2)
    if saturate or hue:
        hsv = np.asarray(Image.fromarray(img).convert("HSV")).astype(np.float32)
        if saturate:
            hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.5, 1.5), 0, 255)
        if hue:
            hsv[..., 0] = (hsv[..., 0] + rng.integers(-18, 19) * 256 / 180) % 256
        img = np.asarray(Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB"))
    if not contrast_first and rng.integers(2):
        img = np.clip(img.astype(np.float32) * rng.uniform(0.5, 1.5), 0, 255).astype(np.uint8)
    return img


def normalize(image, mean, std):
    """(H, W, 3) uint8 -> (3, H, W) float32 on the 0-255 scale's mean and std."""
    return ((image.astype(np.float32) - np.asarray(mean, np.float32))
            / np.asarray(std, np.float32)).transpose(2, 0, 1)


def train_transform(image, label, rng, cfg):
    """mmsegmentation's training pipeline: random resize (ratio_range of `scale`), random crop
    (cat_max_ratio), horizontal flip, photometric distortion, normalise, pad to crop_size
    (image 0, label ignore_index). Returns ((3, ch, cw) float32, (ch, cw) int32)."""
    crop, ignore = cfg["crop_size"], cfg["ignore_index"]
    image, label = random_resize(image, label, rng, cfg["scale"], cfg["ratio_range"])
    image, label = random_crop(image, label, rng, crop, cfg["cat_max_ratio"], ignore)
    if rng.uniform() < cfg["hflip"]:
        image, label = image[:, ::-1], label[:, ::-1]
    if cfg["photometric"]:
        image = photometric_distortion(np.ascontiguousarray(image), rng)
    image = normalize(image, cfg["mean"], cfg["std"])
    padded = np.zeros((3,) + tuple(crop), np.float32)
    padded_label = np.full(tuple(crop), ignore, np.int32)
    h, w = label.shape
    padded[:, :h, :w], padded_label[:h, :w] = image, label
    return padded, padded_label


def eval_transform(image, cfg):
    """The evaluation (and prediction) preprocessing of one RGB uint8 image: resized (keep
    ratio) to the config's test scale, normalised, (3, h, w) float32."""
    from PIL import Image

    size = rescale_size(*image.shape[:2], cfg["scale"])
    return normalize(resize_array(image, size, Image.BILINEAR), cfg["mean"], cfg["std"])


# ------------------------------------------------------------------ splits
class SegmentationSplit:
    """One split of a segmentation folder. Training: `train_batches(period)` yields exactly
    `steps_per_epoch` (= eval_interval) batches of the endless shuffled stream. Evaluation:
    `eval_batches()` yields (images, labels, names) with every good sample once."""

    def __init__(self, cfg, split, rank=0, world=1, log=print):
        self.cfg, self.split, self.rank, self.world, self.log = cfg, split, rank, world, log
        self.train = split == "train"
        self.root = dataset_root(cfg)
        self.pairs = scan_pairs(self.root, cfg["dataset"], split)
        self.num_samples = len(self.pairs)
        self.reduce_zero_label = reduces_zero_label(cfg)
        self.bad = {}  # pair index -> reason, found while reading
        self.skipped = 0  # bad samples met in the last train_batches period
        self.classes = cfg["class_names"] or [str(c) for c in range(cfg["num_classes"])]
        missing = [name for name, _, mask in self.pairs if mask is None]
        if missing and not cfg["skip_bad_images"]:
            raise DataError(f"{len(missing)} image(s) of {self.root} ({self.split}) have no "
                            f"mask, e.g. {missing[0]} (set skip_bad_images: true to skip them)")
        if self.train:
            check_one_batch(f"{self.root} ({split})", self.num_samples, cfg["batch_size"], world)

    @property
    def steps_per_epoch(self):
        if self.train:
            return self.cfg["eval_interval"]
        return ceil_div(len(self._eval_indices()), self.cfg["batch_size"])

    def warnings(self):
        missing = sum(mask is None for _, _, mask in self.pairs)
        if not missing:
            return []
        return [f"{missing} image(s) of {self.root} ({self.split}) have no mask and are skipped"]

    def read(self, index):
        """The (image, label) of sample `index`, or None for a bad one (named once)."""
        if index in self.bad:
            return None
        try:
            return read_pair(self.pairs[index], self.cfg["num_classes"],
                             self.cfg["ignore_index"], self.reduce_zero_label)
        except BadSample as exc:
            if not self.cfg["skip_bad_images"]:
                raise DataError(f"{exc} (set skip_bad_images: true to skip such samples)") \
                    from None
            self.bad[index] = str(exc)
            if self.rank == 0:
                self.log(f"skipping a bad sample: {exc}")
            return None

    # training ------------------------------------------------------------
    def stream_index(self, position):
        """The sample index at `position` of this rank's endless stream: pass p is the (seed,
        p) permutation of every sample, cut into equal shards."""
        per_rank = self.num_samples // self.world
        rounds, offset = divmod(position, per_rank)
        order = np.random.default_rng([self.cfg["seed"], rounds]).permutation(self.num_samples)
        return int(order[self.rank + offset * self.world])

    def _train_sample(self, position):
        """(image, label, bad samples met) at `position`: a bad sample is replaced by the next
        good one in file order, so a position always means the same pair."""
        index, met = self.stream_index(position), 0
        for _ in range(self.num_samples):
            pair = self.read(index)
            if pair is not None:
                # the same generator on every run, on every rank for its own stream position
                rng = np.random.default_rng([self.cfg["seed"], self.rank, position])
                return train_transform(*pair, rng, self.cfg) + (met,)
            met += 1
            index = (index + 1) % self.num_samples
        raise DataError(f"every sample of {self.root} ({self.split}) is bad")

    def train_batches(self, period):
        """Exactly steps_per_epoch (images, labels) batches of evaluation period `period`
        (0-based); `self.skipped` counts the bad samples met in it."""
        from mindspore import Tensor

        bs, steps = self.cfg["batch_size"], self.steps_per_epoch
        first = period * steps * bs
        self.skipped = 0
        with ThreadPoolExecutor(self.cfg["num_workers"]) as pool:
            for step in range(steps):
                positions = range(first + step * bs, first + (step + 1) * bs)
                samples = list(pool.map(self._train_sample, positions))
                self.skipped += sum(s[2] for s in samples)
                yield (Tensor(np.stack([s[0] for s in samples])),
                       Tensor(np.stack([s[1] for s in samples])))

    # evaluation ----------------------------------------------------------
    def _eval_indices(self):
        return list(range(self.rank, self.num_samples, self.world))

    def _eval_sample(self, index):
        pair = self.read(index)
        if pair is None:
            return None
        image, label = pair
        return eval_transform(image, self.cfg), label, self.pairs[index][0]

    def eval_batches(self):
        """(images (B, 3, h, w) float32, [label (H, W)], [name]) of this rank's share, every
        good sample once: up to batch_size consecutive samples of one image size and one label
        size (all of them for same-sized images such as the digit canvases)."""
        bs = self.cfg["batch_size"]
        with ThreadPoolExecutor(self.cfg["num_workers"]) as pool:
            batch = []
            for sample in pool.map(self._eval_sample, self._eval_indices()):
                if sample is None:
                    continue
                if batch and (len(batch) == bs or sample[0].shape != batch[0][0].shape
                              or sample[1].shape != batch[0][1].shape):
                    yield _eval_batch(batch)
                    batch = []
                batch.append(sample)
            if batch:
                yield _eval_batch(batch)


def _eval_batch(samples):
    return (np.stack([s[0] for s in samples]), [s[1] for s in samples],
            [s[2] for s in samples])
