"""RetinaNet's pieces against hand-computed values and references: anchors, box coding, the
max-IoU assigner, focal loss (vs PyTorch), NMS, the COCOeval wiring, the COCO reader's
handling of bad annotations, and the detector's outputs on non-square inputs."""
import json
import math

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from mindspore_acmix.detection import AnchorSpec, DetectionLoss, create_detector, image_targets
from mindspore_acmix.detection.anchors import IGNORE, InferCfg, postprocess
from mindspore_acmix.detection.boxes import (MAX_RATIO, base_anchors, batched_nms, decode,
                                             encode, grid_anchors, max_iou_assign, nms)


def test_base_anchors_are_mmdets_retinanet_anchors_at_stride_8():
    # side 8 * 4 * 2 ** (i / 3) with h / w = ratio: e.g. ratio 0.5, scale 4 ->
    # w = 32 * sqrt(2) = 45.2548, h = 32 / sqrt(2) = 22.6274
    a = base_anchors(8)
    s = 32 * 2 ** (np.arange(3) / 3)
    expected_w = np.concatenate([s * math.sqrt(2), s, s / math.sqrt(2)])
    expected_h = np.concatenate([s / math.sqrt(2), s, s * math.sqrt(2)])
    np.testing.assert_allclose(a[:, 2] - a[:, 0], expected_w, rtol=1e-12)
    np.testing.assert_allclose(a[:, 3] - a[:, 1], expected_h, rtol=1e-12)
    np.testing.assert_allclose(a[0], [-22.6274, -11.3137, 22.6274, 11.3137], atol=1e-4)
    np.testing.assert_allclose(a[4], [-20.1587, -20.1587, 20.1587, 20.1587], atol=1e-4)


def test_grid_anchors_are_location_major_and_valid_flags_cover_the_image():
    base = base_anchors(16)
    grid = grid_anchors(base, (2, 3), 16)
    assert grid.shape == (2 * 3 * 9, 4)
    np.testing.assert_allclose(grid[9:18], base + [16, 0, 16, 0])  # next column
    np.testing.assert_allclose(grid[27:36], base + [0, 16, 0, 16])  # next row
    spec = AnchorSpec((16,))
    # image 20 x 33 in a 32 x 48 pad: ceil(20 / 16) = 2 rows, ceil(33 / 16) = 3 columns
    assert spec.valid((32, 48), (20, 33)).sum() == 2 * 3 * 9
    assert spec.valid((32, 48), (16, 16)).reshape(2, 3, 9)[:, :, 0].tolist() == [
        [True, False, False], [False, False, False]]


def test_box_coding_hand_computed_and_clamped():
    anchors = np.array([[0.0, 0.0, 10.0, 10.0]])
    gts = np.array([[5.0, 5.0, 15.0, 25.0]])  # centre (10, 15), size 10 x 20
    deltas = encode(anchors, gts)
    np.testing.assert_allclose(deltas, [[0.5, 1.0, 0.0, math.log(2)]], rtol=1e-12)
    np.testing.assert_allclose(decode(anchors, deltas), gts, rtol=1e-12)
    # dw beyond log(1000 / 16) is clamped; the box is clipped to the (h, w) = (30, 40) image
    big = decode(anchors, np.array([[0.0, 0.0, 10.0, 0.0]]))
    np.testing.assert_allclose(big[0, 2] - big[0, 0], 10 * math.exp(MAX_RATIO), rtol=1e-9)
    np.testing.assert_allclose(decode(anchors, np.array([[0.0, 0.0, 10.0, 0.0]]), (30, 40)),
                               [[0.0, 0.0, 40.0, 10.0]])


