"""Box geometry of RetinaNet in NumPy, as mmdetection 2.x (the version PVT's detection code
runs) defines it: anchors, IoU, delta coding, max-IoU assignment and NMS. Boxes are
(x1, y1, x2, y2) in pixels, widths are x2 - x1 (no +1)."""
import math

import numpy as np

# mmdet DeltaXYWHBBoxCoder's clamp of the decoded log-size deltas: |log(16 / 1000)|
MAX_RATIO = abs(math.log(16.0 / 1000))


def base_anchors(stride, octave_base_scale=4, scales_per_octave=3, ratios=(0.5, 1.0, 2.0)):
    """(A, 4) anchors of one level centred on (0, 0), ratio-major then scale (mmdet
    AnchorGenerator with base size = stride, center_offset 0): side stride * scale with
    scale = octave_base_scale * 2 ** (i / scales_per_octave), h / w = ratio."""
    scales = octave_base_scale * 2.0 ** (np.arange(scales_per_octave) / scales_per_octave)
    h_ratios = np.sqrt(np.asarray(ratios, np.float64))
    ws = (stride / h_ratios[:, None] * scales[None, :]).ravel()
    hs = (stride * h_ratios[:, None] * scales[None, :]).ravel()
    return np.stack([-0.5 * ws, -0.5 * hs, 0.5 * ws, 0.5 * hs], axis=1)


def grid_anchors(base, feat_size, stride):
    """(H * W * A, 4) anchors of a (H, W) level: location-major (row, then column), then
    anchor, the order of a head's (B, A * K, H, W) output permuted to (B, H, W, A, K)."""
    h, w = feat_size
    ys, xs = np.meshgrid(np.arange(h) * stride, np.arange(w) * stride, indexing="ij")
    shifts = np.stack([xs.ravel(), ys.ravel(), xs.ravel(), ys.ravel()], axis=1)
    return (shifts[:, None, :] + base[None]).reshape(-1, 4)


def valid_flags(feat_size, stride, img_shape, num_base):
    """mmdet's valid flags: anchors at locations inside ceil(img / stride) of the unpadded
    image; RetinaNet (allowed_border -1) trains only on these."""
    h, w = feat_size
    vh, vw = min(math.ceil(img_shape[0] / stride), h), min(math.ceil(img_shape[1] / stride), w)
    flags = np.zeros((h, w), bool)
    flags[:vh, :vw] = True
    return np.repeat(flags.ravel(), num_base)


def iou(boxes1, boxes2, eps=1e-6):
    """(N, M) IoU (mmdet bbox_overlaps, mode iou: the union floored at eps)."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    lt = np.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = np.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    return inter / np.maximum(area1[:, None] + area2[None] - inter, eps)


def encode(anchors, gts, means=(0.0, 0.0, 0.0, 0.0), stds=(1.0, 1.0, 1.0, 1.0)):
    """mmdet DeltaXYWHBBoxCoder.encode: (dx, dy, dw, dh) of `gts` relative to `anchors`,
    then (delta - means) / stds (RetinaNet: means 0, stds 1)."""
    pw, ph = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    px, py = anchors[:, 0] + 0.5 * pw, anchors[:, 1] + 0.5 * ph
    gw, gh = gts[:, 2] - gts[:, 0], gts[:, 3] - gts[:, 1]
    gx, gy = gts[:, 0] + 0.5 * gw, gts[:, 1] + 0.5 * gh
    deltas = np.stack([(gx - px) / pw, (gy - py) / ph, np.log(gw / pw), np.log(gh / ph)], 1)
    return (deltas - np.asarray(means)) / np.asarray(stds)


def decode(anchors, deltas, max_shape=None, means=(0.0, 0.0, 0.0, 0.0),
           stds=(1.0, 1.0, 1.0, 1.0)):
    """mmdet DeltaXYWHBBoxCoder.decode: log-size deltas clamped to +-MAX_RATIO, boxes
    clipped to max_shape (h, w) when given."""
    d = deltas * np.asarray(stds) + np.asarray(means)
    dw, dh = np.clip(d[:, 2], -MAX_RATIO, MAX_RATIO), np.clip(d[:, 3], -MAX_RATIO, MAX_RATIO)
    pw, ph = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    px, py = anchors[:, 0] + 0.5 * pw, anchors[:, 1] + 0.5 * ph
    gw, gh = pw * np.exp(dw), ph * np.exp(dh)
    gx, gy = px + pw * d[:, 0], py + ph * d[:, 1]
    boxes = np.stack([gx - 0.5 * gw, gy - 0.5 * gh, gx + 0.5 * gw, gy + 0.5 * gh], 1)
    if max_shape is not None:
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, max_shape[1])
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, max_shape[0])
    return boxes


def max_iou_assign(anchors, gts, pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0.0):
    """mmdet MaxIoUAssigner (gt_max_assign_all, match_low_quality, no ignore boxes): for each
    anchor -1 (ignored), 0 (negative) or 1 + the index of its ground truth box.
    Negative below neg_iou_thr, positive from pos_iou_thr; then every gt box also takes the
    anchors of its own highest IoU (all of them on a tie) when that IoU >= min_pos_iou."""
    assigned = np.full(len(anchors), -1, np.int64)
    if len(gts) == 0:
        assigned[:] = 0
        return assigned
    overlaps = iou(gts, anchors)  # (G, N), mmdet's orientation
    max_overlaps, argmax = overlaps.max(0), overlaps.argmax(0)
    assigned[(max_overlaps >= 0) & (max_overlaps < neg_iou_thr)] = 0
    pos = max_overlaps >= pos_iou_thr
    assigned[pos] = argmax[pos] + 1
    gt_max = overlaps.max(1)
    for i in range(len(gts)):  # in gt order, so a later gt wins a shared anchor, as mmdet
        if gt_max[i] >= min_pos_iou:
            assigned[overlaps[i] == gt_max[i]] = i + 1
    return assigned


def nms(boxes, scores, iou_thr):
    """Greedy NMS (mmcv nms, offset 0): indices kept, by descending score; a box is dropped
    when its IoU with a kept one is above iou_thr."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        if order.size == 1:
            break
        overlaps = iou(boxes[i:i + 1], boxes[order[1:]])[0]
        order = order[1:][overlaps <= iou_thr]
    return np.asarray(keep, np.int64)


def batched_nms(boxes, scores, labels, iou_thr):
    """Class-wise NMS (mmcv batched_nms): boxes of different labels never suppress each other
    (each class is offset far apart)."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    offsets = labels.astype(np.float64) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_thr)
