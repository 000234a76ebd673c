"""Learning-rate schedule, weight-decay groups and optimizers."""
import math

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops

from ..models.base import no_weight_decay_names


def scaled_lr(cfg, world):
    """Peak lr for the global batch of an update (with gradient accumulation), scaled
    linearly from lr_batch_size."""
    return (cfg["lr"] * cfg["batch_size"] * world * cfg.get("accumulate_steps", 1)
            / cfg["lr_batch_size"])


# A recipe's warm-up is meant for its full length: a shortened run (--epochs 1) warms up for
# at most this fraction of its steps, so that it still trains at the peak rate for a while.
MAX_WARMUP_FRACTION = 0.2


def warmup_steps(cfg, steps_per_epoch):
    """(warm-up steps of the run, True when warmup_epochs was capped to MAX_WARMUP_FRACTION).
    Compared in epochs, so a recipe within the limit is never capped whatever the number of
    steps in its epoch (a step count rounds up as often as down)."""
    limit = MAX_WARMUP_FRACTION * cfg["epochs"]
    if cfg["warmup_epochs"] <= limit * (1 + 1e-9):
        return int(round(cfg["warmup_epochs"] * steps_per_epoch)), False
    return int(limit * steps_per_epoch), True


def lr_schedule(cfg, steps_per_epoch, world):
    """Per-step learning rates of the whole run: linear warmup from warmup_start_factor * lr
    (see warmup_steps), then cosine to min_lr."""
    peak = scaled_lr(cfg, world)
    total = cfg["epochs"] * steps_per_epoch
    warmup = warmup_steps(cfg, steps_per_epoch)[0]
    lrs = np.empty(total, np.float64)
    start = cfg["warmup_start_factor"]
    for t in range(total):
        if t < warmup:
            lrs[t] = peak * (start + (1 - start) * t / warmup)
        else:
            progress = (t - warmup) / max(1, total - warmup)
            lrs[t] = cfg["min_lr"] + 0.5 * (peak - cfg["min_lr"]) * (1 + math.cos(math.pi * progress))
    return lrs.astype(np.float32)


def poly_schedule(cfg, world):
    """Per-iteration learning rates of an iteration-based run (mmcv's poly policy with linear
    warm-up): lr_t = (peak - min_lr) * (1 - t / max_iters) ** poly_power + min_lr, and during
    the first warmup_iters the warm-up factor 1 - (1 - t / warmup_iters) * (1 -
    warmup_start_factor) multiplies it (mmcv scales the decayed rate, not the peak)."""
    peak, total = scaled_lr(cfg, world), cfg["max_iters"]
    t = np.arange(total, dtype=np.float64)
    lrs = (peak - cfg["min_lr"]) * (1 - t / total) ** cfg["poly_power"] + cfg["min_lr"]
    warmup = cfg["warmup_iters"]
    if warmup:
        factor = 1 - (1 - t[:warmup] / warmup) * (1 - cfg["warmup_start_factor"])
        lrs[:warmup] *= factor
    return lrs.astype(np.float32)


def step_schedule(cfg, steps_per_epoch, world):
    """Per-iteration learning rates of mmdet's 1x policy: the peak times 0.1 for each of
    lr_steps already passed (epochs), and during the first warmup_iters the factor
    1 - (1 - t / warmup_iters) * (1 - warmup_start_factor) (mmcv's linear warm-up, 500
    iterations from 0.001 in the recipes)."""
    total = cfg["epochs"] * steps_per_epoch
    t = np.arange(total, dtype=np.float64)
    passed = np.searchsorted(np.asarray(cfg["lr_steps"]) * steps_per_epoch, t, side="right")
    lrs = scaled_lr(cfg, world) * 0.1 ** passed
    warmup = min(cfg["warmup_iters"], total)
    if warmup:
        lrs[:warmup] *= 1 - (1 - t[:warmup] / warmup) * (1 - cfg["warmup_start_factor"])
    return lrs.astype(np.float32)


def no_decay_names(net):
    """The model's no_weight_decay() (also through AMP's output-cast wrapper); the shared
    rule of models.base for a network without one."""
    model = net if hasattr(net, "no_weight_decay") else getattr(net, "_backbone", net)
    if hasattr(model, "no_weight_decay"):
        return set(model.no_weight_decay())
    return no_weight_decay_names(net)