def test_max_iou_assigner_on_crafted_boxes():
    gts = np.array([[0, 0, 10, 10], [50, 50, 60, 70], [200, 200, 240, 240]], np.float64)
    anchors = np.array([
        [0, 0, 10, 10],        # IoU 1 with gt 0: positive
        [5, 0, 15, 10],        # 50 / 150 = 0.33 < 0.4: negative
        [0, 0, 10, 8],         # 0.8: positive
        [100, 100, 110, 110],  # no overlap: negative
        [50, 50, 60, 60],      # 100 / 200 = 0.5 with gt 1: positive (>= 0.5)
        [2, 0, 12, 10],        # 80 / 120 = 0.67: positive
        [0, 0, 10, 4.5],       # 0.45: between the thresholds, ignored
        [200, 200, 220, 220],  # 0.25, but gt 2's best anchor: positive (low-quality match)
    ], np.float64)
    assert max_iou_assign(anchors, gts).tolist() == [1, 0, 1, 0, 2, 1, -1, 3]
    assert max_iou_assign(anchors, gts[:0]).tolist() == [0] * 8  # no boxes: all background


def test_image_targets_mark_positives_background_and_the_outside():
    anchors = np.array([[0, 0, 10, 10], [30, 30, 40, 40], [0, 0, 10, 4.5], [60, 60, 70, 70]],
                       np.float64)
    valid = np.array([True, True, True, False])
    # IoUs with the box: 100 / 110 (positive), 0 (negative), 45 / 110 (ignored), outside
    t = image_targets(anchors, valid, np.array([[0, 0, 10, 11]], np.float32),
                      np.array([7]), num_classes=10)
    assert t[:, 0].tolist() == [7, 10, IGNORE, IGNORE]
    np.testing.assert_allclose(t[0, 1:], [0, 0.05, 0, math.log(1.1)], rtol=1e-6)
    assert not t[1:, 1:].any()


def torch_focal_l1(logits, deltas, targets, num_classes):
    """The loss written with PyTorch's binary_cross_entropy_with_logits (mmdet's formula)."""
    import torch
    import torch.nn.functional as F

    logits, deltas, t = (torch.tensor(a, dtype=torch.float64) for a in (logits, deltas, targets))
    labels = t[..., 0].long()
    pos = (labels >= 0) & (labels < num_classes)
    onehot = F.one_hot(labels.clamp(0, num_classes - 1), num_classes).double() * pos[..., None]
    p = logits.sigmoid()
    pt = (1 - p) * onehot + p * (1 - onehot)
    weight = (0.25 * onehot + 0.75 * (1 - onehot)) * pt.pow(2)
    bce = F.binary_cross_entropy_with_logits(logits, onehot, reduction="none")
    avg = pos.sum(1).clamp(min=1).sum()
    cls = (bce * weight * (labels >= 0)[..., None]).sum() / avg
    reg = ((deltas - t[..., 1:]).abs() * pos[..., None]).sum() / avg
    return float(cls + reg)


def test_focal_and_l1_loss_match_pytorch(pynative):
    rng = np.random.default_rng(0)
    c, a, h, w = 3, 2, 2, 3  # 2 anchors a location on one 2 x 3 level
    cls = rng.normal(0, 2, (2, a * c, h, w)).astype(np.float32)
    reg = rng.normal(0, 1, (2, a * 4, h, w)).astype(np.float32)
    targets = np.zeros((2, h * w * a, 5), np.float32)
    targets[..., 0] = rng.choice([-1, 0, 1, 2, 3], (2, h * w * a), p=[.2, .1, .1, .1, .5])
    targets[1, :, 0] = np.where(targets[1, :, 0] < 3, 3, 3)  # image 2: no positive (counts 1)
    targets[..., 1:] = rng.normal(0, 1, (2, h * w * a, 4))
    loss = DetectionLoss(c)(((Tensor(cls),), (Tensor(reg),)), Tensor(targets))
    flat_cls = cls.transpose(0, 2, 3, 1).reshape(2, -1, c)
    flat_reg = reg.transpose(0, 2, 3, 1).reshape(2, -1, 4)
    assert float(loss) == pytest.approx(torch_focal_l1(flat_cls, flat_reg, targets, c),
                                        rel=1e-5)


def test_nms_and_classwise_nms():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 5], [20, 20, 30, 30]],
                     np.float64)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    # box 1: IoU 90 / 110 = 0.82 > 0.5 with box 0, dropped; box 2: 0.5, kept (not above)
    assert nms(boxes, scores, 0.5).tolist() == [0, 2, 3]
    assert batched_nms(boxes, scores, np.array([0, 1, 0, 0]), 0.5).tolist() == [0, 1, 2, 3]


