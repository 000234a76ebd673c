"""Training engine. `trainer.Trainer` runs a training job and orchestrates the pieces, each in
its own module: `step` (the device step: AMP, loss scaling and overflow, gradient mean),
`evaluate`, `state` (checkpoints and resume), `rundir` (the output directory's lock and
checkpoint discovery), `build` (the network of a config), `optim`, `accumulate`, `ema`,
`distributed`, `sync_bn`, `report` (progress line, metrics.jsonl, curves)."""
