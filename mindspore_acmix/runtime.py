"""Choosing the device and graph mode, and where MindSpore may write, shared by train.py,
eval.py and export.py."""
import contextlib
import os
import shutil
import tempfile

import mindspore as ms

DEVICES = ("Ascend", "GPU", "CPU")


def available_device():
    """The first of Ascend, GPU, CPU that this MindSpore install can use."""
    from mindspore import device_context
    for name in DEVICES:
        if getattr(device_context, name.lower()).is_available():
            return name
    return "CPU"


def setup_runtime(device="auto", mode="graph"):
    """Set the device and execution mode; returns the device name in use."""
    if device == "auto":
        device = available_device()
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    ms.set_device(device)
    return device


def jit_level(device=None):
    """The compile level for ms.jit(..., jit_level=...), where MindSpore 2.10 reads it (its
    set_context(jit_config=...) is deprecated, and jit_level "O2" with it; 2.10 documents
    "O0", the default, and "O1"): "O1" (common optimizations plus automatic operator fusion,
    what graph-kernel fusion became) on Ascend, "O0" elsewhere."""
    return "O1" if (device or ms.get_context("device_target")) == "Ascend" else "O0"


@contextlib.contextmanager
def working_directory(path=None):
    """Run inside `path` (created; removed afterwards if left empty), or inside a temporary
    folder removed afterwards. MindSpore writes into the current directory (rank_0/om/
    analyze_fail.ir after a failed graph compile, abnormal_image.jpg for an image its decoder
    rejects, rewritten_network/ for AMP O1): the user's directory is not the place for them.
    Every path the caller holds must be absolute before entering."""
    previous = os.getcwd()
    scratch = path is None
    path = tempfile.mkdtemp(prefix="mindspore-acmix-") if scratch else path
    os.makedirs(path, exist_ok=True)
    os.chdir(path)
    try:
        yield path
    finally:
        os.chdir(previous)
        if scratch:
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.rmdir(path)  # only succeeds when nothing was written
