"""One optimisation step on the device: forward, backward, AMP loss scaling and overflow
verdict, gradient mean over ranks, clipping, update, EMA."""
import mindspore as ms
from mindspore import Tensor, nn, ops

from .. import config as config_lib
from ..layers.stochastic import RNG_KEY
from .distributed import RankMean


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
        loss = self.loss_fn(self.net(x), y)  # the loss computes in float32 (engine/tasks.py)
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
