"""What the trainer asks of a task: its network, data splits, loss, learning-rate schedule,
evaluation, the metric that picks best.ckpt, and how a period (an epoch of classification, an
evaluation interval of segmentation) is named, recorded and plotted. The Trainer holds one
task and never branches on the task's name."""
import mindspore as ms
import numpy as np
from mindspore import nn

from ..layers.placement import place_network
from .build import build_network
from .evaluate import DetectionEvaluator, Evaluator, SegmentationEvaluator
from .optim import lr_schedule, poly_schedule, step_schedule, warmup_steps, MAX_WARMUP_FRACTION


class Float32CrossEntropy(nn.Cell):
    """Cross-entropy on float32 logits (the network's output may be float16 under AMP)."""

    def __init__(self, label_smoothing):
        super().__init__()
        self.ce = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def construct(self, logits, labels):
        return self.ce(logits.astype(ms.float32), labels)


class ClassificationTask:
    """Image classification on an ImageFolder tree, in epochs; best by val top-1."""

    best_key, best_label = "top1", "top-1"
    period_key = "epoch"  # metrics.jsonl's counter
    time_key = "epoch_time_s"
    period_plural = "epoch(s)"
    bad_data = ("unreadable train and {val} val image(s) (python -m "
                "mindspore_acmix.data.image_check FOLDER lists them)")

    def __init__(self, cfg, rank=0, world=1, log=print):
        self.cfg, self.rank, self.world, self.log = cfg, rank, world, log

    @property
    def periods(self):
        return self.cfg["epochs"]

    def build_network(self, for_training=True):
        return build_network(self.cfg)

    def splits(self):
        from ..data.pipeline import check_same_classes
        train, val = self.split("train"), self.split("val")
        check_same_classes(train, val)
        return train, val

    def split(self, name):
        from ..data.pipeline import ImageFolderSplit
        return ImageFolderSplit(self.cfg, name, self.rank, self.world)

    def loss_fn(self):
        return Float32CrossEntropy(self.cfg["label_smoothing"])

    def lr_schedule(self, updates_per_period):
        cfg = self.cfg
        warmup, capped = warmup_steps(cfg, updates_per_period)
        if capped and self.rank == 0:
            self.log(f"warm-up shortened to {warmup} step(s) ({warmup / updates_per_period:.2g}"
                     f" epochs): warmup_epochs {cfg['warmup_epochs']:g} is more than "
                     f"{MAX_WARMUP_FRACTION:.0%} of this {cfg['epochs']}-epoch run")
        return lr_schedule(cfg, updates_per_period, self.world)

    def evaluator(self, net, split):
        return Evaluator(net, split, self.world)

    def where(self, period, step, steps):
        """The progress line's position: `step` (1-based) of `period` (0-based)."""
        return f"epoch {period + 1}/{self.periods} step {step}/{steps}"

    def at(self, period, step, steps):
        """A step's place in error messages."""
        return f"epoch {period + 1}, step {step}"

    def within(self, done):
        """Where a run stopped with `done` periods saved."""
        return f"in epoch {done + 1} of {self.periods}"

    def period_name(self, done):
        """The period that ends with `done` periods complete."""
        return f"epoch {done}"

    def total(self):
        return f"{self.periods} epochs"

    def plan(self, start, steps):
        return f"{steps} steps per epoch, epochs {start + 1}..{self.periods}"

    def done(self, done):
        return f"{done} of {self.periods} epochs done"

    def counter(self, period, steps):
        """metrics.jsonl's counter after `period` (0-based)."""
        return period + 1

    def record(self, metrics):
        return {"val_top1": metrics["top1"], "val_top5": metrics["top5"],
                "val_loss": metrics["loss"]}

    def summary(self, record):
        """The end-of-period line of a metrics.jsonl record."""
        return (f"epoch {record['epoch']}/{self.periods}: train loss {record['train_loss']:.4f}, "
                f"val top-1 {record['val_top1']:.4f}, top-5 {record['val_top5']:.4f}, loss "
                f"{record['val_loss']:.4f} ({record['epoch_time_s']:.1f} s)")

    def curves(self, records):
        """(left panel: [(label, values)], right panel: [(label, values)], right label)."""
        return ([("train", [r["train_loss"] for r in records]),
                 ("val", [r["val_loss"] for r in records])],
                [("val top-1", [r["val_top1"] for r in records]),
                 ("val top-5", [r["val_top5"] for r in records])], "accuracy")

    def after_evaluation(self, metrics, out, counter):
        """Figures of an evaluation (rank 0); classification has none beyond the curves."""

    def exportable(self, net, shape):
        """(the cell export.py writes for an input of `shape`, what it outputs)."""
        return net, f"({shape[0]}, {self.cfg['num_classes']}) logits"

    def eval_report(self, metrics, checkpoint):
        """(lines for people, the JSON-ready result) of eval.py."""
        return ([f"{checkpoint}: top-1 {metrics['top1']:.4f}, top-5 {metrics['top5']:.4f}, "
                 f"loss {metrics['loss']:.4f} on {metrics['num_samples']} images"], metrics)


