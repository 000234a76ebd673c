"""The output directory of a run: one training process at a time (a lock), no overwriting of
another run's checkpoints, and finding the newest readable checkpoint to resume from."""
import contextlib
import fcntl
import glob
import os
import re

from .. import atomic
from .. import config as config_lib
from ..checkpoint import CheckpointError, read_checkpoint
from .errors import TrainingError

EPOCH_FILE = re.compile(r"epoch_(\d+)\.ckpt$")


class OutputDirLock:
    """An exclusive lock on the output directory for one training process (the kernel drops
    it when the process dies, however it dies); taking it also clears the temporary files of
    writes that an earlier, killed run never finished."""

    def __init__(self, out, log=print):
        self.path = os.path.join(out, ".lock")
        try:
            os.makedirs(out, exist_ok=True)
            self.fh = open(self.path, "a+", encoding="utf-8")
        except OSError as exc:
            raise config_lib.ConfigError(f"output_dir {out} cannot be written "
                                         f"({exc.strerror or exc})") from None
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            holder = self.fh.read().strip() or "unknown"
            self.fh.close()
            raise TrainingError(f"output_dir {out} is in use by another training process "
                                f"(pid {holder}); wait for it or choose another --output-dir")
        if not _same_file(self.path, self.fh.fileno()):
            self.fh.close()  # its holder released and deleted it meanwhile: lock the new one
            self.__init__(out, log)
            return
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(str(os.getpid()))
        self.fh.flush()
        removed = atomic.remove_stale_temporaries(out)
        if removed:
            log(f"removed {len(removed)} unfinished write(s) of an interrupted run: "
                f"{', '.join(removed)}")

    def release(self):
        """Unlock and delete .lock (deleted first: a process that opened it meanwhile sees
        the file gone and takes a new one)."""
        if not self.fh.closed:
            with contextlib.suppress(OSError):
                os.remove(self.path)
            fcntl.flock(self.fh, fcntl.LOCK_UN)
            self.fh.close()


def _same_file(path, fd):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino)


def refuse_to_overwrite(out):
    """A fresh run must not overwrite another run's checkpoints."""
    found = epoch_checkpoints(out) + [p for p in (os.path.join(out, "last.ckpt"),)
                                      if os.path.exists(p)]
    if found:
        raise config_lib.ConfigError(
            f"output_dir {out} already holds checkpoints ({os.path.basename(found[0])}): pass "
            "--resume auto to continue that run, or choose another --output-dir (nothing was "
            "overwritten)")


def epoch_checkpoints(out):
    """epoch_*.ckpt files in `out`, newest first."""
    found = [p for p in glob.glob(os.path.join(out, "epoch_*.ckpt")) if EPOCH_FILE.search(p)]
    return sorted(found, key=lambda p: int(EPOCH_FILE.search(p).group(1)), reverse=True)


def newest_valid_checkpoint(out, log=print):
    """The newest readable training checkpoint in `out`, None when there is none; corrupt
    ones are named and skipped, and CheckpointError when every one of them is corrupt (a run
    from scratch would overwrite them)."""
    candidates, corrupt = [], []
    for path in epoch_checkpoints(out) + [os.path.join(out, "last.ckpt")]:
        if not os.path.exists(path):
            continue
        try:
            params = read_checkpoint(path)
        except CheckpointError as exc:
            log(f"warning: skipping {exc}")
            corrupt.append(os.path.basename(path))
            continue
        if "epoch" in params:
            candidates.append((int(params["epoch"].asnumpy()), path))
    if not candidates and corrupt:
        raise CheckpointError(f"resume auto: none of the checkpoints in {out} can be read "
                              f"({', '.join(corrupt)}); move them away to start from scratch")
    return max(candidates)[1] if candidates else None
