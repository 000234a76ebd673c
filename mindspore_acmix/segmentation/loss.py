"""Pixel cross-entropy with an ignored label, plus the weighted auxiliary head's loss."""
import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops

from .segmentor import AUX_LOSS_WEIGHT


class SegmentationLoss(nn.Cell):
    """`loss(output, labels)`: output is the segmentor's training output, logits
    (B, K, H, W) or (logits, aux_logits); labels are int32 (B, H, W).

    Per pixel -log softmax(logits)[label], 0 where label == ignore_index. Reduced as
    mmsegmentation's CrossEntropyLoss does by default (avg_non_ignore=False): the mean over
    every pixel, ignored ones included, which is what PVT's and Swin's recipes trained
    with; avg_non_ignore=True divides by the non-ignored pixels instead. `class_weight`
    (one number per class, mmseg's CrossEntropyLoss class_weight) multiplies each pixel's
    loss by its class's weight before that mean (mmseg's avg_non_ignore=False divides by
    the pixel count, not by the weights' sum). Computed in float32 (log-softmax of float16
    logits under AMP would lose the small probabilities)."""

    def __init__(self, ignore_index=255, aux_weight=AUX_LOSS_WEIGHT, avg_non_ignore=False,
                 class_weight=None):
        super().__init__()
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise ValueError(f"ignore_index must be an integer, got {ignore_index!r}")
        if isinstance(aux_weight, bool) or not isinstance(aux_weight, (int, float)) \
                or aux_weight < 0:
            raise ValueError(f"aux_weight must be a non-negative number, got {aux_weight!r}")
        self.ignore_index = ignore_index
        self.aux_weight = float(aux_weight)
        self.avg_non_ignore = bool(avg_non_ignore)
        self.class_weight = None
        if class_weight is not None:
            weights = np.asarray(class_weight, np.float32)
            if weights.ndim != 1 or not weights.size or (weights < 0).any():
                raise ValueError(f"class_weight must be non-negative numbers, one per class, "
                                 f"got {class_weight!r}")
            self.class_weight = Tensor(weights)

    def pixel_loss(self, logits, labels):
        labels = labels.astype(ms.int32)
        valid = labels != self.ignore_index
        # ignored pixels pick class 0 and are then zeroed: gather needs an index in range
        picked = ops.where(valid, labels, ops.zeros_like(labels))
        log_probs = ops.log_softmax(logits.astype(ms.float32), axis=1)
        nll = -ops.gather_elements(log_probs, 1, picked.expand_dims(1)).squeeze(1)
        mask = valid.astype(ms.float32)
        if self.class_weight is not None:
            nll = nll * ops.gather(self.class_weight, picked, 0)
        nll = nll * mask
        if self.avg_non_ignore:
            return nll.sum() / ops.maximum(mask.sum(), ops.ones((), ms.float32))
        return nll.mean()

    def construct(self, output, labels):
        if isinstance(output, (tuple, list)):
            return self.pixel_loss(output[0], labels) \
                + self.aux_weight * self.pixel_loss(output[1], labels)
        return self.pixel_loss(output, labels)
