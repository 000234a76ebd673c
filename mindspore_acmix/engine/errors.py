"""What stops a training run, as the scripts report it (one line, exit 2)."""


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, for example)."""


class Interrupted(KeyboardInterrupt):
    """Training was stopped by a signal; the message says where and how to continue."""
