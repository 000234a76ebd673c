"""One optimisation step on the device: forward, backward, AMP loss scaling and overflow
verdict, gradient mean over ranks, clipping, update, EMA."""
import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops

from ..layers.stochastic import RNG_KEY
from .distributed import RankMean
from .overflow import OverflowCheck


class TrainStep(nn.Cell):
    """One optimisation step: forward, backward, gradient mean over ranks, optional
    clipping, then the update. Takes the stochastic layers' key of this rank and step
    (seeding.step_key). Returns (loss, overflow) as device tensors: the loss is the mean
    over ranks; with dynamic loss scaling, a step that overflowed on any rank is skipped on
    every rank, the scale lowered, and overflow is True (the verdict: engine/overflow.py)."""

    def __init__(self, net, loss_fn, opt, world, clip_norm, use_loss_scale,
                 overflow_register="detect"):
        super().__init__(auto_prefix=False)
        self.net, self.loss_fn, self.opt = net, loss_fn, opt
        self.reducer = nn.DistributedGradReducer(opt.parameters, mean=True) if world > 1 else None
        self.rank_mean = RankMean(world) if world > 1 else None
        self.clip_norm = clip_norm
        self.scaler = ms.amp.DynamicLossScaler(2.0 ** 16, 2, 1000) if use_loss_scale else None
        self.overflow = OverflowCheck(overflow_register) if use_loss_scale else None
        # the verdicts of an accumulation cycle's micro-batches, until its update
        self.pending = Parameter(Tensor(0.0, ms.float32), name="overflow_pending",
                                 requires_grad=False)
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
        status = None
        if self.overflow is not None:
            # clears the Ascend float status register before the forward (engine/overflow.py)
            x, status = self.overflow.start(x)
        loss, grads = self.grad_fn(x, y)
        if self.scaler is not None:
            loss = self.scaler.unscale(loss)
        overflow = self.no_overflow
        if self.accumulator is not None:
            if self.overflow is not None:
                # read per micro-batch: the register is cleared before every forward
                overflow = ops.maximum(self.pending, self.overflow.verdict(status, grads))
                ops.assign(self.pending, overflow)
            grads, ready = self.accumulator(grads)
            if not ready:  # a micro-batch inside an accumulation cycle: no update yet
                if self.rank_mean is not None:
                    loss, _ = self.rank_mean(loss, self.no_overflow)
                return loss, self.no_overflow > 0
            if self.overflow is not None:
                ops.assign(self.pending, self.no_overflow)
        if self.reducer is not None:
            grads = self.reducer(grads)
        if self.scaler is not None:
            grads = self.scaler.unscale(grads)
            if self.accumulator is None:
                # after the gradient mean: its own overflow counts, as in MindSpore's cell
                overflow = self.overflow.verdict(status, grads)
        if self.rank_mean is not None:
            # this rank's verdict shared with every rank in the collective that also
            # averages the loss
            loss, overflow = self.rank_mean(loss, overflow)
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