def test_postprocess_keeps_the_confident_box_and_rescales():
    spec = AnchorSpec((8,), octave_base_scale=2, scales_per_octave=1, ratios=(1.0,))
    (anchors,) = spec.level_anchors((16, 16))  # 2 x 2 locations, 16-pixel anchors
    cls = np.full((2, 2, 2), -9.0, np.float32)
    cls[1, 1, 0] = 3.0  # class 1 at location (1, 0): anchor centred at (0, 8)
    reg = np.zeros((4, 2, 2), np.float32)
    boxes, scores, labels = postprocess([cls], [reg], [anchors], (16, 16), 2.0, InferCfg())
    assert labels.tolist() == [1]
    assert scores[0] == pytest.approx(1 / (1 + math.exp(-3)))
    np.testing.assert_allclose(boxes, [[0, 0, 4, 8]])  # clipped to the image, then / 2


def write_coco(path, images, anns, cats=(1, 2)):
    json.dump({"images": [{"id": i, "file_name": f"{i}.png", "height": 100, "width": 120}
                          for i in images],
               "annotations": [{"id": n + 1, "iscrowd": 0, "area": a["bbox"][2] * a["bbox"][3], **a}
                               for n, a in enumerate(anns)],
               "categories": [{"id": c, "name": f"c{c}"} for c in cats]}, open(path, "w"))


def test_cocoeval_wiring_on_a_known_average_precision(tmp_path):
    from mindspore_acmix.data.detection import load_coco
    from mindspore_acmix.detection.evaluation import coco_metrics, detection_rows

    ann = tmp_path / "gt.json"
    write_coco(ann, [1, 2], [dict(image_id=1, category_id=2, bbox=[10, 10, 40, 40]),
                             dict(image_id=2, category_id=1, bbox=[0, 0, 100, 100])])
    coco, cat_ids, _ = load_coco(str(ann), str(tmp_path))
    exact = np.concatenate([detection_rows(1, np.array([[10, 10, 50, 50.]]), np.array([.9]),
                                           np.array([1])),
                            detection_rows(2, np.array([[0, 0, 100, 100.]]), np.array([.8]),
                                           np.array([0]))])
    m = coco_metrics(coco, exact, cat_ids)
    assert m["AP"] == pytest.approx(1.0) and m["AP50"] == pytest.approx(1.0)
    assert math.isnan(m["APs"]) and m["APm"] == pytest.approx(1.0)  # 40x40 is medium
    # a higher-scored false positive before each true box: precision 1/2 at full recall
    fp = detection_rows(1, np.array([[60, 60, 90, 90.]]), np.array([.95]), np.array([1]))
    fp2 = detection_rows(2, np.array([[0, 0, 10, 10.]]), np.array([.99]), np.array([0]))
    assert coco_metrics(coco, np.concatenate([exact, fp, fp2]), cat_ids)["AP"] == \
        pytest.approx(0.5)
    assert coco_metrics(coco, np.zeros((0, 7)), cat_ids)["AP"] == 0.0


def test_coco_reader_names_and_skips_bad_annotations(tmp_path):
    from mindspore_acmix.data.detection import load_coco

    ann = tmp_path / "bad.json"
    write_coco(ann, [1, 2, 3], [
        dict(image_id=1, category_id=1, bbox=[10, 10, 20, 20]),
        dict(image_id=1, category_id=9, bbox=[10, 10, 20, 20]),     # unknown category
        dict(image_id=1, category_id=1, bbox=[10, 10, 0, 20]),      # no area
        dict(image_id=2, category_id=2, bbox=[500, 10, 20, 20]),    # outside the 120 x 100 image
        dict(image_id=2, category_id=2, bbox=[110, 90, 20, 20]),    # partly outside: clipped
        dict(image_id=2, category_id=1, bbox=[0, 0, 50, 50], iscrowd=1),  # crowd: ignored
    ])
    lines = []
    _, cat_ids, records = load_coco(str(ann), str(tmp_path), lines.append)
    assert len(lines) == 3
    assert "1.png (annotation 2): unknown category 9" in lines[0]
    assert "no area" in lines[1] and "2.png (annotation 4)" in lines[2]
    assert [len(r.boxes) for r in records] == [1, 1, 0]  # image 3 has no box and is kept
    np.testing.assert_allclose(records[1].boxes, [[110, 90, 120, 100]])
    assert records[1].labels.tolist() == [1]


