"""Object detection: RetinaNet on any registered backbone, its anchors, targets, loss and
the postprocess shared by evaluation and the exported model. See docs/detection.md."""
from .anchors import AnchorSpec, AssignCfg, InferCfg, image_targets, postprocess
from .loss import DetectionLoss
from .retinanet import (DETECTORS, FlatOutputs, RetinaFPN, RetinaHead, RetinaNet,
                        create_detector, split_outputs)

__all__ = ["AnchorSpec", "DETECTORS", "DetectionLoss", "RetinaFPN", "RetinaHead", "RetinaNet",
           "AssignCfg", "InferCfg", "create_detector", "image_targets", "postprocess", "split_outputs", "FlatOutputs"]
