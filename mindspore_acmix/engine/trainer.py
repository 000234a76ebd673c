"""The training loop: builds a run from a resolved config (network, data, optimizer, step,
evaluation, checkpoints) and runs its periods (epochs of classification, evaluation intervals
of segmentation). The pieces live beside it: tasks.py (what differs between tasks: network,
data, loss, schedule, metrics), step.py (the device step: AMP, overflow, gradient mean),
evaluate.py, state.py (checkpoints and resume), rundir.py (the output directory's lock and
checkpoint discovery)."""
import math
import os
import time

import numpy as np
import mindspore as ms
from mindspore import ops

from .. import config as config_lib
from ..layers.placement import describe_implementations
from ..runtime import compiled
from ..seeding import step_key
from .accumulate import GradAccumulator, updates_per_epoch
from .amp import mixed_precision, resolve_amp
from .distributed import all_gather, all_reduce_sum, init_distributed
from .ema import EMA
from .errors import Interrupted, TrainingError
from .optim import build_optimizer
from .rate_figures import write_figure_of_network
from .report import MetricsLog, Progress, run_title
from .rundir import OutputDirLock, refuse_to_overwrite
from .state import RunState
from .step import TrainStep
from .sync_bn import check_sync_bn, convert_sync_batchnorm
from .tasks import make_task

# Under dynamic loss scaling a step with non-finite gradients is skipped and the scale
# halved; this many in a row (scale divided by 2**50) means the model itself has diverged.
MAX_CONSECUTIVE_OVERFLOWS = 50