class SegmentationTask:
    """Semantic segmentation on image + mask folders, in iterations evaluated every
    eval_interval; best by val mIoU."""

    best_key = best_label = "mIoU"
    period_key = "iter"
    time_key = "interval_time_s"
    period_plural = "evaluation interval(s)"
    bad_data = "bad train and {val} bad val sample(s) (named above)"

    def __init__(self, cfg, rank=0, world=1, log=print):
        self.cfg, self.rank, self.world, self.log = cfg, rank, world, log
        self.periods = cfg["max_iters"] // cfg["eval_interval"]
        self.class_names = cfg["class_names"] or [str(c) for c in range(cfg["num_classes"])]

    def build_network(self, for_training=True):
        """The segmentor; with its pretrained backbone when built for training."""
        log = self.log if self.rank == 0 else (lambda _: None)
        return build_segmentor(self.cfg, log, pretrained=for_training)

    def splits(self):
        return self.split("train"), self.split("val")

    def split(self, name):
        from ..data.segmentation import SegmentationSplit
        return SegmentationSplit(self.cfg, name, self.rank, self.world, self.log)

    def loss_fn(self):
        from ..segmentation import SegmentationLoss
        return SegmentationLoss(self.cfg["ignore_index"], self.cfg["aux_weight"],
                                class_weight=self.cfg["class_weight"])

    def lr_schedule(self, updates_per_period):
        return poly_schedule(self.cfg, self.world)

    def evaluator(self, net, split):
        return SegmentationEvaluator(net, split, self.world)

    def where(self, period, step, steps):
        return f"iter {period * steps + step}/{self.cfg['max_iters']}"

    def at(self, period, step, steps):
        return f"iteration {period * steps + step}"

    def within(self, done):
        interval = self.cfg["eval_interval"]
        return (f"in iterations {done * interval + 1}-{(done + 1) * interval} of "
                f"{self.cfg['max_iters']}")

    def period_name(self, done):
        return f"iteration {done * self.cfg['eval_interval']}"

    def total(self):
        return f"{self.cfg['max_iters']} iterations"

    def plan(self, start, steps):
        return (f"evaluation every {steps} iterations, iterations {start * steps + 1}.."
                f"{self.cfg['max_iters']}")

    def done(self, done):
        return f"{done * self.cfg['eval_interval']} of {self.cfg['max_iters']} iterations done"

    def counter(self, period, steps):
        return (period + 1) * steps

    def record(self, metrics):
        return {"val_mIoU": metrics["mIoU"], "val_mAcc": metrics["mAcc"],
                "val_aAcc": metrics["aAcc"],
                "val_IoU": [None if np.isnan(v) else v for v in metrics["IoU"]]}

    def summary(self, record):
        return (f"iter {record['iter']}/{self.cfg['max_iters']}: train loss "
                f"{record['train_loss']:.4f}, val mIoU {record['val_mIoU']:.4f}, mAcc "
                f"{record['val_mAcc']:.4f}, aAcc {record['val_aAcc']:.4f} "
                f"({record['interval_time_s']:.1f} s)")

    def curves(self, records):
        return ([("train", [r["train_loss"] for r in records])],
                [(f"val {k}", [r[f"val_{k}"] for r in records]) for k in ("mIoU", "mAcc", "aAcc")],
                "score")  # the figure reads "score (%)"

    def after_evaluation(self, metrics, out, counter):
        from .seg_figures import write_predictions
        write_predictions(metrics["examples"], self.class_names, self.cfg,
                          f"iteration {counter}: val mIoU {metrics['mIoU']:.3f}", out)

    def exportable(self, net, shape):
        return net, f"({shape[0]}, {self.cfg['num_classes']}, {shape[2]}, {shape[3]}) logits"

    def eval_report(self, metrics, checkpoint):
        """The per-class IoU / Acc table and the summary line; the result without the
        example images, NaN (a class in neither labels nor predictions) as null."""
        width = max(len(n) for n in self.class_names + ["class"])
        lines = [f"{'class':<{width}}  {'IoU':>7}  {'Acc':>7}"]
        for name, iou, acc in zip(self.class_names, metrics["IoU"], metrics["Acc"]):
            lines.append(f"{name:<{width}}  {_percent(iou)}  {_percent(acc)}")
        lines.append(f"{checkpoint}: mIoU {metrics['mIoU']:.4f}, mAcc {metrics['mAcc']:.4f}, "
                     f"aAcc {metrics['aAcc']:.4f} on {metrics['num_samples']} images")
        result = {k: v for k, v in metrics.items() if k != "examples"}
        for key in ("IoU", "Acc"):
            result[key] = [None if np.isnan(v) else v for v in metrics[key]]
        return lines, result


