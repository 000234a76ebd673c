"""MindSpore implementation of ACmix (Pan et al., CVPR 2022)."""
__version__ = "0.1.0"
__all__ = ["create_model", "create_segmentor", "create_detector", "list_models", "is_model", "register_model",
           "count_params"]

_LAZY = {"create_model": "factory", "count_params": "factory", "is_model": "registry",
         "list_models": "registry", "register_model": "registry",
         "create_segmentor": "segmentation", "create_detector": "detection"}


def __getattr__(name):
    # Importing the package does not import MindSpore: the scripts set MindSpore's log level
    # (mindspore_acmix.startup), which it reads once at import, before anything imports it.
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
