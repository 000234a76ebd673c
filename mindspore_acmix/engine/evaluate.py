"""Evaluation of a network over a data split, summed over ranks."""
import numpy as np
from mindspore import Tensor

from ..runtime import compiled
from .distributed import all_reduce_sum


class Evaluator:
    """Top-1, top-5 and cross-entropy over a split, summed over ranks."""

    def __init__(self, net, split, world):
        self.net, self.split, self.world = net, split, world
        self.forward = compiled(net)

    def run(self, epoch=0):
        self.net.set_train(False)
        sums = np.zeros(4)  # top1 hits, top5 hits, loss sum, samples
        bs = self.split.cfg["batch_size"]
        for images, labels in self.split.batches(epoch, output_numpy=True):
            n = len(labels)
            if n < bs:  # pad the last batch: one compiled shape for every batch
                images = np.concatenate([images, np.zeros((bs - n,) + images.shape[1:],
                                                          images.dtype)])
            logits = self.forward(Tensor(images)).asnumpy().astype(np.float64)[:n]
            sums += batch_metrics(logits, labels)
        total = all_reduce_sum(sums, self.world)
        n = max(total[3], 1)
        return {"top1": total[0] / n, "top5": total[1] / n, "loss": total[2] / n,
                "num_samples": int(total[3]),
                "skipped_images": self.split.num_samples - int(total[3])}


def batch_metrics(logits, labels):
    """[top-1 hits, top-5 hits, summed cross-entropy, count] of one batch (NumPy)."""
    labels = labels.astype(np.int64)
    k = min(5, logits.shape[1])
    topk = np.argsort(-logits, axis=1)[:, :k]
    shifted = logits - logits.max(1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    return np.array([(topk[:, 0] == labels).sum(), (topk == labels[:, None]).any(1).sum(),
                     -log_probs[np.arange(len(labels)), labels].sum(), len(labels)], np.float64)


# validation images whose input, ground truth and prediction predictions.png shows
NUM_EXAMPLES = 4


class SegmentationEvaluator:
    """mIoU, mAcc, aAcc and per-class IoU / Acc of a segmentor over a split, from one
    confusion matrix summed over every image and every rank (metrics.SegmentationMetric),
    with the config's inference mode (whole or slide, optional flip); predictions are
    resized to each label's size before the argmax, as mmsegmentation's rescale. A batch
    shorter than batch_size is padded, so whole mode compiles one shape per image size.
    Also returns the first NUM_EXAMPLES (image, label, prediction) of rank 0's share."""

    def __init__(self, net, split, world):
        from ..segmentation import SegInferencer

        self.net, self.split, self.world, self.cfg = net, split, world, split.cfg
        self.inferencer = SegInferencer.from_config(net, split.cfg)

    def run(self, epoch=0):
        from ..metrics import SegmentationMetric

        self.net.set_train(False)
        cfg = self.cfg
        metric = SegmentationMetric(cfg["num_classes"], cfg["ignore_index"])
        examples, seen, bs = [], 0, cfg["batch_size"]
        for images, labels, _ in self.split.eval_batches():
            n = len(labels)
            if n < bs:
                images = np.concatenate([images, np.zeros((bs - n,) + images.shape[1:],
                                                          images.dtype)])
            preds = self._predict(images, labels)
            for image, label, pred in zip(images, labels, preds):
                metric.update(pred, label)
                if len(examples) < NUM_EXAMPLES:
                    examples.append((image, label, pred))
            seen += n
        # one all-reduce of the confusion matrix and the image count
        total = all_reduce_sum(np.append(metric.confusion.ravel(), seen), self.world).round()
        metric.confusion = total[:-1].astype(np.int64).reshape(metric.confusion.shape)
        result = metric.compute()
        result.update(num_samples=int(total[-1]), examples=examples,
                      skipped_images=self.split.num_samples - int(total[-1]))
        return result

    def _predict(self, images, labels):
        """Class maps of the batch's images at their labels' size (one size a batch)."""
        scores = self.inferencer(images, out_size=labels[0].shape)
        return list(scores[:len(labels)].argmax(1))


class DetectionEvaluator:
    """COCO AP, AP50, AP75, APs/m/l of a detector over a split: each rank decodes its share's
    raw outputs with the shared postprocess (detection.postprocess, as the exported model's
    users do), the detections of every rank are gathered, and COCOeval runs on the whole
    set. Also returns the first NUM_EXAMPLES (image, meta, detections) of rank 0's share."""

    def __init__(self, net, split, world):
        self.net, self.split, self.world = net, split, world
        self.forward = compiled(net)
        self.level_anchors = net.anchors.level_anchors(split.pad_shape)

    def run(self, epoch=0):
        from ..detection import postprocess
        from ..detection.evaluation import coco_metrics, detection_rows

        self.net.set_train(False)
        bs, rows, examples, seen = self.split.cfg["batch_size"], [], [], 0
        for images, metas in self.split.eval_batches():
            n = len(metas)
            if n < bs:  # one compiled shape for every batch
                images = np.concatenate([images, np.zeros((bs - n,) + images.shape[1:],
                                                          images.dtype)])
            cls, reg = self.forward(Tensor(images))
            cls, reg = [c.asnumpy() for c in cls], [r.asnumpy() for r in reg]
            for i, (image_id, img_shape, scale) in enumerate(metas):
                factor = np.array([scale[0], scale[1], scale[0], scale[1]])
                boxes, scores, labels = postprocess(
                    [c[i] for c in cls], [r[i] for r in reg], self.level_anchors, img_shape,
                    factor, self.net.test_cfg)
                rows.append(detection_rows(image_id, boxes, scores, labels))
                if len(examples) < NUM_EXAMPLES:  # boxes on the resized image, as shown
                    record = self.split.by_id[image_id]
                    examples.append((images[i], img_shape, boxes * factor, scores, labels,
                                     record.boxes * factor, record.labels))
            seen += n
        rows = gather_rows(np.concatenate(rows) if rows else np.zeros((0, 7)), self.world)
        result = coco_metrics(self.split.coco, rows, self.split.cat_ids)
        total = int(all_reduce_sum([seen], self.world)[0])
        result.update(num_samples=total, examples=examples,
                      skipped_images=self.split.num_samples - total)
        return result


def gather_rows(rows, world):
    """Every rank's (K_r, 7) detection rows, concatenated (padded to the longest for the
    all-gather, as float32: image ids and labels stay exact below 2 ** 24)."""
    if world == 1:
        return rows
    from .distributed import all_gather

    counts = all_gather([len(rows)], world)[:, 0].astype(int)
    padded = np.zeros((counts.max(), 7), np.float32)
    padded[:len(rows)] = rows
    gathered = all_gather(padded.ravel(), world).reshape(world, -1, 7)
    return np.concatenate([g[:c] for g, c in zip(gathered, counts)]).astype(np.float64)