def _percent(value):
    return "    -  " if np.isnan(value) else f"{100 * value:6.2f}%"


class DetectionTask(ClassificationTask):
    """Object detection on COCO-layout data, in epochs (mmdet's 1x: step decay at lr_steps,
    linear warm-up over warmup_iters); best by val COCO AP. The splits assign the
    training targets with the detector's anchors, so build_network comes first."""

    best_key, best_label = "AP", "AP"
    bad_data = "bad train and {val} bad val image(s) (named above)"
    METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")

    def __init__(self, cfg, rank=0, world=1, log=print):
        super().__init__(cfg, rank, world, log)
        self.class_names = cfg["class_names"] or [str(c) for c in range(cfg["num_classes"])]
        self.detector = None

    def build_network(self, for_training=True):
        log = self.log if self.rank == 0 else (lambda _: None)
        self.detector = build_detector(self.cfg, log, pretrained=for_training)
        return self.detector

    def splits(self):
        return self.split("train"), self.split("val")

    def split(self, name):
        from ..data.detection import DetectionSplit
        from ..detection import image_targets
        if self.detector is None:
            raise RuntimeError("DetectionTask.split needs build_network first (the anchors)")
        return DetectionSplit(self.cfg, name, self.detector.anchors, self.detector.train_cfg,
                              self.rank, self.world, self.log, assign=image_targets)

    def loss_fn(self):
        from ..detection import DetectionLoss
        return DetectionLoss(self.cfg["num_classes"])

    def lr_schedule(self, updates_per_period):
        return step_schedule(self.cfg, updates_per_period, self.world)

    def evaluator(self, net, split):
        return DetectionEvaluator(net, split, self.world)

    def record(self, metrics):
        return {f"val_{k}": _none_if_nan(metrics[k]) for k in self.METRICS}

    def summary(self, record):
        return (f"epoch {record['epoch']}/{self.periods}: train loss {record['train_loss']:.4f}, "
                + ", ".join(f"val {k} {_fmt(record['val_' + k])}" for k in self.METRICS[:3])
                + f" ({record['epoch_time_s']:.1f} s)")

    def curves(self, records):
        return ([("train", [r["train_loss"] for r in records])],
                [(f"val {k}", [r[f"val_{k}"] for r in records]) for k in self.METRICS[:3]],
                "COCO AP")

    def after_evaluation(self, metrics, out, counter):
        from .det_figures import write_detections
        write_detections(metrics["examples"], self.class_names, self.cfg,
                         f"epoch {counter}: val AP50 {metrics['AP50']:.3f}", out)

    def exportable(self, net, shape):
        from ..detection import FlatOutputs
        levels = len(net.anchors.strides)
        return (FlatOutputs(net), f"{levels} levels' class logits then {levels} levels' box "
                "deltas (decode with mindspore_acmix.detection.postprocess)")

    def eval_report(self, metrics, checkpoint):
        result = {k: _none_if_nan(v) for k, v in metrics.items() if k != "examples"}
        return ([f"{checkpoint}: " + ", ".join(f"{k} {_fmt(result[k])}" for k in self.METRICS)
                 + f" on {metrics['num_samples']} images"], result)


