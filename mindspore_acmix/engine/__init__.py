"""Training engine: optimizer and schedule, data-parallel helpers, the train/eval loops."""
