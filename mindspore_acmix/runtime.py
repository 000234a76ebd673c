"""Choosing the device and graph mode, shared by train.py, eval.py and export.py."""
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
    if device == "Ascend":
        ms.set_context(jit_config={"jit_level": "O2"})  # graph sinking, Ascend only
    return device