@pytest.fixture(scope="module")
def tiny_detector():
    return create_detector("resnet_tiny", num_classes=3, fpn_channels=16, stacked_convs=1,
                           start_level=1, num_outs=4)


def test_detector_levels_and_anchors_on_a_non_square_input(tiny_detector, pynative):
    det = tiny_detector
    assert det.anchors.strides == (2, 4, 8, 16)  # resnet_tiny's strides 2-8, then one extra
    x = Tensor(np.random.default_rng(0).normal(size=(1, 3, 32, 64)).astype(np.float32))
    cls, reg = det(x)
    assert [c.shape[2:] for c in cls] == [tuple(s) for s in det.anchors.feat_sizes((32, 64))]
    assert cls[0].shape[1] == 9 * 3 and reg[0].shape[1] == 9 * 4
    # the prior: every class logit starts near log(0.01 / 0.99)
    assert abs(float(cls[3].asnumpy().mean()) - math.log(0.01 / 0.99)) < 0.05


def test_every_detector_convolution_computes_as_matmuls_on_cpu(tiny_detector):
    """MindSpore's CPU Conv2D is ~1 GMAC/s on the CI's AMD EPYC: RetinaNet's head as nn.Conv2d
    made the digits demo's steps 3-7x slower. Every convolution of the neck and head is a
    SameConv2d, which place_network sets to matmuls on CPU (the native kernel elsewhere)."""
    from mindspore import nn

    from mindspore_acmix.layers.conv import SameConv2d
    from mindspore_acmix.layers.placement import implementations, place_network

    det = tiny_detector
    for part in (det.neck, det.bbox_head):
        convs = [name for name, c in part.cells_and_names() if isinstance(c, nn.Conv2d)]
        plain = [name for name, c in part.cells_and_names()
                 if isinstance(c, nn.Conv2d) and not isinstance(c, SameConv2d)]
        assert convs and not plain, plain
    assert implementations(place_network(det, "CPU"))["convolution"] == ["matmul"]
    assert implementations(place_network(det, "GPU"))["convolution"] == ["native"]
    place_network(det, "CPU")


def test_create_detector_errors_for_people():
    with pytest.raises(ValueError, match="unknown detection head 'fcos'"):
        create_detector("resnet_tiny", head="fcos")
    with pytest.raises(ValueError, match="num_outs 1 is fewer than the 3"):
        create_detector("resnet_tiny", num_outs=1)


@pytest.mark.slow
def test_mindir_parity_on_decoded_boxes(tmp_path):
    """The exported MindIR (flat raw outputs) and the Python model give the same boxes
    through the one postprocess."""
    from mindspore_acmix.deploy import MindIRRunner, export_network, prepare_for_export
    from mindspore_acmix.detection import FlatOutputs, split_outputs

    det = create_detector("resnet_tiny", num_classes=3, fpn_channels=16, stacked_convs=1,
                          num_outs=3, score_thr=0.0, max_per_img=20)
    cell = FlatOutputs(prepare_for_export(det))
    path = export_network(cell, "MINDIR", (1, 3, 32, 64), str(tmp_path / "det"))
    x = np.random.default_rng(1).normal(size=(1, 3, 32, 64)).astype(np.float32)
    anchors = det.anchors.level_anchors((32, 64))

    def boxes(outputs):
        cls, reg = split_outputs(outputs)
        return postprocess([c[0] for c in cls], [r[0] for r in reg], anchors, (30, 60), 1.0,
                           det.test_cfg)

    ours = boxes([o.asnumpy() for o in cell(Tensor(x))])
    theirs = boxes(MindIRRunner(path).outputs(x))
    assert len(ours[0]) == 20
    np.testing.assert_allclose(theirs[0], ours[0], atol=1e-4)
    np.testing.assert_allclose(theirs[1], ours[1], atol=1e-5)
    assert theirs[2].tolist() == ours[2].tolist()
