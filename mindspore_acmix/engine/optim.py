"""Learning-rate schedule, weight-decay groups and optimizers."""
import math

import numpy as np
from mindspore import Tensor, nn

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


def build_optimizer(cfg, net, lrs):
    # MindSpore refuses an empty group (no_decay_keys: [] leaves no no-decay parameter)
    groups = [g for g in param_groups(net, cfg["weight_decay"], cfg.get("no_decay_keys"))
              if g.get("params", True)]
    lr = Tensor(lrs)
    if cfg["optimizer"] == "adamw":
        return nn.AdamWeightDecay(groups, learning_rate=lr, beta1=cfg["betas"][0],
                                  beta2=cfg["betas"][1], eps=1e-8)
    return nn.Momentum(groups, learning_rate=lr, momentum=cfg["momentum"],
                       use_nesterov=cfg["nesterov"])


def optimizer_state(opt, net):
    """The optimizer's own parameters (step, moments), without the network's and without the
    learning-rate table, which the config rebuilds."""
    net_names = {p.name for p in net.get_parameters()}
    return [p for p in opt.get_parameters()
            if p.name not in net_names and p.name != "learning_rate"]
