"""Choosing the device and graph mode, and where MindSpore may write, shared by train.py,
eval.py and export.py."""
import contextlib
import os
import shutil
import tempfile

import mindspore as ms

DEVICES = ("Ascend", "GPU", "CPU")


class DeviceError(ValueError):
    """The requested device cannot be used by this MindSpore install."""


def available_device():
    """The first of Ascend, GPU, CPU that this MindSpore install can use."""
    for name in DEVICES:
        if _is_available(name):
            return name
    return "CPU"


def _is_available(name):
    from mindspore import device_context
    return getattr(device_context, name.lower()).is_available()


def setup_runtime(device="auto", mode="graph"):
    """Set the device and execution mode; returns the device name in use. DeviceError for a
    device this install cannot use (MindSpore would print a traceback and its load errors)."""
    if device == "auto":
        device = available_device()
    elif device != "CPU" and not _is_available(device):
        raise DeviceError(f"device {device} is not available to this MindSpore install (only "
                          f"{', '.join(d for d in DEVICES if d == 'CPU' or _is_available(d))} "
                          "is); use --device CPU, or device: auto to pick what is there")
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    ms.set_device(device)
    return device


def jit_level(device=None):
    """The compile level of compiled() (a Cell's JitConfig, or ms.jit's jit_level in PyNative
    mode), where MindSpore 2.10 reads it (its set_context(jit_config=...) is deprecated, and
    jit_level "O2" with it; 2.10 documents "O0", the default, and "O1"): "O1" (common
    optimizations plus automatic operator fusion, what graph-kernel fusion became) on
    Ascend, "O0" elsewhere."""
    return "O1" if (device or ms.get_context("device_target")) == "Ascend" else "O0"


def compiled(cell):
    """`cell`, compiled at jit_level() when called. In graph mode that is the Cell itself
    carrying a JitConfig: wrapping a Cell in ms.jit costs 0.2-0.35 s of host time on every
    call in MindSpore 2.10 (the digits segmentor's training step: 0.71 s called as a Cell,
    0.92-1.06 s through ms.jit, 2-core CPU); in PyNative mode, ms.jit."""
    if ms.get_context("mode") == ms.PYNATIVE_MODE:
        return ms.jit(cell, jit_level=jit_level())
    if not cell.jit_config_dict:  # MindSpore keeps the first JitConfig a Cell is given
        cell.set_jit_config(ms.JitConfig(jit_level=jit_level()))
    return cell


@contextlib.contextmanager
def working_directory(path=None):
    """Run inside `path` (created, with its parents; removed afterwards if left empty or
    after Ctrl-C), or inside a temporary folder removed afterwards. MindSpore writes into the
    current directory (rank_0/om/analyze_fail.ir after a failed graph compile,
    abnormal_image.jpg for an image its decoder rejects, rewritten_network/ for AMP O1): the
    user's directory is not the place for them.
    Every path the caller holds must be absolute before entering."""
    previous = os.getcwd()
    scratch = path is None
    path = tempfile.mkdtemp(prefix="mindspore-acmix-") if scratch else os.path.abspath(path)
    # path, then the parents made for it (an output_dir): removed again when left empty
    made, folder = [path], os.path.dirname(path)
    while not scratch and not os.path.exists(folder):
        made.append(folder)
        folder = os.path.dirname(folder)
    os.makedirs(path, exist_ok=True)
    os.chdir(path)
    interrupted = False
    try:
        yield path
    except KeyboardInterrupt:  # what MindSpore wrote then is an interrupted compile's debris
        interrupted = True
        raise
    finally:
        os.chdir(previous)
        if scratch or interrupted:
            shutil.rmtree(path, ignore_errors=True)
        for folder in made if not scratch else ():
            with contextlib.suppress(OSError):
                os.rmdir(folder)  # only succeeds when nothing was written
