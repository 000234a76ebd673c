"""Test harness for the msrun workers of tests/test_distributed.py (on PYTHONPATH only there;
active in a process that msrun started as a worker and that has ACMIX_HARNESS_OUT set).

- dynamic loss scaling on CPU (amp O2, which the config refuses on CPU), from a scale of 1 so
  that no step overflows by itself: the overflow path;
- a non-finite image in rank 1's 3rd batch of epoch 1: only that rank's gradients overflow;
- each rank's batches (labels), step losses and overflow flags, skipped-image count and the
  optimizer's step counter written to ACMIX_HARNESS_OUT/rank_<r>.json after every epoch.
"""
import os

if os.environ.get("ACMIX_HARNESS_OUT") and os.environ.get("MS_ROLE") == "MS_WORKER":
    import json

    import numpy as np
    from mindspore import Tensor

    from mindspore_acmix.data import pipeline
    from mindspore_acmix.engine import trainer

    OUT = os.environ["ACMIX_HARNESS_OUT"]
    INF_RANK, INF_EPOCH, INF_STEP = 1, 0, 2
    record = {}
    trainer.resolve_amp = lambda cfg, device: "O2"
    real_batches = pipeline.ImageFolderSplit.train_batches
    real_read = trainer.Trainer._read_window
    real_epoch = trainer.Trainer.train_epoch
    real_build = trainer.Trainer._build

    def _build(self, resume):
        real_build(self, resume)
        self.train_step.scaler.scale_value.set_data(Tensor(np.float32(1.0)))

    def train_batches(self, epoch):
        seen = record.setdefault(epoch, {})
        seen["labels"] = []
        for i, (images, labels) in enumerate(real_batches(self, epoch)):
            if (self.rank, epoch, i) == (INF_RANK, INF_EPOCH, INF_STEP):
                poisoned = images.asnumpy().copy()
                poisoned[0, 0, 0, 0] = np.inf
                images = Tensor(poisoned)
            seen["labels"].append(labels.asnumpy().tolist())
            yield images, labels
        seen["skipped"] = self.skipped

    def _read_window(self, window, epoch, *args):
        seen = record.setdefault(epoch, {})
        seen.setdefault("losses", []).extend(float(loss.asnumpy()) for loss, _ in window)
        seen.setdefault("overflows", []).extend(bool(flag.asnumpy()) for _, flag in window)
        return real_read(self, window, epoch, *args)

    def train_epoch(self, epoch, progress):
        result = real_epoch(self, epoch, progress)
        record[epoch]["optimizer_step"] = int(self.opt.global_step.asnumpy().reshape(-1)[0])
        with open(os.path.join(OUT, f"rank_{self.rank}.json"), "w", encoding="utf-8") as fh:
            json.dump(record, fh)
        return result

    pipeline.ImageFolderSplit.train_batches = train_batches
    trainer.Trainer._read_window = _read_window
    trainer.Trainer.train_epoch = train_epoch
    trainer.Trainer._build = _build
