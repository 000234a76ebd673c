"""Datasets: ImageFolder pipelines and the built-in digits data."""
from .digits import ensure_digits
from .pipeline import DataError, ImageFolderSplit

__all__ = ["ensure_digits", "ImageFolderSplit", "DataError"]
