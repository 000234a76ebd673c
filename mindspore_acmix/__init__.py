"""MindSpore implementation of ACmix (Pan et al., CVPR 2022)."""
from .factory import count_params, create_model
from .registry import is_model, list_models, register_model

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "is_model", "register_model", "count_params"]
