"""Training and evaluation loops shared by train.py and eval.py."""
import contextlib
import fcntl
import glob
import math
import os
import re
import time

import numpy as np
import mindspore as ms
from mindspore import Tensor, nn, ops

from .. import atomic
from .. import config as config_lib
from ..checkpoint import (CheckpointError, check_state_dict, describe, read_checkpoint,
                          save_checkpoint_atomic)
from ..data.pipeline import ImageFolderSplit, check_same_classes
from ..factory import create_model
from ..layers.placement import describe_implementations, place_network
from ..layers.stochastic import RNG_KEY
from ..runtime import jit_level
from ..tools.rates import write_figure_of_network
from .accumulate import GradAccumulator, updates_per_epoch
from .distributed import (RankMean, all_gather, all_reduce_sum, describe_world_change,
                          init_distributed, step_key)
from .ema import EMA, ema_weights
from .optim import (MAX_WARMUP_FRACTION, build_optimizer, lr_schedule, optimizer_state,
                    scaled_lr, warmup_steps)
from .report import MetricsLog, Progress
from .sync_bn import check_sync_bn, convert_sync_batchnorm

EPOCH_FILE = re.compile(r"epoch_(\d+)\.ckpt$")
# Under dynamic loss scaling a step with non-finite gradients is skipped and the scale
# halved; this many in a row (scale divided by 2**50) means the model itself has diverged.
MAX_CONSECUTIVE_OVERFLOWS = 50


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, for example)."""


class Interrupted(KeyboardInterrupt):
    """Training was stopped by a signal; the message says where and how to continue."""


def build_network(cfg):
    """The configured model, its implementations placed for the current device (see
    layers.placement); unknown model_kwargs become a ConfigError."""
    try:
        return place_network(create_model(cfg["model"], num_classes=cfg["num_classes"],
                                          **cfg["model_kwargs"]))
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
    clipping, then the update. Takes the stochastic layers' key of this rank and step
    (distributed.step_key). Returns (loss, overflow) as device tensors: the loss is the mean
    over ranks; with dynamic loss scaling, a step whose gradients are not finite on any rank
    is skipped on every rank, the scale lowered, and overflow is True."""

    def __init__(self, net, loss_fn, opt, world, clip_norm, use_loss_scale):
        super().__init__(auto_prefix=False)
        self.net, self.loss_fn, self.opt = net, loss_fn, opt
        self.reducer = nn.DistributedGradReducer(opt.parameters, mean=True) if world > 1 else None
        self.rank_mean = RankMean(world) if world > 1 else None
        self.clip_norm = clip_norm
        self.scaler = ms.amp.DynamicLossScaler(2.0 ** 16, 2, 1000) if use_loss_scale else None
        self.grad_fn = ms.value_and_grad(self.forward, None, opt.parameters)
        self.no_overflow = Tensor(0.0, ms.float32)
        self.accumulator = None  # engine/accumulate.py, set by the Trainer
        self.ema = None  # engine/ema.py, set by the Trainer

    def forward(self, x, y):
        loss = self.loss_fn(self.net(x).astype(ms.float32), y)
        if self.scaler is not None:
            loss = self.scaler.scale(loss)
        return loss

    def construct(self, x, y, key):
        x = ops.depend(x, ops.assign(RNG_KEY, key))
        loss, grads = self.grad_fn(x, y)
        if self.scaler is not None:
            loss = self.scaler.unscale(loss)
        if self.accumulator is not None:
            grads, ready = self.accumulator(grads)
            if not ready:  # a micro-batch inside an accumulation cycle: no update yet
                if self.rank_mean is not None:
                    loss, _ = self.rank_mean(loss, self.no_overflow)
                return loss, self.no_overflow > 0
        overflow = self.no_overflow
        if self.scaler is not None:
            grads = self.scaler.unscale(grads)
            # this rank's own verdict (on Ascend a device-local status register) ...
            overflow = ops.logical_not(ms.amp.all_finite(grads)).astype(ms.float32)
        if self.rank_mean is not None:
            # ... shared with every rank in the collective that also averages the loss
            loss, overflow = self.rank_mean(loss, overflow)
        if self.reducer is not None:
            grads = self.reducer(grads)
        if self.scaler is not None:
            finite = overflow == 0
            self.scaler.adjust(finite)
            if not finite:
                return loss, ops.logical_not(finite)
        if self.clip_norm is not None:
            grads = ops.clip_by_global_norm(grads, self.clip_norm)
        self.opt(grads)
        if self.ema is not None:
            self.ema()
        return loss, overflow > 0


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


