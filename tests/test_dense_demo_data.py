"""The digits demos' data and figures, cheaply (the fast tier's view of modules that the slow
training runs otherwise reach only from train.py subprocesses)."""
import numpy as np

from mindspore_acmix.data.digit_boxes import CATEGORIES, annotations
from mindspore_acmix.data.digit_canvases import IGNORE_INDEX, generate
from mindspore_acmix.deploy_detection import is_detection_labels
from mindspore_acmix.engine.seg_figures import colourise, denormalise, palette


def test_each_box_is_the_tight_box_of_its_digits_pixels():
    images, coco = annotations("val", 6)
    assert [c["id"] for c in CATEGORIES] == list(range(1, 11))
    assert len(images) == len(coco["images"]) == 6
    masks = [mask for _, mask in generate("val", 6)]
    for ann in coco["annotations"]:
        mask = masks[ann["image_id"] - 1]
        x, y, w, h = ann["bbox"]
        inside = mask[y:y + h, x:x + w]
        # the digit's own class is inside, touches all four sides (tight), and the box holds
        # no other digit's class
        own = (inside == ann["category_id"]) | (inside == IGNORE_INDEX)
        assert (inside == ann["category_id"]).any()
        assert own[0].any() and own[-1].any() and own[:, 0].any() and own[:, -1].any()
        assert set(np.unique(inside)) <= {0, ann["category_id"], IGNORE_INDEX}
        assert ann["area"] == w * h and ann["iscrowd"] == 0


def test_masks_are_coloured_by_class_and_images_come_back_from_normalisation():
    colours = palette(11)
    assert colours.shape == (11, 3) and (colours[0] == 0).all()
    assert len({tuple(c) for c in colours}) == 11
    label = np.array([[0, 3], [IGNORE_INDEX, 10]])
    out = colourise(label, colours, IGNORE_INDEX)
    assert (out[0, 0] == colours[0]).all() and (out[0, 1] == colours[3]).all()
    assert (out[1, 1] == colours[10]).all() and (out[1, 0] == 255).all()
    rgb = np.arange(12, dtype=np.uint8).reshape(2, 2, 3) * 20
    mean, std = [10.0, 20.0, 30.0], [2.0, 4.0, 8.0]
    normalised = ((rgb - np.float32(mean)) / np.float32(std)).transpose(2, 0, 1)
    assert (denormalise(normalised, mean, std) == rgb).all()


def test_the_310_postprocess_tells_a_detectors_labels_from_a_classifiers():
    assert is_detection_labels({"task": "detection", "images": {}})
    assert not is_detection_labels({"0_a": 0, "1_b": 1})
