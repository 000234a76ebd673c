"""MindSpore implementation of ACmix (Pan et al., CVPR 2022).

The public API is `__all__`; its names load on first use (PEP 562), so importing the package
imports no MindSpore. Importing it sets MindSpore's log level to errors only unless GLOG_v is
already set (startup.quiet_mindspore): MindSpore reads GLOG_v once, at its own import.
"""
import importlib

from .startup import quiet_mindspore

__version__ = "0.1.0"
quiet_mindspore()

# The one table of public names: name -> the submodule that defines it.
_LAZY = {
    "create_model": "factory", "count_params": "factory", "create_segmentor": "segmentation",
    "create_detector": "detection",
    "list_models": "factory", "is_model": "factory", "register_model": "registry",
    # the ACmix layers of the four families, SAN's attention module, the shift operator
    "ACmix": "layers", "WindowAttentionACmix": "layers", "SAMACmix": "layers", "SAM": "layers",
    "PVTAttentionACmix": "models.pvt", "shift2d": "ops", "place_network": "layers",
}
__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip __getattr__
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    # What a user can reach (tab completion, dir()): the public API, not this file's helpers.
    return sorted([*__all__, "__version__"])