def run_title(cfg):
    """What ran on what, for the figures: "acmix_resnet_tiny on digits", or on the data
    folder's name ("swin_acmix_tiny on imagenet")."""
    data = cfg["dataset"]
    if data == "imagefolder":
        data = os.path.basename(os.path.normpath(os.path.abspath(cfg["data_dir"])))
    return f"{cfg['model']} on {data}"


class Trainer:
    """Builds everything from a resolved config and runs the epochs."""

    def __init__(self, cfg, device, resume=None, stop_after=None, log=print):
        self.cfg, self.device, self.log = cfg, device, log
        self.stop_after = stop_after
        self.rank, self.world = init_distributed()
        if self.world > 1:  # the launcher names a dead worker by these
            log(f"rank {self.rank} of {self.world}, pid {os.getpid()}")
        self.out = os.path.abspath(cfg["output_dir"])
        self.amp = resolve_amp(cfg, device)
        if not resume:
            refuse_to_overwrite(self.out)
        self.lock = OutputDirLock(self.out, log) if self.rank == 0 else None
        try:
            self._build(resume)
        except BaseException:
            self.close()
            raise

    def _build(self, resume):
        cfg = self.cfg
        ms.set_seed(cfg["seed"])  # identical initial weights on every rank
        self.net = build_network(cfg)
        if cfg["sync_bn"] and check_sync_bn(self.device, self.world, self.log):
            convert_sync_batchnorm(self.net)
        if self.amp != "O0":
            self.net = ms.amp.auto_mixed_precision(self.net, self.amp)
        self.train_split = ImageFolderSplit(cfg, "train", self.rank, self.world)
        self.val_split = ImageFolderSplit(cfg, "val", self.rank, self.world)
        self.steps_per_epoch = self.train_split.steps_per_epoch
        check_same_classes(self.train_split, self.val_split)
        for line in self.train_split.warnings() + self.val_split.warnings():
            if self.rank == 0:
                self.log(line)
        updates = updates_per_epoch(self.steps_per_epoch, cfg["accumulate_steps"])
        self.lrs = lr_schedule(cfg, updates, self.world)
        warmup, capped = warmup_steps(cfg, updates)
        if capped and self.rank == 0:
            self.log(f"warm-up shortened to {warmup} step(s) ({warmup / updates:.2g}"
                     f" epochs): warmup_epochs {cfg['warmup_epochs']:g} is more than "
                     f"{MAX_WARMUP_FRACTION:.0%} of this {cfg['epochs']}-epoch run")
        self.opt = build_optimizer(cfg, self.net, self.lrs)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg["label_smoothing"])
        self.train_step = TrainStep(self.net, loss_fn, self.opt, self.world,
                                    cfg["clip_grad_norm"], self.amp != "O0")
        if cfg["accumulate_steps"] > 1:
            self.train_step.accumulator = GradAccumulator(
                self.opt.parameters, cfg["accumulate_steps"], self.steps_per_epoch)
        self.ema = self.train_step.ema = EMA(self.net, cfg["ema_decay"]) if cfg["ema"] else None
        self.step = ms.jit(self.train_step, jit_level=jit_level())
        self.evaluator = Evaluator(self.net, self.val_split, self.world)
        self.start_epoch, self.best_top1 = 0, -1.0
        self.saved_epoch = 0  # the last epoch whose checkpoint is written
        if self.rank == 0:
            os.makedirs(self.out, exist_ok=True)
            config_lib.save(cfg, os.path.join(self.out, "config.yaml"))
        if resume:
            self._resume(resume)

    # ---------------------------------------------------------------- checkpoints
    def _scaler_state(self):
        """The dynamic loss scale and its counter (AMP): saved so a resumed run goes on with
        the scale it had, optional on resume (a run may switch AMP on or off)."""
        scaler = self.train_step.scaler
        return [] if scaler is None else [scaler.scale_value, scaler.counter]

    def _state_entries(self):
        params = (list(self.net.get_parameters()) + optimizer_state(self.opt, self.net)
                  + self._scaler_state() + (list(self.ema.weights) if self.ema else []))
        return [{"name": p.name, "data": p} for p in params]

    def _save(self, epoch, metrics):
        if self.rank != 0:
            return
        meta = {"epoch": epoch, "best_top1": float(self.best_top1), "model": self.cfg["model"],
                "num_classes": self.cfg["num_classes"], **self._run_shape()}
        path = save_checkpoint_atomic(self._state_entries(),
                                      os.path.join(self.out, f"epoch_{epoch:04d}.ckpt"), meta)
        atomic.copy(path, os.path.join(self.out, "last.ckpt"))
        if metrics["top1"] >= self.best_top1:
            atomic.copy(path, os.path.join(self.out, "best.ckpt"))
        for old in epoch_checkpoints(self.out)[self.cfg["keep_checkpoints"]:]:
            os.remove(old)

    def _resume(self, resume):
        path = resume if resume != "auto" else newest_valid_checkpoint(self.out, self.log)
        if path is None:
            self.log(f"resume auto: no checkpoint in {self.out}, starting from scratch")
            return
        params = read_checkpoint(path)
        check_state_dict(self.net, params, describe(path, params, self.cfg["model"]))
        state = optimizer_state(self.opt, self.net)
        missing = [p.name for p in state if p.name not in params]
        if missing or "epoch" not in params:
            raise CheckpointError(f"checkpoint {path} holds no optimizer state or epoch "
                                  f"(missing {', '.join(missing[:3]) or 'epoch'}): it cannot "
                                  "resume training; use it with eval.py or as a starting point")
        targets = list(self.net.get_parameters()) + state + [
            p for p in self._scaler_state() if p.name in params]
        for p in targets:
            if tuple(params[p.name].shape) != tuple(p.shape):
                raise CheckpointError(f"checkpoint {path}: {p.name} has shape "
                                      f"{tuple(params[p.name].shape)}, expected {tuple(p.shape)}")
            p.set_data(Tensor(params[p.name].asnumpy(), p.dtype))
        self._resume_ema(params, path)
        self.start_epoch = int(params["epoch"].asnumpy())
        self.best_top1 = float(params["best_top1"].asnumpy()) if "best_top1" in params else -1.0
        self._adapt_to_run_shape(params)
        self.log(f"resumed from {path}: {self.start_epoch} of {self.cfg['epochs']} epochs done")

    def _resume_ema(self, params, path):
        """The EMA weights of the checkpoint; a run that turns ema on starts them from the
        resumed weights (and says so)."""
        if self.ema is None:
            return
        saved = ema_weights(params)
        for param, ema in zip(self.ema.params, self.ema.weights):
            source = saved.get(param.name, params[param.name])
            ema.set_data(Tensor(source.asnumpy(), ema.dtype))
        if not saved:
            self.log(f"note: {path} holds no EMA weights; the EMA starts from its weights")

    def _evaluate_ema(self, epoch):
        """val_*_ema metrics of the EMA weights (evaluated in the network's place)."""
        if self.ema is None:
            return {}
        self.ema.swap()
        try:
            metrics = self.evaluator.run(epoch)
        finally:
            self.ema.swap()
        self.log(f"epoch {epoch + 1}: EMA weights: val top-1 {metrics['top1']:.4f}, top-5 "
                 f"{metrics['top5']:.4f}, loss {metrics['loss']:.4f}")
        return {"val_top1_ema": metrics["top1"], "val_top5_ema": metrics["top5"],
                "val_loss_ema": metrics["loss"]}

    def _run_shape(self):
        """What a checkpoint records besides the state: the data-parallel shape of the run and
        the seed from which (with rank, epoch and step) all of its randomness is derived."""
        return {"world_size": self.world, "global_batch": self.cfg["batch_size"] * self.world,
                "steps_per_epoch": self.steps_per_epoch, "peak_lr": float(scaled_lr(self.cfg,
                                                                                   self.world)),
                "seed": self.cfg["seed"]}

    def _adapt_to_run_shape(self, params):
        """A resume with another worker count (or batch size) goes on from the epoch boundary
        of the new schedule and says what changed; another seed is allowed and named."""
        saved = {k: params[k].asnumpy().item() for k in self._run_shape() if k in params}
        now = self._run_shape()
        if "seed" in saved and saved["seed"] != now["seed"]:
            self.log(f"note: the checkpoint's run used seed {saved['seed']}, this one uses "
                     f"{now['seed']}: data order, augmentation and stochastic layers do not "
                     "continue as the original run would have")
        shape = ("world_size", "global_batch", "steps_per_epoch")
        if len(saved) < len(now) or all(saved[k] == now[k] for k in shape):
            return
        self.log(describe_world_change(saved, now))
        self.opt.global_step.set_data(Tensor(np.array([self.start_epoch * updates_per_epoch(
            self.steps_per_epoch, self.cfg['accumulate_steps'])],
                                                      np.int32)))

    # ---------------------------------------------------------------- loops
    def train_epoch(self, epoch, progress):
        """One epoch of exactly steps_per_epoch steps on every rank. The host reads the
        losses and overflow flags only every log_interval steps and at the end (a read
        waits for the device). Returns (mean training loss over ranks and updated steps,
        images this rank processed, unreadable images summed over ranks)."""
        self.net.set_train(True)
        seed, interval = self.cfg["seed"], self.cfg["log_interval"]
        tally, window = _Tally(), []
        for i, (images, labels) in enumerate(self.train_split.train_batches(epoch)):
            key = step_key(seed, self.rank, epoch * self.steps_per_epoch + i)
            window.append(self.step(images, labels, key))
            if i == 0:
                progress.begin()
            if (i + 1) % interval == 0 or i + 1 == self.steps_per_epoch:
                self._read_window(window, epoch, i + 1, tally, progress)
                window = []
        skipped = int(all_reduce_sum([self.train_split.skipped], self.world)[0])
        mean = float(np.mean(tally.losses)) if tally.losses else float("nan")
        return mean, self.steps_per_epoch * self.cfg["batch_size"], skipped

    def _read_window(self, window, epoch, last_step, tally, progress):
        """Check the (loss, overflow) pairs of the steps up to `last_step` in one read:
        skipped updates in a row, a non-finite loss; then the live line."""
        losses = ops.stack([loss for loss, _ in window]).asnumpy().astype(np.float64)
        overflows = ops.stack([overflow for _, overflow in window]).asnumpy()
        good = []
        for n, loss, overflow in zip(range(last_step - len(window) + 1, last_step + 1),
                                     losses, overflows):
            where = f"epoch {epoch + 1}, step {n}"
            if overflow:  # dynamic loss scaling skipped this update on every rank
                tally.overflows += 1
                if tally.overflows >= MAX_CONSECUTIVE_OVERFLOWS:
                    raise TrainingError(f"{tally.overflows} steps in a row had non-finite "
                                        f"gradients (up to {where}) although the loss scale "
                                        "was lowered each time: training diverged; the last "
                                        f"good checkpoint is kept in {self.out}")
                continue
            tally.overflows = 0
            if not math.isfinite(loss):
                raise TrainingError(f"the loss became {loss} at {where}; the last good "
                                    f"checkpoint is kept in {self.out} (lower the lr or enable "
                                    "clip_grad_norm)")
            good.append(loss)
        tally.losses += good
        progress.update(epoch, last_step, float(np.mean(good)) if good else float("nan"),
                        self.current_lr())

    def current_lr(self):
        """The learning rate of the optimizer's last update, found by its own step counter
        (which skipped updates do not advance)."""
        done = int(self.opt.global_step.asnumpy().reshape(-1)[0])
        return float(self.lrs[min(max(done - 1, 0), len(self.lrs) - 1)])

    def fit(self):
        """Run the remaining epochs; returns the best val top-1. Releases the output dir.
        Interrupted (Ctrl-C, SIGTERM) says where the run stopped and how to continue it."""
        try:
            return self._fit()
        except KeyboardInterrupt:
            raise Interrupted(self.where_stopped()) from None
        finally:
            self.close()

    def where_stopped(self):
        done = self.saved_epoch
        where = f"in epoch {done + 1} of {self.cfg['epochs']}"
        if done == 0:
            return f"{where}, before any checkpoint; start it again with the same command"
        return (f"{where}; epoch {done} is saved in {self.out}: continue with python train.py "
                f"--resume auto --output-dir {self.out}")

    def close(self):
        if self.lock is not None:
            self.lock.release()

    def _fit(self):
        cfg = self.cfg
        if self.start_epoch >= cfg["epochs"]:
            self.log(f"all {cfg['epochs']} epochs are already done in {self.out}")
            return self.best_top1
        self.saved_epoch = self.start_epoch
        metrics_log = MetricsLog(self.out, run_title(cfg)) if self.rank == 0 else None
        progress = Progress(cfg, self.steps_per_epoch, self.world, self.log,
                            self.val_split.num_samples)
        self.log(f"training {cfg['model']} on {self.device} ({self.world} device(s), amp "
                 f"{self.amp}, {describe_implementations(self.net)}): "
                 f"{self.train_split.num_samples} train / "
                 f"{self.val_split.num_samples} val images, {self.steps_per_epoch} steps per "
                 f"epoch, epochs {self.start_epoch + 1}..{cfg['epochs']}")
        done_this_run = 0
        for epoch in range(self.start_epoch, cfg["epochs"]):
            start = time.time()
            train_loss, seen, skipped = self.train_epoch(epoch, progress)
            train_time = time.time() - start
            metrics = self.evaluator.run(epoch)
            val_time = time.time() - start - train_time
            self.best_top1 = max(self.best_top1, metrics["top1"])
            self.check_ranks_in_sync()
            record = {"epoch": epoch + 1, "train_loss": train_loss, "val_top1": metrics["top1"],
                      "val_top5": metrics["top5"], "val_loss": metrics["loss"],
                      "val_samples": metrics["num_samples"],
                      "lr": self.current_lr(),
                      # the live line's figure: throughput after the epoch's first step
                      "images_per_s": progress.rate or seen * self.world / max(train_time, 1e-9),
                      "train_time_s": train_time, "val_time_s": val_time,
                      "epoch_time_s": time.time() - start, "skipped_images": skipped,
                      "val_skipped_images": metrics["skipped_images"]}
            progress.end_epoch(record)
            record.update(self._evaluate_ema(epoch))
            if skipped or metrics["skipped_images"]:
                self.log(f"epoch {epoch + 1}: skipped {skipped} unreadable train and "
                         f"{metrics['skipped_images']} val image(s) (python -m "
                         "mindspore_acmix.data.image_check FOLDER lists them)")
            # metrics first: a kill between the two leaves a record that the resumed run
            # rewrites, never a checkpoint whose epoch has no record
            try:
                if metrics_log is not None:
                    metrics_log.append(record)
                    write_figure_of_network(  # rates.png of ACmix models
                        self.net, self.out, f"{run_title(cfg)}, epoch {epoch + 1}")
                self._save(epoch + 1, metrics)
                self.saved_epoch = epoch + 1
            except OSError as exc:  # disk full, quota, permissions: say so, keep what is there
                raise TrainingError(f"could not write epoch {epoch + 1}'s outputs in {self.out} "
                                    f"({exc.strerror or exc}); the files already there are "
                                    "intact") from None
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


