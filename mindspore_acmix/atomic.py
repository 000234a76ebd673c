"""Files that are either complete or absent: every write goes to a hidden temporary file
beside its target and is renamed into place after an fsync, so a process killed at any
moment (SIGKILL included) leaves the previous version readable."""
import contextlib
import os
import shutil


def temporary_name(path):
    """`dir/.name.tmp-PID.ext` for `dir/name.ext`: hidden, same folder (so the rename is
    atomic), same extension (MindSpore and matplotlib choose formats by it)."""
    directory, name = os.path.split(os.fspath(path))
    stem, ext = os.path.splitext(name)
    return os.path.join(directory, f".{stem}.tmp-{os.getpid()}{ext}")


def is_temporary(name):
    """True for the name of a write that never reached its rename."""
    return name.startswith(".") and ".tmp-" in name


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_directory(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def writing(path):
    """Yields the temporary path to write; on success it replaces `path` durably, on any
    failure it is removed and `path` is untouched."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        # the mode any new file gets (MindSpore writes checkpoints and MindIR files 0400)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    _fsync_directory(directory)


def write_text(path, text):
    with writing(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)


def copy(src, dst):
    with writing(dst) as tmp:
        shutil.copyfile(src, tmp)


def remove_stale_temporaries(directory):
    """Delete what killed writers left in `directory`; returns the names removed. Only call
    it while no other process writes there (the trainer holds the output-dir lock)."""
    removed = []
    for name in sorted(os.listdir(directory)):
        if is_temporary(name) and os.path.isfile(os.path.join(directory, name)):
            os.remove(os.path.join(directory, name))
            removed.append(name)
    return removed
