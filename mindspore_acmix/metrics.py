"""Semantic segmentation metrics from one confusion matrix (mmsegmentation's
IoU / Acc / aAcc), accumulated over a whole validation set and summed over ranks."""
import numpy as np


class SegmentationMetric:
    """`update(pred, label)` per batch, `compute()` at the end.

    confusion[t, p] counts pixels of true class t predicted p (int64, pixels labelled
    ignore_index left out). IoU_k = C[k,k] / (row_k + col_k - C[k,k]), Acc_k = C[k,k] /
    row_k, aAcc = trace / total; a class absent from both labels and predictions has IoU
    NaN (Acc NaN when absent from the labels) and is left out of mIoU / mAcc, as mmseg's
    nanmean does. Ranks sum their matrices (`merge`, or an all-reduce of `confusion`)."""

    def __init__(self, num_classes, ignore_index=255):
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.confusion = np.zeros((num_classes, num_classes), np.int64)

    def reset(self):
        self.confusion[:] = 0

    def update(self, pred, label):
        pred, label = np.asarray(pred), np.asarray(label)
        if pred.shape != label.shape:
            raise ValueError(f"prediction {pred.shape} and label {label.shape} differ in shape")
        for name, array in (("prediction", pred), ("label", label)):
            if not np.issubdtype(array.dtype, np.integer):
                raise ValueError(f"{name} must hold integer class indices, got {array.dtype}")
        keep = label != self.ignore_index
        pred, label = pred[keep].astype(np.int64), label[keep].astype(np.int64)
        k = self.num_classes
        for name, array in (("label", label), ("prediction", pred)):
            bad = array[(array < 0) | (array >= k)]
            if bad.size:
                raise ValueError(f"{name} holds class {int(bad[0])}, outside [0, {k}) and not "
                                 f"ignore_index {self.ignore_index}")
        self.confusion += np.bincount(label * k + pred, minlength=k * k).reshape(k, k)
        return self

    def merge(self, confusion):
        """Add another rank's (or metric's) confusion matrix."""
        other = np.asarray(getattr(confusion, "confusion", confusion))
        if other.shape != self.confusion.shape:
            raise ValueError(f"confusion matrix of shape {other.shape} cannot merge into "
                             f"{self.confusion.shape}")
        self.confusion += other.astype(np.int64)
        return self

    def compute(self):
        """{"mIoU", "mAcc", "aAcc": fractions in [0, 1] (NaN when nothing was counted),
        "IoU", "Acc": per-class lists (NaN where undefined)}."""
        c = self.confusion.astype(np.float64)
        hits = np.diag(c)
        labelled, predicted = c.sum(axis=1), c.sum(axis=0)
        union = labelled + predicted - hits
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(union > 0, hits / union, np.nan)
            acc = np.where(labelled > 0, hits / labelled, np.nan)
        total = c.sum()
        return {"mIoU": _nanmean(iou), "mAcc": _nanmean(acc),
                "aAcc": float(hits.sum() / total) if total else float("nan"),
                "IoU": iou.tolist(), "Acc": acc.tolist()}


def _nanmean(values):
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")
