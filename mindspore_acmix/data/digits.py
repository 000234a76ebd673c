"""The built-in default data: scikit-learn's bundled handwritten digits (1,797 real 8x8
images, 10 classes, shipped inside scikit-learn, no download) written once as an
ImageFolder tree of 32x32 RGB PNGs, so that it goes through the same pipeline as ImageNet.
"""
import os
import shutil
import tempfile

import numpy as np

from ..cache import cache_root

VERSION = "v1"  # bump when the tree's content changes, so stale caches are not reused
IMAGE_SIZE = 32
VAL_FRACTION = 0.2
SPLIT_SEED = 0


def default_root():
    return cache_root(f"digits-{VERSION}")


def stratified_split(labels, val_fraction=VAL_FRACTION, seed=SPLIT_SEED):
    """Indices (train, val): the same fraction of every class goes to val."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = int(round(len(idx) * val_fraction))
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return np.sort(train), np.sort(val)


def ensure_digits(root=None):
    """The digits ImageFolder root (train/<class>/, val/<class>/), written on first use.

    The tree is built in a temporary folder beside `root` and renamed into place, so an
    interrupted first run never leaves a half-written tree behind.
    """
    root = root or default_root()
    if os.path.isfile(os.path.join(root, "COMPLETE")):
        return root
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    train, val = stratified_split(digits.target)

    def write(tmp):
        for split, indices in (("train", train), ("val", val)):
            for i in indices:
                folder = os.path.join(tmp, split, str(digits.target[i]))
                os.makedirs(folder, exist_ok=True)
                img = Image.fromarray(images[i], mode="L").resize(
                    (IMAGE_SIZE, IMAGE_SIZE), Image.BICUBIC).convert("RGB")
                img.save(os.path.join(folder, f"{i:04d}.png"))
        return f"sklearn digits {VERSION}: {len(train)} train, {len(val)} val"

    return write_tree_once(root, ".digits-", write)


def write_tree_once(root, prefix, write):
    """Build a data tree with `write(folder)` (which returns the COMPLETE stamp's text) in a
    temporary folder beside `root`, then rename it into place: an interrupted first run never
    leaves a half-written tree, and an incomplete one from an older writer is replaced."""
    parent = os.path.dirname(os.path.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=prefix, dir=parent)
    try:
        stamp = write(tmp)
        with open(os.path.join(tmp, "COMPLETE"), "w") as fh:
            fh.write(stamp + "\n")
        if os.path.isdir(root):
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
    return root
