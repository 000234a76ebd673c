"""ImageFolder pipelines (`<root>/train/<class>/*`, `<root>/val/<class>/*`) through
mindspore.dataset, with the standard ImageNet train and eval transforms.

Data order is an explicit permutation per (seed, epoch), sharded by rank, and the
augmentation seed is set per (seed, rank, epoch), so that ranks augment differently and a
run resumed at an epoch boundary sees exactly the batches the uninterrupted run would have
seen. A training epoch has exactly `steps_per_epoch` batches on every rank whatever images
are skipped (see ImageFolderSplit.train_batches): data parallelism needs every rank in every
gradient all-reduce.
"""
import os

import numpy as np
import mindspore as ms
import mindspore.dataset as ds
import mindspore.dataset.transforms as T
import mindspore.dataset.vision as V

from ..checks import ceil_div
from ..seeding import data_seed
from .digits import ensure_digits
from .image_check import (FOLDER_EXTENSIONS, DataError, check_encoded, check_one_batch,
                          is_image_name, pipeline_error)


def dataset_root(cfg):
    """The ImageFolder root of a config, writing the built-in digits tree on first use."""
    if cfg["dataset"] == "digits":
        return ensure_digits(cfg["data_dir"])
    return cfg["data_dir"]


def split_classes(root, split):
    """Sorted class folder names of `root/split` (ImageFolderDataset's label order)."""
    return scan_split(root, split)[0]


def scan_split(root, split):
    """(sorted class folder names, [class/file] that are not images by their extension,
    [class folders without images]) of `root/split`; DataError when it is missing or holds no
    images."""
    folder = os.path.join(root, split)
    if not os.path.isdir(folder):
        raise DataError(f"dataset folder {folder} does not exist (expected {root}/{split}/"
                        "<class>/<image>)")
    classes = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    images, ignored, empty = 0, [], []
    for c in classes:
        found = images
        for f in sorted(os.listdir(os.path.join(folder, c))):
            if is_image_name(f):
                images += 1
            else:  # README.txt, .DS_Store, .Jpg: ImageFolderDataset does not read them
                ignored.append(f"{c}/{f}")
        if images == found:
            empty.append(c)
    if not classes or images == 0:
        raise DataError(f"dataset folder {folder} holds no images in class sub-folders")
    return classes, ignored, empty


def _listing(names, limit=3):
    return ", ".join(names[:limit]) + (" ..." if len(names) > limit else "")


def check_same_classes(train, val):
    """DataError unless two ImageFolderSplits have the same class folders: a label is the
    index of its folder in sorted order, so any difference mislabels one split."""
    if train.classes != val.classes:
        only = [f"only in {s.split}: {_listing(sorted(set(s.classes) - set(o.classes))) or '-'}"
                for s, o in ((train, val), (val, train))]
        raise DataError(f"{train.root}/{train.split} and {val.root}/{val.split} have different "
                        f"class folders ({'; '.join(only)}): labels are the index of a class "
                        "folder in sorted order, so both need the same ones")


def _tag(value):
    """A map function adding a constant "padding" column beside the label."""
    value = np.int32(value)
    return lambda label: (label, value)


def _interpolation(name):
    return {"bilinear": V.Inter.BILINEAR, "bicubic": V.Inter.BICUBIC}[name]


def epoch_indices(num_samples, seed, epoch, rank, world, shuffle):
    """This rank's sample indices for one epoch: a (seed, epoch) permutation cut into equal
    shards (the tail that does not divide evenly is left out of that epoch)."""
    order = (np.random.default_rng([seed, epoch]).permutation(num_samples) if shuffle
             else np.arange(num_samples))
    if not shuffle:
        return order[rank::world].tolist()  # evaluation: every sample once, shards may differ
    per_rank = num_samples // world
    return order[: per_rank * world][rank::world].tolist()


def eval_transforms(resize, crop, mean, std, interpolation="bilinear"):
    """Decode, short side to `resize`, center crop `crop`, normalise (0-255 scale), CHW: the
    evaluation transforms (also the Ascend 310 program's JPEG preprocessing)."""
    return [check_encoded, V.Decode(), V.Resize(resize, _interpolation(interpolation)),
            V.CenterCrop(crop), V.Normalize(mean, std), V.HWC2CHW()]