def _none_if_nan(value):
    return None if np.isnan(value) else value


def _fmt(value):
    return "-" if value is None else f"{value:.4f}"


TASKS = {"classification": ClassificationTask, "segmentation": SegmentationTask,
         "detection": DetectionTask}


def make_task(cfg, rank=0, world=1, log=print):
    return TASKS[cfg["task"]](cfg, rank, world, log)


def build_detector(cfg, log=print, pretrained=True):
    """The detector a config describes (backbone `model` with `model_kwargs`, `detector`
    with `detector_kwargs`), placed for the device; with `pretrained`, the config's
    pretrained_backbone loaded strictly into its backbone."""
    from .. import config as config_lib
    from ..detection import create_detector

    try:
        net = create_detector(cfg["model"], head=cfg["detector"], num_classes=cfg["num_classes"],
                              **cfg["detector_kwargs"], **cfg["model_kwargs"])
    except (TypeError, ValueError) as exc:
        raise config_lib.ConfigError(f"detector_kwargs {cfg['detector_kwargs']} / model_kwargs "
                                     f"{cfg['model_kwargs']} do not fit a {cfg['detector']} on "
                                     f"{cfg['model']}: {exc}") from None
    if pretrained and cfg["pretrained_backbone"]:
        load_pretrained_backbone(net.backbone, cfg["pretrained_backbone"], log)
    return place_network(net)


def build_segmentor(cfg, log=print, pretrained=True):
    """The segmentor a config describes (backbone `model` with `model_kwargs`, `head`,
    `aux_head`), implementations placed for the device; with `pretrained`, the config's
    pretrained_backbone loaded strictly into its backbone."""
    from .. import config as config_lib
    from ..segmentation import create_segmentor

    try:
        net = create_segmentor(cfg["model"], head=cfg["head"], num_classes=cfg["num_classes"],
                               aux_head=cfg["aux_head"], **cfg["model_kwargs"])
    except (TypeError, ValueError) as exc:
        raise config_lib.ConfigError(f"model_kwargs {cfg['model_kwargs']} do not fit a "
                                     f"{cfg['head']} segmentor on {cfg['model']}: {exc}") from None
    if pretrained and cfg["pretrained_backbone"]:
        load_pretrained_backbone(net.backbone, cfg["pretrained_backbone"], log)
    return place_network(net)


def load_pretrained_backbone(backbone, path, log=print):
    """checkpoint.load_backbone_checkpoint into a segmentor's backbone, whose parameters are
    named `backbone.*` inside the segmentor: they carry the backbone's own names while it
    loads (those of the classification checkpoint), and their full names again after."""
    from ..checkpoint import load_backbone_checkpoint

    params = list(backbone.get_parameters())
    full = [p.name for p in params]
    prefix = "backbone."
    try:
        for p in params:
            if p.name.startswith(prefix):
                p.name = p.name[len(prefix):]
        load_backbone_checkpoint(backbone, path, log=log)
    finally:
        for p, name in zip(params, full):
            p.name = name
