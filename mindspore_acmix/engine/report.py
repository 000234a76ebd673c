"""What a run tells its user: a live progress line, metrics.jsonl and a PNG of the curves."""
import json
import os
import sys
import time

from .. import atomic
from .tasks import ClassificationTask


class Progress:
    """A live line (epoch, step, loss, lr, images/s, ETA) at the steps the trainer reads
    back (every log_interval steps and the last of an epoch): rewritten in place on a
    terminal, one line each otherwise.

    images/s is the training throughput since the epoch's first step (that step also
    compiles the graph and starts the data pipeline); metrics.jsonl records the same figure.
    The ETA covers the remaining steps and the remaining validations: the last one measured,
    or before any, the validation images at three times the training rate (a forward pass
    is about a third of a training step)."""

    def __init__(self, cfg, steps_per_epoch, world, log=print, val_samples=0, task=None):
        self.cfg, self.steps, self.world, self.log = cfg, steps_per_epoch, world, log
        self.task = task or ClassificationTask(cfg)
        self.val_samples = val_samples
        self.tty = sys.stdout.isatty()
        self.start, self.start_step = None, 0
        self.rate = 0.0
        self.val_seconds = None

    def begin(self):
        """Time the epoch from here: after its first step, which may compile the graph."""
        self.start, self.start_step = time.time(), 1

    def update(self, epoch, step, loss, lr):
        now = time.time()
        if self.start is None:
            self.begin()
        images = (step - self.start_step) * self.cfg["batch_size"] * self.world
        self.rate = images / max(now - self.start, 1e-9) if images > 0 else 0.0
        line = (f"{self.task.where(epoch, step, self.steps)} "
                f"loss {loss:.4f} lr {lr:.3e} {self.rate:.1f} img/s ETA "
                f"{format_seconds(self.eta(epoch, step)) if self.rate else '-'}")
        if self.tty:
            print("\r" + line, end="", flush=True)
        else:
            self.log(line)

    def eta(self, epoch, step):
        """Seconds left after `step` of `epoch` (0-based epoch, 1-based step)."""
        steps_left = (self.task.periods - epoch - 1) * self.steps + (self.steps - step)
        train = steps_left * self.cfg["batch_size"] * self.world / self.rate
        val = self.val_seconds
        if val is None:
            val = self.val_samples / (3 * self.rate)
        return train + (self.task.periods - epoch) * val

    def end_epoch(self, record):
        self.val_seconds = record["val_time_s"]
        if self.tty:
            print()
        self.log(self.task.summary(record))


def format_seconds(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class MetricsLog:
    """Per-period records in metrics.jsonl (one JSON object a line, counted by the task's
    period_key: epoch or iter) and curves.png."""

    def __init__(self, out, task=None):
        self.path = os.path.join(out, "metrics.jsonl")
        self.plot_path = os.path.join(out, "curves.png")
        self.task = task or ClassificationTask(None)
        self.key = self.task.period_key

    def records(self):
        if not os.path.exists(self.path):
            return []
        records = []
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except ValueError:  # a line mangled by hand or by an older writer: dropped
                    continue
                if isinstance(record, dict) and isinstance(record.get(self.key), int):
                    records.append(record)
        return records

    def append(self, record):
        # a resumed run rewrites the periods it repeats, so the file holds each one once
        kept = [r for r in self.records() if r[self.key] < record[self.key]] + [record]
        atomic.write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        self.plot(kept)

    def plot(self, records):
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        xs = [r[self.key] for r in records]
        losses, scores, score_label = self.task.curves(records)
        fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
        for (label, values), marker in zip(losses, ("o-", "s-")):
            ax_loss.plot(xs, values, marker, label=label)
        ax_loss.set_xlabel(self.key)
        ax_loss.set_ylabel("loss")
        ax_loss.legend()
        for (label, values), marker in zip(scores, ("o-", "s-", "^-")):
            ax_acc.plot(xs, values, marker, label=label)
        ax_acc.set_xlabel(self.key)
        ax_acc.set_ylabel(score_label)
        ax_acc.set_ylim(0, 1)
        ax_acc.legend()
        fig.tight_layout()
        with atomic.writing(self.plot_path) as tmp:
            fig.savefig(tmp, dpi=100)
        plt.close(fig)