class ImageFolderSplit:
    """One split of an ImageFolder tree with its transforms; `epoch(e)` builds that epoch's
    batched dataset for this rank."""

    def __init__(self, cfg, split, rank=0, world=1):
        self.cfg, self.split, self.rank, self.world = cfg, split, rank, world
        self.train = split == "train"
        self.root = dataset_root(cfg)
        self.classes, self.ignored, self.empty_classes = scan_split(self.root, split)
        if len(self.classes) != cfg["num_classes"]:
            raise DataError(f"{self.root}/{split} has {len(self.classes)} class folders but "
                            f"num_classes is {cfg['num_classes']}")
        self.num_samples = self._folder().get_dataset_size()
        self.skipped = 0  # unreadable images of the last train_batches epoch
        self.indices = epoch_indices(self.num_samples, cfg["seed"], 0, rank, world, self.train)
        if self.train:
            check_one_batch(f"{self.root}/train", self.num_samples, cfg["batch_size"], world)

    def warnings(self):
        """Lines worth telling the user about this split's folders."""
        where = f"{self.root}/{self.split}"
        lines = []
        if self.ignored:
            lines.append(f"ignoring {len(self.ignored)} file(s) in {where} without an image "
                         f"extension: {_listing(self.ignored)}")
        if self.empty_classes:
            lines.append(f"warning: {len(self.empty_classes)} class folder(s) of {where} hold "
                         f"no images: {_listing(self.empty_classes)} (the model still has an "
                         "output for each; add images or remove the folder)")
        return lines

    @property
    def steps_per_epoch(self):
        if self.train:
            return len(self.indices) // self.cfg["batch_size"]
        return ceil_div(len(self.indices), self.cfg["batch_size"])

    def transforms(self):
        cfg = self.cfg
        normalize = [V.Normalize(cfg["mean"], cfg["std"]), V.HWC2CHW()]
        inter = _interpolation(cfg["interpolation"])
        if self.train:
            ops = [check_encoded, V.Decode(),
                   V.RandomResizedCrop(cfg["image_size"], tuple(cfg["crop_scale"]),
                                       tuple(cfg["crop_ratio"]), inter)]
            if cfg["hflip"] > 0:
                ops.append(V.RandomHorizontalFlip(cfg["hflip"]))
            if cfg["color_jitter"] > 0:
                jitter = cfg["color_jitter"]
                ops.append(V.RandomColorAdjust(jitter, jitter, jitter))
            if cfg["randaugment"] is not None:
                ops.append(V.RandAugment(num_ops=2, magnitude=cfg["randaugment"],
                                         interpolation=inter))
            ops += normalize
            if cfg["random_erasing"] > 0:  # on the normalised CHW image, as timm does
                ops.append(V.RandomErasing(cfg["random_erasing"]))
            return ops
        return eval_transforms(cfg["eval_resize"], cfg["image_size"], cfg["mean"], cfg["std"],
                               cfg["interpolation"])

    def epoch(self, epoch):
        """Batches of one epoch: "image" (N, 3, S, S) float32 and "label" (int32, or float32
        one-hot mixed when mixup/cutmix is on); in training also "padding" (N,) int32, 1 for
        the samples after this rank's shard (the shard again, read only as far as images
        were skipped)."""
        cfg = self.cfg
        ds.config.set_seed(data_seed(cfg["seed"], self.rank, epoch))
        ds.config.set_error_samples_mode(ds.config.ErrorSamplesMode.SKIP if cfg["skip_bad_images"]
                                         else ds.config.ErrorSamplesMode.RETURN)
        indices = epoch_indices(self.num_samples, cfg["seed"], epoch, self.rank, self.world,
                                self.train)
        if self.train:  # MindSpore's advice for SKIP with shards: concatenate a padding set
            data = (self._decoded(indices).map(_tag(0), "label", ["label", "padding"]) +
                    self._decoded(indices).map(_tag(1), "label", ["label", "padding"]))
            data = data.project(["image", "label", "padding"])
        else:
            data = self._decoded(indices)
        data = data.batch(cfg["batch_size"], drop_remainder=self.train)
        if self.train and (cfg["mixup"] > 0 or cfg["cutmix"] > 0):
            data = data.map([T.OneHot(cfg["num_classes"]), T.TypeCast(ms.float32)], "label")
            mixers = []
            if cfg["mixup"] > 0:
                mixers.append(V.MixUpBatch(cfg["mixup"]))
            if cfg["cutmix"] > 0:
                mixers.append(V.CutMixBatch(V.ImageBatchFormat.NCHW, cfg["cutmix"]))
            mix = mixers[0] if len(mixers) == 1 else T.RandomChoice(mixers)
            data = data.map(mix, ["image", "label"])
        return data

    def _decoded(self, indices):
        # the transforms right after the reader: its errors then name the file
        return self._folder(sampler=ds.SubsetSampler(indices)).map(
            self.transforms(), "image", num_parallel_workers=self.cfg["num_workers"])

    def _folder(self, **kwargs):
        return ds.ImageFolderDataset(os.path.join(self.root, self.split),
                                     extensions=list(FOLDER_EXTENSIONS), **kwargs)

    def batches(self, epoch, **iterator_args):
        """Iterate epoch(epoch) (evaluation: every image of the shard once, a short last
        batch); a sample the pipeline cannot read (with skip_bad_images false) becomes a
        DataError naming the file."""
        iterator = self.epoch(epoch).create_tuple_iterator(num_epochs=1, **iterator_args)
        yield from _named_errors(iterator)

    def train_batches(self, epoch):
        """Exactly steps_per_epoch (images, labels) batches of the training split. Images
        the pipeline skips are made up from the start of the shard; afterwards the rest of
        the shard is read so that `self.skipped` counts this rank's unreadable images."""
        iterator = self.epoch(epoch).create_tuple_iterator(num_epochs=1)
        batches = _named_errors(iterator)
        delivered = 0
        for _ in range(self.steps_per_epoch):
            try:
                images, labels, padding = next(batches)
            except StopIteration:
                raise DataError(f"rank {self.rank}: its shard of {self.root}/{self.split} "
                                f"({len(self.indices)} images) holds too many unreadable "
                                f"images to fill {self.steps_per_epoch} batches even read "
                                "twice (python -m mindspore_acmix.data.image_check FOLDER "
                                "lists them)") from None
            delivered += int((padding.asnumpy() == 0).sum())
            yield images, labels
        for _, _, padding in batches:
            padding = padding.asnumpy()
            delivered += int((padding == 0).sum())
            if padding.any():
                break
        iterator.stop()
        self.skipped = len(self.indices) - delivered


def _named_errors(iterator):
    """`iterator`'s batches, a pipeline error about an image turned into a DataError."""
    try:
        yield from iterator
    except RuntimeError as exc:
        error = pipeline_error(exc)
        if error is None:
            raise
        raise DataError(f"{error} (set skip_bad_images: true to skip such files)") from None