class Trainer:
    """Builds everything from a resolved config and runs the periods of its task."""

    def __init__(self, cfg, device, resume=None, stop_after=None, log=print):
        self.cfg, self.device, self.log = cfg, device, log
        self.stop_after = stop_after
        self.rank, self.world = init_distributed()
        if self.world > 1:  # the launcher names a dead worker by these
            log(f"rank {self.rank} of {self.world}, pid {os.getpid()}")
        self.out = os.path.abspath(cfg["output_dir"])
        self.amp = resolve_amp(cfg, device)
        self.task = make_task(cfg, self.rank, self.world, log)
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
        self.net = self.task.build_network()
        if cfg["sync_bn"] and check_sync_bn(self.device, self.world, self.log):
            convert_sync_batchnorm(self.net)
        if self.amp != "O0":
            self.net = mixed_precision(self.net, self.amp)
        self.train_split, self.val_split = self.task.splits()
        self.steps_per_epoch = self.train_split.steps_per_epoch
        for line in self.train_split.warnings() + self.val_split.warnings():
            if self.rank == 0:
                self.log(line)
        accumulate = cfg.get("accumulate_steps", 1)  # keys of classification only
        updates = updates_per_epoch(self.steps_per_epoch, accumulate)
        self.lrs = self.task.lr_schedule(updates)
        self.opt = build_optimizer(cfg, self.net, self.lrs)
        self.train_step = TrainStep(self.net, self.task.loss_fn(), self.opt, self.world,
                                    cfg["clip_grad_norm"], self.amp != "O0")
        if accumulate > 1:
            self.train_step.accumulator = GradAccumulator(
                self.opt.parameters, accumulate, self.steps_per_epoch)
        self.ema = self.train_step.ema = (EMA(self.net, cfg["ema_decay"]) if cfg.get("ema")
                                          else None)
        self.step = compiled(self.train_step)
        self.evaluator = self.task.evaluator(self.net, self.val_split)
        self.state = RunState(cfg, self.net, self.opt, self.train_step.scaler, self.ema,
                              self.world, self.steps_per_epoch, self.out, self.log, self.task)
        self.start_epoch, self.best = 0, -1.0
        self.saved_epoch = 0  # the last epoch whose checkpoint is written
        if self.rank == 0:
            os.makedirs(self.out, exist_ok=True)
            config_lib.save(cfg, os.path.join(self.out, "config.yaml"))
        if resume:
            restored = self.state.resume(resume)
            if restored is not None:
                self.start_epoch, self.best = restored

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
            where = self.task.at(epoch, n, self.steps_per_epoch)
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

    def current_lr(self):
        """The learning rate of the optimizer's last update, found by its own step counter
        (which skipped updates do not advance)."""
        done = int(self.opt.global_step.asnumpy().reshape(-1)[0])
        return float(self.lrs[min(max(done - 1, 0), len(self.lrs) - 1)])

    def fit(self):
        """Run the remaining periods; returns the best value of the task's metric (val top-1,
        val mIoU). Releases the output dir.
        Interrupted (Ctrl-C, SIGTERM) says where the run stopped and how to continue it."""
        try:
            return self._fit()
        except KeyboardInterrupt:
            raise Interrupted(self.where_stopped()) from None
        finally:
            self.close()

    def where_stopped(self):
        done = self.saved_epoch
        where = self.task.within(done)
        if done == 0:
            return f"{where}, before any checkpoint; start it again with the same command"
        return (f"{where}; {self.task.period_name(done)} is saved in {self.out}: continue with "
                f"python train.py --resume auto --output-dir {self.out}")

    def close(self):
        if self.lock is not None:
            self.lock.release()

    def _fit(self):
        cfg = self.cfg
        task = self.task
        if self.start_epoch >= task.periods:
            self.log(f"all {task.total()} are already done in {self.out}")
            return self.best
        self.saved_epoch = self.start_epoch
        metrics_log = MetricsLog(self.out, task, run_title(cfg)) if self.rank == 0 else None
        progress = Progress(cfg, self.steps_per_epoch, self.world, self.log,
                            self.val_split.num_samples, task)
        self.log(f"training {cfg['model']} on {self.device} ({self.world} device(s), amp "
                 f"{self.amp}, {describe_implementations(self.net)}): "
                 f"{self.train_split.num_samples} train / "
                 f"{self.val_split.num_samples} val images, "
                 f"{task.plan(self.start_epoch, self.steps_per_epoch)}")
        done_this_run = 0
        for epoch in range(self.start_epoch, task.periods):
            start = time.time()
            train_loss, seen, skipped = self.train_epoch(epoch, progress)
            train_time = time.time() - start
            metrics = self.evaluator.run(epoch)
            val_time = time.time() - start - train_time
            improved = metrics[task.best_key] >= self.best
            self.best = max(self.best, metrics[task.best_key])
            self.check_ranks_in_sync()
            counter = task.counter(epoch, self.steps_per_epoch)
            record = {task.period_key: counter, "train_loss": train_loss,
                      **task.record(metrics), "val_samples": metrics["num_samples"],
                      "lr": self.current_lr(),
                      # the live line's figure: throughput after the epoch's first step
                      "images_per_s": progress.rate or seen * self.world / max(train_time, 1e-9),
                      "train_time_s": train_time, "val_time_s": val_time,
                      task.time_key: time.time() - start, "skipped_images": skipped,
                      "val_skipped_images": metrics["skipped_images"]}
            progress.end_epoch(record)
            record.update(self._evaluate_ema(epoch))
            if skipped or metrics["skipped_images"]:
                self.log(f"{task.period_name(epoch + 1)}: skipped {skipped} "
                         + task.bad_data.format(val=metrics["skipped_images"]))
            # metrics first: a kill between the two leaves a record that the resumed run
            # rewrites, never a checkpoint whose epoch has no record
            try:
                if metrics_log is not None:
                    metrics_log.append(record)
                    write_figure_of_network(  # rates.png of ACmix models
                        self.net, self.out, f"{run_title(cfg)}, {task.period_key} {counter}")
                    task.after_evaluation(metrics, self.out, counter)
                if self.rank == 0:
                    self.state.save(epoch + 1, self.best, improved=improved)
                self.saved_epoch = epoch + 1
            except OSError as exc:  # disk full, quota, permissions: say so, keep what is there
                raise TrainingError(f"could not write {task.period_name(epoch + 1)}'s outputs in "
                                    f"{self.out} "
                                    f"({exc.strerror or exc}); the files already there are "
                                    "intact") from None
            done_this_run += 1
            if self.stop_after is not None and done_this_run >= self.stop_after:
                self.log(f"stopping after {done_this_run} {task.period_plural} as asked; "
                         f"resume with --resume auto --output-dir {cfg['output_dir']}")
                break
        return self.best

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