class _Tally:
    """An epoch's losses (steps that updated) and its current run of skipped updates."""

    def __init__(self):
        self.losses, self.overflows = [], 0


class OutputDirLock:
    """An exclusive lock on the output directory for one training process (the kernel drops
    it when the process dies, however it dies); taking it also clears the temporary files of
    writes that an earlier, killed run never finished."""

    def __init__(self, out, log=print):
        self.path = os.path.join(out, ".lock")
        try:
            os.makedirs(out, exist_ok=True)
            self.fh = open(self.path, "a+", encoding="utf-8")
        except OSError as exc:
            raise config_lib.ConfigError(f"output_dir {out} cannot be written "
                                         f"({exc.strerror or exc})") from None
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            holder = self.fh.read().strip() or "unknown"
            self.fh.close()
            raise TrainingError(f"output_dir {out} is in use by another training process "
                                f"(pid {holder}); wait for it or choose another --output-dir")
        if not _same_file(self.path, self.fh.fileno()):
            self.fh.close()  # its holder released and deleted it meanwhile: lock the new one
            self.__init__(out, log)
            return
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(str(os.getpid()))
        self.fh.flush()
        removed = atomic.remove_stale_temporaries(out)
        if removed:
            log(f"removed {len(removed)} unfinished write(s) of an interrupted run: "
                f"{', '.join(removed)}")

    def release(self):
        """Unlock and delete .lock (deleted first: a process that opened it meanwhile sees
        the file gone and takes a new one)."""
        if not self.fh.closed:
            with contextlib.suppress(OSError):
                os.remove(self.path)
            fcntl.flock(self.fh, fcntl.LOCK_UN)
            self.fh.close()


