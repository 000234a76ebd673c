"""RetinaNet's loss on targets assigned in the data pipeline (anchors.image_targets)."""
import mindspore as ms
from mindspore import nn, ops


def flatten_outputs(outputs, k):
    """Per-level (B, A * k, h, w) head outputs -> (B, N, k) in the anchors' order (location
    major, then anchor), levels concatenated."""
    flat = []
    for out in outputs:
        b = out.shape[0]
        flat.append(out.transpose(0, 2, 3, 1).reshape(b, -1, k))
    return ops.concat(flat, 1)


class DetectionLoss(nn.Cell):
    """mmdet RetinaHead.loss: sigmoid focal loss (alpha 0.25, gamma 2) over every anchor not
    ignored plus L1 on the deltas of the positives, each summed and divided by the number of
    positives, counting at least one per image (mmdet 2.x's num_total_samples). The targets
    (B, N, 5) hold [label, dx, dy, dw, dh]: label a class, num_classes (background) or
    negative (ignored). Computes in float32 whatever the network's dtype."""

    def __init__(self, num_classes, alpha=0.25, gamma=2.0, bbox_weight=1.0):
        super().__init__()
        self.num_classes, self.alpha, self.gamma = num_classes, alpha, gamma
        self.bbox_weight = bbox_weight

    def construct(self, outputs, targets):
        cls_scores, bbox_preds = outputs
        logits = flatten_outputs(cls_scores, self.num_classes).astype(ms.float32)
        deltas = flatten_outputs(bbox_preds, 4).astype(ms.float32)
        labels = targets[:, :, 0]
        pos = ops.logical_and(labels >= 0, labels < self.num_classes).astype(ms.float32)
        valid = (labels >= 0).astype(ms.float32)
        onehot = ops.one_hot(ops.clip(labels, 0, self.num_classes - 1).astype(ms.int32),
                             self.num_classes, ms.Tensor(1.0, ms.float32),
                             ms.Tensor(0.0, ms.float32)) * pos[..., None]
        normaliser = ops.maximum(pos.sum(1), 1.0).sum()
        loss_cls = (focal_loss(logits, onehot, self.alpha, self.gamma)
                    * valid[..., None]).sum() / normaliser
        loss_bbox = (ops.abs(deltas - targets[:, :, 1:]) * pos[..., None]).sum() / normaliser
        return loss_cls + self.bbox_weight * loss_bbox


def focal_loss(logits, onehot, alpha, gamma):
    """Element-wise sigmoid focal loss (mmdet py_sigmoid_focal_loss): binary cross-entropy
    weighted by (alpha t + (1 - alpha)(1 - t)) * |t - sigmoid(x)| ** gamma."""
    p = ops.sigmoid(logits)
    pt = (1 - p) * onehot + p * (1 - onehot)
    weight = (alpha * onehot + (1 - alpha) * (1 - onehot)) * ops.pow(pt, gamma)
    # log(1 + exp(-|x|)) + max(x, 0) - x t: the numerically stable BCE with logits
    bce = ops.maximum(logits, 0.0) - logits * onehot + ops.log1p(ops.exp(-ops.abs(logits)))
    return bce * weight
