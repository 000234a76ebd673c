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


def run_title(cfg):
    """What ran on what, for the figures: "acmix_resnet_tiny on digits", or on the data
    folder's name ("swin_acmix_tiny on imagenet")."""
    data = cfg["dataset"]
    if data in ("imagefolder", "segfolder") and cfg.get("data_dir"):
        data = os.path.basename(os.path.normpath(os.path.abspath(cfg["data_dir"])))
    return f"{cfg['model']} on {data}"


class MetricsLog:
    """Per-period records in metrics.jsonl (one JSON object a line, counted by the task's
    period_key: epoch or iter) and curves.png, titled `title` (what ran on what, e.g.
    "acmix_resnet_tiny on digits")."""

    def __init__(self, out, task=None, title=""):
        self.path = os.path.join(out, "metrics.jsonl")
        self.plot_path = os.path.join(out, "curves.png")
        self.task = task or ClassificationTask(None)
        self.key = self.task.period_key
        self.title = title

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
        save_figure(curves_figure([r[self.key] for r in kept], *self.task.curves(kept),
                                  title=self.title, x=self.key), self.plot_path)


def curves_figure(xs, losses, scores, score_label, title="", x="epoch"):
    """Losses (left) and validation scores in percent (right) against `x` (whole numbers:
    epoch, or a run's iteration), as a task's curves(records) gives them ([(label,
    values)], scores as fractions), with a tick at every point of a short run; the legend
    gives each score's best value."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(10, 4.2))
    markers = "os^vD<>"
    # half a step of room each side: the first and last points sit inside the frame
    pad = 0.5 * min((b - a for a, b in zip(xs, xs[1:])), default=1)

    def draw(ax, series, scale):
        tops = [0.0]
        for i, (label, values) in enumerate(series):
            points = [(p, v * scale) for p, v in zip(xs, values) if v is not None]
            if not points:
                continue
            tops.append(max(v for _, v in points))
            best = f" (best {tops[-1]:.1f}%)" if scale != 1 else ""
            style = markers[i % len(markers)] + "-" if len(points) <= 30 else "-"  # else a smear
            ax.plot(*zip(*points), style, label=label + best)
        ax.set_xlabel(x)
        if len(xs) <= 15:  # a tick at every point (MaxNLocator puts 0.5s on a short run)
            ax.set_xticks(xs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if xs:
            ax.set_xlim(xs[0] - pad, xs[-1] + pad)
        ax.grid(alpha=0.3)
        if series:
            ax.legend(fontsize=8)
        return max(tops)

    ax_loss.set_ylim(0, 1.08 * draw(ax_loss, losses, 1.0) or 1.0)  # the largest loss inside
    ax_loss.set_ylabel("loss")
    draw(ax_score, scores, 100.0)
    ax_score.set_ylabel(f"{score_label} (%)")
    ax_score.set_ylim(0, 104)  # 100% stays inside the frame, markers included
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_figure(fig, path):
    """Write `fig` as a PNG atomically and free it."""
    import matplotlib.pyplot as plt

    with atomic.writing(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png", bbox_inches="tight")  # nothing cut off
    plt.close(fig)
    return path
