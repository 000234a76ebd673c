"""RetinaNet's anchors over a padded input, the training targets of one image (assigned in
the data pipeline, in NumPy) and the shared postprocess (decode, NMS) of raw head outputs."""
import math
from dataclasses import dataclass

import numpy as np

from .boxes import base_anchors, batched_nms, decode, encode, grid_anchors, max_iou_assign, \
    valid_flags

# columns of a target row: the label (a class, num_classes for background, IGNORE), then the
# four encoded deltas
IGNORE = -1


@dataclass(frozen=True)
class AnchorSpec:
    """Anchors of the pyramid levels (mmdet retinanet_r50_fpn_1x: strides 8-128, octave base
    scale 4, 3 scales per octave, ratios 0.5/1/2)."""
    strides: tuple = (8, 16, 32, 64, 128)
    octave_base_scale: float = 4
    scales_per_octave: int = 3
    ratios: tuple = (0.5, 1.0, 2.0)

    @property
    def num_base(self):
        return self.scales_per_octave * len(self.ratios)

    def feat_sizes(self, pad_shape):
        """(h, w) of each level for a padded input (h, w): ceil(size / stride), exact for
        every family at multiples of the largest backbone stride (P6 and P7 are stride-2
        convolutions with padding 1, ceil of the level below)."""
        return [(math.ceil(pad_shape[0] / s), math.ceil(pad_shape[1] / s)) for s in self.strides]

    def level_anchors(self, pad_shape):
        """[(h * w * A, 4) anchors] of each level."""
        return [grid_anchors(base_anchors(s, self.octave_base_scale, self.scales_per_octave,
                                          self.ratios), size, s)
                for s, size in zip(self.strides, self.feat_sizes(pad_shape))]

    def valid(self, pad_shape, img_shape):
        """(N,) flags over all levels' anchors: inside the unpadded image's area."""
        return np.concatenate([valid_flags(size, s, img_shape, self.num_base)
                               for s, size in zip(self.strides, self.feat_sizes(pad_shape))])


@dataclass(frozen=True)
class AssignCfg:
    """mmdet retinanet train_cfg: MaxIoUAssigner(pos 0.5, neg 0.4, min_pos_iou 0)."""
    pos_iou_thr: float = 0.5
    neg_iou_thr: float = 0.4
    min_pos_iou: float = 0.0


@dataclass(frozen=True)
class InferCfg:
    """mmdet retinanet test_cfg: nms_pre 1000 per level, score_thr 0.05, NMS IoU 0.5,
    max_per_img 100."""
    nms_pre: int = 1000
    score_thr: float = 0.05
    nms_iou: float = 0.5
    max_per_img: int = 100


def image_targets(anchors, valid, gt_boxes, gt_labels, num_classes, cfg=AssignCfg()):
    """(N, 5) float32 targets of one image over all anchors: [label, dx, dy, dw, dh]. Label
    is the class of a positive, num_classes for a negative, IGNORE for anchors between the
    thresholds or outside the image (mmdet: they take no loss); deltas are zero but for
    positives."""
    targets = np.zeros((len(anchors), 5), np.float32)
    targets[:, 0] = IGNORE
    inside = anchors[valid]
    assigned = max_iou_assign(inside, gt_boxes, cfg.pos_iou_thr, cfg.neg_iou_thr,
                              cfg.min_pos_iou)
    rows = np.full((len(inside), 5), 0.0, np.float32)
    rows[:, 0] = np.where(assigned == 0, num_classes, IGNORE)
    pos = assigned > 0
    if pos.any():
        gt = assigned[pos] - 1
        rows[pos, 0] = gt_labels[gt]
        rows[pos, 1:] = encode(inside[pos], gt_boxes[gt])
    targets[valid] = rows
    return targets


def flatten_level(output, k):
    """A head output (A * k, H, W) of one image -> (H * W * A, k), the anchors' order."""
    return output.transpose(1, 2, 0).reshape(-1, k)


def postprocess(cls_outs, reg_outs, level_anchors, img_shape, scale_factor=1.0,
                cfg=InferCfg()):
    """Detections of one image from its raw head outputs (per level: (A * C, H, W) class
    logits, (A * 4, H, W) deltas), as mmdet RetinaNet's get_bboxes: per level the nms_pre
    anchors of highest class score, decoded and clipped to img_shape (h, w); then over all
    levels class-wise NMS of the scores above score_thr, the max_per_img best kept; boxes
    divided by scale_factor (back to the original image). Returns (boxes (K, 4), scores
    (K,), labels (K,)), by descending score."""
    num_classes = cls_outs[0].shape[0] // (reg_outs[0].shape[0] // 4)
    all_boxes, all_scores = [], []
    for cls, reg, anchors in zip(cls_outs, reg_outs, level_anchors):
        scores = 1.0 / (1.0 + np.exp(-flatten_level(cls, num_classes).astype(np.float64)))
        deltas = flatten_level(reg, 4).astype(np.float64)
        if 0 < cfg.nms_pre < len(scores):
            top = np.argsort(-scores.max(1), kind="stable")[:cfg.nms_pre]
            scores, deltas, anchors = scores[top], deltas[top], anchors[top]
        all_boxes.append(decode(anchors, deltas, img_shape))
        all_scores.append(scores)
    boxes, scores = np.concatenate(all_boxes), np.concatenate(all_scores)
    # mmdet multiclass_nms: one candidate per (box, class) above the threshold
    idx, labels = np.nonzero(scores > cfg.score_thr)
    boxes, scores = boxes[idx], scores[idx, labels]
    keep = batched_nms(boxes, scores, labels, cfg.nms_iou)[:cfg.max_per_img]
    return boxes[keep] / scale_factor, scores[keep], labels[keep]
