"""Semantic segmentation: segmentors (backbone + neck + decode head), their loss and
inference modes. See docs/segmentation.md."""
from .heads import FCNHead, FPNHead, UPerHead
from .inference import SegInferencer, resize_logits
from .loss import SegmentationLoss
from .necks import FPN
from .segmentor import HEADS, Segmentor, create_segmentor

__all__ = ["FCNHead", "FPN", "FPNHead", "HEADS", "SegInferencer", "SegmentationLoss",
           "Segmentor", "UPerHead", "create_segmentor", "resize_logits"]