def param_groups(net, weight_decay, no_decay_keys=None):
    """Decay and no-decay groups: the model's rule (no_decay_names), or with `no_decay_keys`
    (a recipe's mmcv custom_keys) every parameter whose name holds one of them."""
    params = net.trainable_params()
    skip = (no_decay_names(net) if no_decay_keys is None
            else {p.name for p in params if any(k in p.name for k in no_decay_keys)})
    decay = [p for p in params if p.name not in skip]
    no_decay = [p for p in params if p.name in skip]
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
            {"order_params": params}]


class AdamW(nn.AdamWeightDecay):
    """torch.optim.AdamW, the optimizer of the official recipes: MindSpore's
    nn.AdamWeightDecay plus Adam's bias correction, which it leaves out (its steps are
    (1 - beta1^t) / sqrt(1 - beta2^t) times torch's: 4.5x at step 50, 2x at step 300).
    torch's step p -= lr * (wd * p + m_hat / (sqrt(v_hat) + eps)), with m_hat = m / (1 -
    beta1^t) and v_hat = v / (1 - beta2^t), is nn.AdamWeightDecay's p -= lr' * (wd' * p +
    m / (sqrt(v) + eps')) with lr' = lr * c, wd' = wd / c, eps' = eps * sqrt(1 - beta2^t),
    c = sqrt(1 - beta2^t) / (1 - beta1^t): the same fused kernel and moments. The
    powers beta^t are optimizer state, saved and restored with the moments."""

    def __init__(self, params, learning_rate, beta1=0.9, beta2=0.999, eps=1e-8,
                 weight_decay=0.0):
        super().__init__(params, learning_rate, beta1, beta2, eps, weight_decay)
        self.beta1_power = Parameter(Tensor([1.0], ms.float32), name="beta1_power",
                                     requires_grad=False)
        self.beta2_power = Parameter(Tensor([1.0], ms.float32), name="beta2_power",
                                     requires_grad=False)

    def construct(self, gradients):
        beta1_power = self.beta1_power * self.beta1
        beta2_power = self.beta2_power * self.beta2
        beta1_power = ops.depend(beta1_power, ops.assign(self.beta1_power, beta1_power))
        beta2_power = ops.depend(beta2_power, ops.assign(self.beta2_power, beta2_power))
        root = ops.sqrt(1.0 - beta2_power)
        correction = root / (1.0 - beta1_power)
        weight_decay = self.get_weight_decay()
        lr = self.get_lr()
        self.assignadd(self.global_step, self.global_step_increase_tensor)
        eps = self.eps * root
        done = ()
        for i in range(len(self._parameters)):
            if self.optim_filter[i]:
                param, grad = self._parameters[i], gradients[i]
                rate = lr[i] if self.is_group_lr else lr
                decay = weight_decay[i] if self.is_group else weight_decay
                decay = decay / correction if self.decay_flags[i] else correction * 0.0
                done += (self.fused_opt(param, self.moments1[i], self.moments2[i],
                                        rate * correction, self.beta1, self.beta2, eps, decay,
                                        grad.astype(param.dtype)),)
        return done


def build_optimizer(cfg, net, lrs):
    # MindSpore refuses an empty group (no_decay_keys: [] leaves no no-decay parameter)
    groups = [g for g in param_groups(net, cfg["weight_decay"], cfg.get("no_decay_keys"))
              if g.get("params", True)]
    lr = Tensor(lrs)
    if cfg["optimizer"] == "adamw":
        return AdamW(groups, learning_rate=lr, beta1=cfg["betas"][0], beta2=cfg["betas"][1],
                     eps=1e-8)
    return nn.Momentum(groups, learning_rate=lr, momentum=cfg["momentum"],
                       use_nesterov=cfg["nesterov"])


def optimizer_state(opt, net):
    """The optimizer's own parameters (step, moments), without the network's and without the
    learning-rate table, which the config rebuilds."""
    net_names = {p.name for p in net.get_parameters()}
    return [p for p in opt.get_parameters()
            if p.name not in net_names and p.name != "learning_rate"]
