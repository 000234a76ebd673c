"""The built-in segmentation data: scikit-learn's bundled 8x8 digits placed on 64x64
canvases, written once (fixed seed) as a segmentation folder (`images/{train,val}/*.png`,
`masks/{train,val}/*.png`) beside the classification digits in the user cache.

Each canvas holds 1-4 digits, each scaled 2-4x, at random non-overlapping places, in a random
colour over a noisy, smoothly shaded background. Mask: 0 background, digit d is d + 1 (11
classes); the anti-aliased rim of a digit (neither clearly stroke nor clearly background) is
255, ignored by the loss and the metric. Validation canvases use only digit images that no
training canvas uses (the classification digits' stratified split).
"""
import os

import numpy as np

from ..cache import cache_root
from .digits import stratified_split, write_tree_once

VERSION = "v1"  # bump when the canvases change, so stale caches are not reused
CANVAS = 64
SCALES = (2, 3, 4)  # an 8x8 digit becomes 16, 24 or 32 pixels wide
MAX_DIGITS = 4
COUNTS = {"train": 2000, "val": 200}
SEED = 0
IGNORE_INDEX = 255
# the upscaled stroke intensity (0-1) at or above which a pixel is the digit, and at or below
# which it is background; in between it is an anti-aliased edge and ignored
STROKE, BACKGROUND = 0.5, 0.15
CLASS_NAMES = ["background"] + [f"digit {d}" for d in range(10)]


def default_root():
    return cache_root(f"digit-canvases-{VERSION}")


def _background(rng):
    """A dark, smoothly shaded, noisy RGB background (floats in 0-1)."""
    yy, xx = np.mgrid[0:CANVAS, 0:CANVAS] / CANVAS
    base = rng.uniform(0.0, 0.3, 3)
    slope = rng.uniform(-0.15, 0.15, (2, 3))
    shade = base + yy[..., None] * slope[0] + xx[..., None] * slope[1]
    return np.clip(shade + rng.normal(0.0, 0.06, (CANVAS, CANVAS, 3)), 0.0, 1.0)


def _place(rng, sizes):
    """Top-left corners of non-overlapping boxes of the given sizes (a box that finds no
    free place in 50 tries is dropped)."""
    boxes = []
    for size in sizes:
        for _ in range(50):
            y, x = rng.integers(0, CANVAS - size + 1, 2)
            if all(y + size <= by or by + bs <= y or x + size <= bx or bx + bs <= x
                   for by, bx, bs in boxes):
                boxes.append((int(y), int(x), size))
                break
    return boxes


def render_canvas(rng, digit_images, digit_labels, pool, placed=None):
    """(RGB uint8 image, uint8 mask) of one canvas drawn from the digit indices `pool`;
    `placed`, a list, receives each digit's (y, x, size, digit) (data/digit_boxes.py)."""
    from PIL import Image

    image = _background(rng)
    mask = np.zeros((CANVAS, CANVAS), np.uint8)
    count = int(rng.integers(1, MAX_DIGITS + 1))
    sizes = sorted((8 * int(rng.choice(SCALES)) for _ in range(count)), reverse=True)
    for y, x, size in _place(rng, sizes):
        i = int(rng.choice(pool))
        stroke = np.asarray(Image.fromarray(digit_images[i]).resize(
            (size, size), Image.BILINEAR), np.float32) / 255.0
        colour = rng.uniform(0.55, 1.0, 3)
        region = image[y:y + size, x:x + size]
        region[:] = region * (1 - stroke[..., None]) + colour * stroke[..., None]
        label = np.where(stroke >= STROKE, digit_labels[i] + 1,
                         np.where(stroke <= BACKGROUND, 0, IGNORE_INDEX))
        # a later digit never overlaps an earlier one, so the box's mask is its own
        mask[y:y + size, x:x + size] = label
        if placed is not None:
            placed.append((y, x, size, int(digit_labels[i])))
    return (image * 255).round().astype(np.uint8), mask


def generate(split, count, seed=SEED, placements=None):
    """The canvases of one split as a list of (image, mask): the same for the same seed;
    `placements`, a list, receives each canvas's list of (y, x, size, digit)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    train, val = stratified_split(digits.target)
    pool = train if split == "train" else val
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    canvases = []
    for _ in range(count):
        placed = []
        canvases.append(render_canvas(rng, images, digits.target, pool, placed))
        if placements is not None:
            placements.append(placed)
    return canvases


def ensure_digit_canvases(root=None):
    """The canvases' folder root, written on first use (into a temporary folder renamed into
    place, so an interrupted first run never leaves a half-written tree)."""
    from PIL import Image

    root = root or default_root()
    if os.path.isfile(os.path.join(root, "COMPLETE")):
        return root

    def write(tmp):
        for split, count in COUNTS.items():
            for kind in ("images", "masks"):
                os.makedirs(os.path.join(tmp, kind, split))
            for n, (image, mask) in enumerate(generate(split, count)):
                Image.fromarray(image).save(os.path.join(tmp, "images", split, f"{n:04d}.png"))
                Image.fromarray(mask).save(os.path.join(tmp, "masks", split, f"{n:04d}.png"))
        return f"sklearn digit canvases {VERSION}: {COUNTS['train']} train, {COUNTS['val']} val"

    return write_tree_once(root, ".digit-canvases-", write)
