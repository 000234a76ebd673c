"""The built-in detection data: the segmentation digit canvases (data/digit_canvases.py) with
one box per digit, the tight box of its mask (stroke and anti-aliased rim), written once as
a COCO-layout folder (`annotations/instances_{train,val}.json`, `{train,val}/*.png`; 10
categories, ids 1-10 for digits 0-9) beside them in the user cache."""
import json
import os

import numpy as np

from ..cache import cache_root
from .digit_canvases import COUNTS, IGNORE_INDEX, VERSION, generate
from .digits import write_tree_once

CATEGORIES = [{"id": d + 1, "name": f"digit {d}"} for d in range(10)]


def digit_box(mask, y, x, size, digit):
    """[x, y, w, h] (COCO) of the digit placed at (y, x, size): the extent of its pixels
    (its class or the ignored rim) inside its square."""
    square = mask[y:y + size, x:x + size]
    rows, cols = np.nonzero((square == digit + 1) | (square == IGNORE_INDEX))
    x1, y1 = x + cols.min(), y + rows.min()
    return [int(x1), int(y1), int(x + cols.max() + 1 - x1), int(y + rows.max() + 1 - y1)]


def annotations(split, count):
    """(images [(file name, RGB uint8)], COCO instances dict) of one split."""
    placements = []
    canvases = generate(split, count, placements=placements)
    images, coco_images, anns = [], [], []
    for n, ((image, mask), placed) in enumerate(zip(canvases, placements)):
        name = f"{n:04d}.png"
        images.append((name, image))
        coco_images.append({"id": n + 1, "file_name": name, "height": int(image.shape[0]),
                            "width": int(image.shape[1])})
        for y, x, size, digit in placed:
            box = digit_box(mask, y, x, size, digit)
            anns.append({"id": len(anns) + 1, "image_id": n + 1, "category_id": digit + 1,
                         "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
    return images, {"images": coco_images, "annotations": anns, "categories": CATEGORIES}


def ensure_digit_boxes(root=None):
    """The folder's root, written on first use (digits.write_tree_once: never half-written)."""
    root = root or cache_root(f"digit-boxes-{VERSION}")
    if os.path.isfile(os.path.join(root, "COMPLETE")):
        return root
    return write_tree_once(root, ".digit-boxes-", _write)


def _write(folder):
    from PIL import Image

    os.makedirs(os.path.join(folder, "annotations"))
    for split, count in COUNTS.items():
        os.makedirs(os.path.join(folder, split))
        images, coco = annotations(split, count)
        for name, image in images:
            Image.fromarray(image).save(os.path.join(folder, split, name))
        with open(os.path.join(folder, "annotations", f"instances_{split}.json"), "w") as fh:
            json.dump(coco, fh)
    return f"sklearn digit canvases with boxes {VERSION}"
