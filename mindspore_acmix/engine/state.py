"""A run's checkpoints: what they hold (weights, optimizer, loss scale, EMA, the run's shape),
writing them (epoch, last, best, the newest `keep_checkpoints` kept) and resuming from one."""
import os

import numpy as np
from mindspore import Tensor

from .. import atomic
from ..checkpoint import (CheckpointError, check_state_dict, describe, read_checkpoint,
                          save_checkpoint_atomic)
from .accumulate import updates_per_epoch
from .distributed import describe_world_change
from .ema import ema_weights
from .optim import optimizer_state, scaled_lr
from .rundir import epoch_checkpoints, newest_valid_checkpoint
from .tasks import ClassificationTask


class RunState:
    """The state of one training run, saved at each epoch's end and restored by resume."""

    def __init__(self, cfg, net, opt, scaler, ema, world, steps_per_epoch, out, log=print,
                 task=None):
        self.cfg, self.net, self.opt, self.scaler, self.ema = cfg, net, opt, scaler, ema
        self.world, self.steps_per_epoch, self.out, self.log = world, steps_per_epoch, out, log
        self.task = task or ClassificationTask(cfg)
        # the best value of the task's metric: best_top1 (classification), best_mIoU
        self.best_name = f"best_{self.task.best_key}"

    def _scaler_state(self):
        """The dynamic loss scale and its counter (AMP): saved so a resumed run goes on with
        the scale it had, optional on resume (a run may switch AMP on or off)."""
        return [] if self.scaler is None else [self.scaler.scale_value, self.scaler.counter]

    def entries(self):
        params = (list(self.net.get_parameters()) + optimizer_state(self.opt, self.net)
                  + self._scaler_state() + (list(self.ema.weights) if self.ema else []))
        return [{"name": p.name, "data": p} for p in params]

    def run_shape(self):
        """What a checkpoint records besides the state: the data-parallel shape of the run and
        the seed from which (with rank, epoch and step) all of its randomness is derived."""
        return {"world_size": self.world, "global_batch": self.cfg["batch_size"] * self.world,
                "steps_per_epoch": self.steps_per_epoch,
                "peak_lr": float(scaled_lr(self.cfg, self.world)), "seed": self.cfg["seed"]}

    def save(self, epoch, best, improved):
        """epoch_NNNN.ckpt, copied to last.ckpt (and best.ckpt when `improved`); older epoch
        files beyond keep_checkpoints removed. Call on rank 0 only. `epoch` counts periods:
        epochs, or evaluation intervals of an iteration-based run."""
        meta = {"epoch": epoch, self.best_name: float(best), "model": self.cfg["model"],
                "num_classes": self.cfg["num_classes"], **self.run_shape()}
        path = save_checkpoint_atomic(self.entries(),
                                      os.path.join(self.out, f"epoch_{epoch:04d}.ckpt"), meta)
        atomic.copy(path, os.path.join(self.out, "last.ckpt"))
        if improved:
            atomic.copy(path, os.path.join(self.out, "best.ckpt"))
        for old in epoch_checkpoints(self.out)[self.cfg["keep_checkpoints"]:]:
            os.remove(old)

    def resume(self, resume):
        """Restore the run from `resume` (a path, or "auto": the newest valid checkpoint in
        the output dir). Returns (periods done, best metric), or None when "auto" finds
        none."""
        path = resume if resume != "auto" else newest_valid_checkpoint(self.out, self.log)
        if path is None:
            self.log(f"resume auto: no checkpoint in {self.out}, starting from scratch")
            return None
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
        done = int(params["epoch"].asnumpy())
        best = float(params[self.best_name].asnumpy()) if self.best_name in params else -1.0
        self._adapt_to_run_shape(params, done)
        self.log(f"resumed from {path}: {self.task.done(done)}")
        return done, best

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

    def _adapt_to_run_shape(self, params, done):
        """A resume with another worker count (or batch size) goes on from the epoch boundary
        of the new schedule and says what changed; another seed is allowed and named."""
        now = self.run_shape()
        saved = {k: params[k].asnumpy().item() for k in now if k in params}
        if "seed" in saved and saved["seed"] != now["seed"]:
            self.log(f"note: the checkpoint's run used seed {saved['seed']}, this one uses "
                     f"{now['seed']}: data order, augmentation and stochastic layers do not "
                     "continue as the original run would have")
        shape = ("world_size", "global_batch", "steps_per_epoch")
        if len(saved) < len(now) or all(saved[k] == now[k] for k in shape):
            return
        self.log(describe_world_change(saved, now))
        updates = updates_per_epoch(self.steps_per_epoch, self.cfg.get("accumulate_steps", 1))
        self.opt.global_step.set_data(Tensor(np.array([done * updates], np.int32)))
