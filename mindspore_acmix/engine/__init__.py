"""Training engine. `trainer.Trainer` runs a training job and orchestrates the pieces, each in
its own module: `step` (the device step: loss scaling, gradient mean, update), `amp` (the
AMP levels and what stays float32), `overflow` (the overflow verdict on each target),
`evaluate`, `state` (checkpoints and resume), `rundir` (the output directory's lock and
checkpoint discovery), `build` (the network of a config), `optim`, `accumulate`, `ema`,
`distributed`, `sync_bn`, `report` (progress line, metrics.jsonl, curves)."""
from .sync_bn import convert_sync_batchnorm

__all__ = ["convert_sync_batchnorm"]
