"""Network layers."""
from .acmix import ACmix

__all__ = ["ACmix"]
