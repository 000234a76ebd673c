"""Training and evaluation loops shared by train.py and eval.py."""
import glob
import math
import os
import re
import shutil
import time

import numpy as np
import mindspore as ms
from mindspore import Tensor, nn, ops

from .. import config as config_lib
from ..checkpoint import CheckpointError, check_state_dict, read_checkpoint, save_checkpoint_atomic
from ..data.pipeline import ImageFolderSplit
from ..factory import create_model
from .distributed import all_gather, all_reduce_sum, init_distributed
from .optim import build_optimizer, lr_schedule, optimizer_state
from .report import MetricsLog, Progress

EPOCH_FILE = re.compile(r"epoch_(\d+)\.ckpt$")


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, for example)."""


def build_network(cfg):
    """The configured model; unknown model_kwargs become a ConfigError."""
    try:
        return create_model(cfg["model"], num_classes=cfg["num_classes"], **cfg["model_kwargs"])
    except TypeError as exc:
        raise config_lib.ConfigError(f"model_kwargs {cfg['model_kwargs']} do not fit "
                                     f"{cfg['model']}: {exc}") from None


def resolve_amp(cfg, device):
    level = cfg["amp_level"]
    if level == "auto":
        return "O0" if device == "CPU" else "O2"
    if level != "O0" and device == "CPU":
        raise config_lib.ConfigError(
            f"amp_level {level} needs Ascend or GPU: MindSpore 2.10 has no dynamic loss scaling "
            "on CPU and fp16 is slower there; use amp_level O0 (or auto) on CPU")
    return level


class TrainStep(nn.Cell):
    """One optimisation step: forward, backward, gradient mean over ranks, optional
    clipping, then the update; with AMP, dynamic loss scaling skips non-finite steps."""

    def __init__(self, net, loss_fn, opt, world, clip_norm, use_loss_scale):
        super().__init__(auto_prefix=False)
        self.net, self.loss_fn, self.opt = net, loss_fn, opt
        self.reducer = nn.DistributedGradReducer(opt.parameters, mean=True) if world > 1 else None
        self.clip_norm = clip_norm
        self.scaler = ms.amp.DynamicLossScaler(2.0 ** 16, 2, 1000) if use_loss_scale else None
        self.grad_fn = ms.value_and_grad(self.forward, None, opt.parameters)

    def forward(self, x, y):
        loss = self.loss_fn(self.net(x).astype(ms.float32), y)
        if self.scaler is not None:
            loss = self.scaler.scale(loss)
        return loss

    def construct(self, x, y):
        loss, grads = self.grad_fn(x, y)
        if self.reducer is not None:
            grads = self.reducer(grads)
        if self.scaler is not None:
            loss = self.scaler.unscale(loss)
            grads = self.scaler.unscale(grads)
            finite = ms.amp.all_finite(grads)
            self.scaler.adjust(finite)
            if not finite:
                return loss
        if self.clip_norm is not None:
            grads = ops.clip_by_global_norm(grads, self.clip_norm)
        self.opt(grads)
        return loss


class Evaluator:
    """Top-1, top-5 and cross-entropy over a split, summed over ranks."""

    def __init__(self, net, split, world):
        self.net, self.split, self.world = net, split, world
        self.forward = ms.jit(net)

    def run(self, epoch=0):
        self.net.set_train(False)
        sums = np.zeros(4)  # top1 hits, top5 hits, loss sum, samples
        bs = self.split.cfg["batch_size"]
        for batch in self.split.epoch(epoch).create_tuple_iterator(num_epochs=1,
                                                                   output_numpy=True):
            images, labels = batch
            n = len(labels)
            if n < bs:  # pad the last batch: one compiled shape for every batch
                images = np.concatenate([images, np.zeros((bs - n,) + images.shape[1:],
                                                          images.dtype)])
            logits = self.forward(Tensor(images)).asnumpy().astype(np.float64)[:n]
            sums += batch_metrics(logits, labels)
        total = all_reduce_sum(sums, self.world)
        n = max(total[3], 1)
        return {"top1": total[0] / n, "top5": total[1] / n, "loss": total[2] / n,
                "num_samples": int(total[3])}


def batch_metrics(logits, labels):
    """[top-1 hits, top-5 hits, summed cross-entropy, count] of one batch (NumPy)."""
    labels = labels.astype(np.int64)
    k = min(5, logits.shape[1])
    topk = np.argsort(-logits, axis=1)[:, :k]
    shifted = logits - logits.max(1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    return np.array([(topk[:, 0] == labels).sum(), (topk == labels[:, None]).any(1).sum(),
                     -log_probs[np.arange(len(labels)), labels].sum(), len(labels)], np.float64)


class Trainer:
    """Builds everything from a resolved config and runs the epochs."""

    def __init__(self, cfg, device, resume=None, stop_after=None, log=print):
        self.cfg, self.device, self.log = cfg, device, log
        self.stop_after = stop_after
        self.rank, self.world = init_distributed()
        self.out = os.path.abspath(cfg["output_dir"])
        self.amp = resolve_amp(cfg, device)
        ms.set_seed(cfg["seed"])  # identical initial weights on every rank
        self.net = build_network(cfg)
        if self.amp != "O0":
            self.net = ms.amp.auto_mixed_precision(self.net, self.amp)
        self.train_split = ImageFolderSplit(cfg, "train", self.rank, self.world)
        self.val_split = ImageFolderSplit(cfg, "val", self.rank, self.world)
        self.steps_per_epoch = self.train_split.steps_per_epoch
        self.lrs = lr_schedule(cfg, self.steps_per_epoch, self.world)
        self.opt = build_optimizer(cfg, self.net, self.lrs)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg["label_smoothing"])
        self.step = ms.jit(TrainStep(self.net, loss_fn, self.opt, self.world,
                                     cfg["clip_grad_norm"], self.amp != "O0"))
        self.evaluator = Evaluator(self.net, self.val_split, self.world)
        self.start_epoch, self.best_top1 = 0, -1.0
        if self.rank == 0:
            os.makedirs(self.out, exist_ok=True)
            config_lib.save(cfg, os.path.join(self.out, "config.yaml"))
        if resume:
            self._resume(resume)

    # ---------------------------------------------------------------- checkpoints
    def _state_entries(self):
        params = list(self.net.get_parameters()) + optimizer_state(self.opt, self.net)
        return [{"name": p.name, "data": p} for p in params]

    def _save(self, epoch, metrics):
        if self.rank != 0:
            return
        meta = {"epoch": epoch, "best_top1": float(self.best_top1), "model": self.cfg["model"],
                "num_classes": self.cfg["num_classes"]}
        path = save_checkpoint_atomic(self._state_entries(),
                                      os.path.join(self.out, f"epoch_{epoch:04d}.ckpt"), meta)
        atomic_copy(path, os.path.join(self.out, "last.ckpt"))
        if metrics["top1"] >= self.best_top1:
            atomic_copy(path, os.path.join(self.out, "best.ckpt"))
        for old in epoch_checkpoints(self.out)[self.cfg["keep_checkpoints"]:]:
            os.remove(old)

    def _resume(self, resume):
        path = resume if resume != "auto" else newest_valid_checkpoint(self.out, self.log)
        if path is None:
            self.log(f"resume auto: no checkpoint in {self.out}, starting from scratch")
            return
        params = read_checkpoint(path)
        check_state_dict(self.net, params, f"checkpoint {path}")
        state = optimizer_state(self.opt, self.net)
        missing = [p.name for p in state if p.name not in params]
        if missing or "epoch" not in params:
            raise CheckpointError(f"checkpoint {path} holds no optimizer state or epoch "
                                  f"(missing {', '.join(missing[:3]) or 'epoch'}): it cannot "
                                  "resume training; use it with eval.py or as a starting point")
        targets = list(self.net.get_parameters()) + state
        for p in targets:
            if tuple(params[p.name].shape) != tuple(p.shape):
                raise CheckpointError(f"checkpoint {path}: {p.name} has shape "
                                      f"{tuple(params[p.name].shape)}, expected {tuple(p.shape)}")
            p.set_data(Tensor(params[p.name].asnumpy(), p.dtype))
        self.start_epoch = int(params["epoch"].asnumpy())
        self.best_top1 = float(params["best_top1"].asnumpy()) if "best_top1" in params else -1.0
        self.log(f"resumed from {path}: {self.start_epoch} of {self.cfg['epochs']} epochs done")

    # ---------------------------------------------------------------- loops
    def train_epoch(self, epoch, progress):
        self.net.set_train(True)
        losses, seen = [], 0
        split = self.train_split
        split.counter.count = 0
        for i, (images, labels) in enumerate(split.epoch(epoch).create_tuple_iterator(
                num_epochs=1)):
            loss = float(self.step(images, labels).asnumpy())
            global_step = epoch * self.steps_per_epoch + i
            if not math.isfinite(loss):
                raise TrainingError(f"the loss became {loss} at epoch {epoch + 1}, step {i + 1}; "
                                    "the last good checkpoint is kept in "
                                    f"{self.out} (lower the lr or enable clip_grad_norm)")
            losses.append(loss)
            seen += images.shape[0]
            progress.update(epoch, i + 1, loss, float(self.lrs[min(global_step,
                                                                   len(self.lrs) - 1)]))
        skipped = split.expected_samples() - split.counter.count
        return float(np.mean(losses)) if losses else float("nan"), seen, skipped

    def fit(self):
        cfg = self.cfg
        if self.start_epoch >= cfg["epochs"]:
            self.log(f"all {cfg['epochs']} epochs are already done in {self.out}")
            return self.best_top1
        metrics_log = MetricsLog(self.out) if self.rank == 0 else None
        progress = Progress(cfg, self.steps_per_epoch, self.world, self.log)
        self.log(f"training {cfg['model']} on {self.device} ({self.world} device(s), amp "
                 f"{self.amp}): {self.train_split.num_samples} train / "
                 f"{self.val_split.num_samples} val images, {self.steps_per_epoch} steps per "
                 f"epoch, epochs {self.start_epoch + 1}..{cfg['epochs']}")
        done_this_run = 0
        for epoch in range(self.start_epoch, cfg["epochs"]):
            start = time.time()
            train_loss, seen, skipped = self.train_epoch(epoch, progress)
            train_time = time.time() - start
            metrics = self.evaluator.run(epoch)
            self.best_top1 = max(self.best_top1, metrics["top1"])
            self.check_ranks_in_sync()
            record = {"epoch": epoch + 1, "train_loss": train_loss, "val_top1": metrics["top1"],
                      "val_top5": metrics["top5"], "val_loss": metrics["loss"],
                      "val_samples": metrics["num_samples"],
                      "lr": float(self.lrs[min((epoch + 1) * self.steps_per_epoch,
                                               len(self.lrs)) - 1]),
                      "images_per_s": seen * self.world / max(train_time, 1e-9),
                      "epoch_time_s": time.time() - start, "skipped_images": skipped}
            progress.end_epoch(record)
            if skipped:
                self.log(f"epoch {epoch + 1}: skipped {skipped} unreadable image(s)")
            self._save(epoch + 1, metrics)
            if metrics_log is not None:
                metrics_log.append(record)
            done_this_run += 1
            if self.stop_after is not None and done_this_run >= self.stop_after:
                self.log(f"stopping after {done_this_run} epoch(s) as asked; resume with "
                         f"--resume auto --output-dir {cfg['output_dir']}")
                break
        return self.best_top1

    def check_ranks_in_sync(self):
        """Data parallelism must keep the trainable weights identical on every rank; a
        fingerprint of them is compared after each epoch so a desync fails loudly."""
        if self.world == 1:
            return
        prints = all_gather([float(np.abs(p.asnumpy()).sum())
                             for p in self.net.trainable_params()], self.world)
        spread = float(np.abs(prints - prints[0]).max())
        if spread > 0:
            raise TrainingError(f"weights differ between ranks after an epoch (max fingerprint "
                                f"difference {spread:g}): gradients are not being averaged")
        self.log(f"weights identical on all {self.world} ranks")


def atomic_copy(src, dst):
    tmp = f"{dst}.tmp-{os.getpid()}"
    shutil.copyfile(src, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, dst)


def epoch_checkpoints(out):
    """epoch_*.ckpt files in `out`, newest first."""
    found = [p for p in glob.glob(os.path.join(out, "epoch_*.ckpt")) if EPOCH_FILE.search(p)]
    return sorted(found, key=lambda p: int(EPOCH_FILE.search(p).group(1)), reverse=True)


def newest_valid_checkpoint(out, log=print):
    """The newest readable training checkpoint in `out`; corrupt ones are named and skipped."""
    candidates = []
    for path in epoch_checkpoints(out) + [os.path.join(out, "last.ckpt")]:
        if not os.path.exists(path):
            continue
        try:
            params = read_checkpoint(path)
        except CheckpointError as exc:
            log(f"warning: skipping {path}: {exc}")
            continue
        if "epoch" in params:
            candidates.append((int(params["epoch"].asnumpy()), path))
    return max(candidates)[1] if candidates else None