def _same_file(path, fd):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino)


def refuse_to_overwrite(out):
    """A fresh run must not overwrite another run's checkpoints."""
    found = epoch_checkpoints(out) + [p for p in (os.path.join(out, "last.ckpt"),)
                                      if os.path.exists(p)]
    if found:
        raise config_lib.ConfigError(
            f"output_dir {out} already holds checkpoints ({os.path.basename(found[0])}): pass "
            "--resume auto to continue that run, or choose another --output-dir (nothing was "
            "overwritten)")


def epoch_checkpoints(out):
    """epoch_*.ckpt files in `out`, newest first."""
    found = [p for p in glob.glob(os.path.join(out, "epoch_*.ckpt")) if EPOCH_FILE.search(p)]
    return sorted(found, key=lambda p: int(EPOCH_FILE.search(p).group(1)), reverse=True)


def newest_valid_checkpoint(out, log=print):
    """The newest readable training checkpoint in `out`, None when there is none; corrupt
    ones are named and skipped, and CheckpointError when every one of them is corrupt (a run
    from scratch would overwrite them)."""
    candidates, corrupt = [], []
    for path in epoch_checkpoints(out) + [os.path.join(out, "last.ckpt")]:
        if not os.path.exists(path):
            continue
        try:
            params = read_checkpoint(path)
        except CheckpointError as exc:
            log(f"warning: skipping {exc}")
            corrupt.append(os.path.basename(path))
            continue
        if "epoch" in params:
            candidates.append((int(params["epoch"].asnumpy()), path))
    if not candidates and corrupt:
        raise CheckpointError(f"resume auto: none of the checkpoints in {out} can be read "
                              f"({', '.join(corrupt)}); move them away to start from scratch")
    return max(candidates)[1] if candidates else None
