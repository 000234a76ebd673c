"""What a run tells its user: a live progress line, metrics.jsonl and a PNG of the curves."""
import json
import os
import sys
import time

from .. import atomic


class Progress:
    """A live line (epoch, step, loss, lr, images/s, ETA) at the steps the trainer reads
    back (every log_interval steps and the last of an epoch): rewritten in place on a
    terminal, one line each otherwise.

    images/s is the training throughput since the epoch's first step (that step also
    compiles the graph and starts the data pipeline); metrics.jsonl records the same figure.
    The ETA covers the remaining steps and the remaining validations: the last one measured,
    or before any, the validation images at three times the training rate (a forward pass
    is about a third of a training step)."""

    def __init__(self, cfg, steps_per_epoch, world, log=print, val_samples=0):
        self.cfg, self.steps, self.world, self.log = cfg, steps_per_epoch, world, log
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
        line = (f"epoch {epoch + 1}/{self.cfg['epochs']} step {step}/{self.steps} "
                f"loss {loss:.4f} lr {lr:.3e} {self.rate:.1f} img/s ETA "
                f"{format_seconds(self.eta(epoch, step)) if self.rate else '-'}")
        if self.tty:
            print("\r" + line, end="", flush=True)
        else:
            self.log(line)

    def eta(self, epoch, step):
        """Seconds left after `step` of `epoch` (0-based epoch, 1-based step)."""
        steps_left = (self.cfg["epochs"] - epoch - 1) * self.steps + (self.steps - step)
        train = steps_left * self.cfg["batch_size"] * self.world / self.rate
        val = self.val_seconds
        if val is None:
            val = self.val_samples / (3 * self.rate)
        return train + (self.cfg["epochs"] - epoch) * val

    def end_epoch(self, record):
        self.val_seconds = record["val_time_s"]
        if self.tty:
            print()
        self.log(f"epoch {record['epoch']}/{self.cfg['epochs']}: train loss "
                 f"{record['train_loss']:.4f}, val top-1 {record['val_top1']:.4f}, top-5 "
                 f"{record['val_top5']:.4f}, loss {record['val_loss']:.4f} "
                 f"({record['epoch_time_s']:.1f} s)")


def format_seconds(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def run_title(cfg):
    """What ran on what, for the figures: "acmix_resnet_tiny on digits", or on the data
    folder's name ("swin_acmix_tiny on imagenet")."""
    data = cfg["dataset"]
    if data == "imagefolder":
        data = os.path.basename(os.path.normpath(os.path.abspath(cfg["data_dir"])))
    return f"{cfg['model']} on {data}"


class MetricsLog:
    """Per-epoch records in metrics.jsonl (one JSON object a line) and curves.png, titled
    `title` (what ran on what, e.g. "acmix_resnet_tiny on digits")."""

    def __init__(self, out, title=""):
        self.path = os.path.join(out, "metrics.jsonl")
        self.plot_path = os.path.join(out, "curves.png")
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
                if isinstance(record, dict) and isinstance(record.get("epoch"), int):
                    records.append(record)
        return records

    def append(self, record):
        # a resumed run rewrites the epochs it repeats, so the file holds each epoch once
        kept = [r for r in self.records() if r["epoch"] < record["epoch"]] + [record]
        atomic.write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        save_figure(curves_figure(kept, self.title), self.plot_path)


# Validation keys that are bookkeeping, not metrics (a key naming one of these words)
NOT_METRICS = ("loss", "time", "samples", "skipped")


def curve_keys(records):
    """(loss keys, metric keys) found in the records, in first-seen order: every key ending
    in a loss (train_loss, val_loss, val_loss_ema) and every other val_* key that is not
    bookkeeping (val_top1, val_top5_ema, a segmentation run's val_mIoU). Metrics are
    fractions in [0, 1]."""
    keys = list(dict.fromkeys(k for r in records for k in r))
    losses = [k for k in keys if "loss" in k]
    metrics = [k for k in keys if k.startswith("val_") and not any(w in k for w in NOT_METRICS)]
    return losses, metrics


def curve_label(key):
    """"val_top1_ema" -> "val top-1 (EMA)"."""
    ema = key.endswith("_ema")
    words = key[:-len("_ema")] if ema else key
    words = words.replace("top1", "top-1").replace("top5", "top-5").replace("_", " ")
    return words + (" (EMA)" if ema else "")


def curves_figure(records, title="", x="epoch"):
    """Losses (left) and validation metrics in percent (right) against `x` (a record key
    holding whole numbers: epoch, or a run's iteration), with integer ticks; the legend
    gives each metric's best value."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    losses, metrics = curve_keys(records)
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 4.2))
    markers = "os^vD<>"
    xs = sorted({r[x] for r in records})
    # half a step of room each side: the first and last points sit inside the frame
    pad = 0.5 * min((b - a for a, b in zip(xs, xs[1:])), default=1)

    def draw(ax, keys, scale):
        tops = [0.0]
        for i, key in enumerate(keys):
            points = [(r[x], r[key] * scale) for r in records if r.get(key) is not None]
            if not points:
                continue
            tops.append(max(v for _, v in points))
            best = "" if "loss" in key else f" (best {tops[-1]:.1f}%)"
            style = markers[i % len(markers)] + "-" if len(points) <= 30 else "-"  # else a smear
            ax.plot(*zip(*points), style, label=curve_label(key) + best)
        ax.set_xlabel(x)
        if len(xs) <= 15:  # a tick at every point (MaxNLocator puts 0.5s on a short run)
            ax.set_xticks(xs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if xs:
            ax.set_xlim(xs[0] - pad, xs[-1] + pad)
        ax.grid(alpha=0.3)
        if keys:
            ax.legend(fontsize=8)
        return max(tops)

    ax_loss.set_ylim(0, 1.08 * draw(ax_loss, losses, 1.0) or 1.0)  # the largest loss inside
    ax_loss.set_ylabel("loss")
    draw(ax_metric, metrics, 100.0)
    ax_metric.set_ylabel("validation (%)")
    ax_metric.set_ylim(0, 104)  # 100% stays inside the frame, markers included
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
