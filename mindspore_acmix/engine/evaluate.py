"""Evaluation of a network over a data split, summed over ranks."""
import mindspore as ms
import numpy as np
from mindspore import Tensor

from ..runtime import jit_level
from .distributed import all_reduce_sum


class Evaluator:
    """Top-1, top-5 and cross-entropy over a split, summed over ranks."""

    def __init__(self, net, split, world):
        self.net, self.split, self.world = net, split, world
        self.forward = ms.jit(net, jit_level=jit_level())

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
