"""RetinaNet (Lin et al., 2017) as mmdetection's retinanet_r50_fpn_1x, the detector PVT's
detection code runs: a features_only backbone, an FPN from its second output with P6 and
P7, and one RetinaHead shared by every level."""
import math

from mindspore import nn
from mindspore.common.initializer import Constant, Normal, XavierUniform, Zero, initializer

from ..factory import create_model
from ..layers.conv import SameConv2d
from ..models.base import no_weight_decay_names
from ..segmentation.necks import FPN
from ..segmentation.segmentor import backbone_in_chans
from .anchors import AnchorSpec, AssignCfg, InferCfg

DETECTORS = ("retinanet",)
PRIOR_PROB = 0.01  # the classification bias starts every anchor at this foreground score


class RetinaFPN(nn.Cell):
    """mmdet FPN(start_level=1, add_extra_convs='on_input', num_outs=5): the segmentation
    FPN on the backbone outputs from `start_level`, then stride-2 3x3 convolutions: the
    first on the last backbone output (P6), each further one on the level before (P7), no
    ReLU between them (relu_before_extra_convs False)."""

    def __init__(self, in_channels, out_channels=256, start_level=1, num_outs=5):
        super().__init__()
        self.start_level = start_level
        self.fpn = FPN(in_channels[start_level:], out_channels)
        extra = num_outs - (len(in_channels) - start_level)
        if extra < 0:
            raise ValueError(f"num_outs {num_outs} is fewer than the {len(in_channels) - start_level}"
                             f" backbone outputs from start_level {start_level}")
        self.extra_convs = nn.CellList([
            extra_conv(in_channels[-1] if i == 0 else out_channels, out_channels)
            for i in range(extra)])
        self.out_channels = out_channels

    def construct(self, inputs):
        outs = self.fpn(inputs[self.start_level:])
        x = inputs[-1]
        for conv in self.extra_convs:
            x = conv(x)
            outs.append(x)
        return outs


def extra_conv(in_channels, out_channels):
    """mmdet FPN's extra level: a biased 3x3 stride-2 convolution (padding 1), Xavier
    uniform weights, zero bias."""
    conv = SameConv2d(in_channels, out_channels, 3, stride=2, has_bias=True)
    conv.weight.set_data(initializer(XavierUniform(), conv.weight.shape, conv.weight.dtype))
    conv.bias.set_data(initializer(Zero(), conv.bias.shape, conv.bias.dtype))
    return conv


def normal_conv(in_channels, out_channels, bias=0.0):
    """A biased 3x3 convolution with RetinaHead's init: weights N(0, 0.01), bias `bias`."""
    conv = SameConv2d(in_channels, out_channels, 3, has_bias=True)
    conv.weight.set_data(initializer(Normal(0.01), conv.weight.shape, conv.weight.dtype))
    conv.bias.set_data(initializer(Constant(bias) if bias else Zero(), conv.bias.shape,
                                   conv.bias.dtype))
    return conv


class RetinaHead(nn.Cell):
    """mmdet RetinaHead: per branch `stacked_convs` 3x3 conv + ReLU, then a 3x3 conv to
    A * num_classes sigmoid logits (bias at PRIOR_PROB) or A * 4 box deltas; the same
    weights on every level."""

    def __init__(self, num_classes, in_channels=256, feat_channels=256, stacked_convs=4,
                 num_anchors=9):
        super().__init__()
        self.num_classes, self.num_anchors = num_classes, num_anchors

        def tower():
            layers = []
            for i in range(stacked_convs):
                layers += [normal_conv(in_channels if i == 0 else feat_channels, feat_channels),
                           nn.ReLU()]
            return nn.SequentialCell(layers) if layers else nn.Identity()

        self.cls_convs, self.reg_convs = tower(), tower()
        width = feat_channels if stacked_convs else in_channels
        self.retina_cls = normal_conv(width, num_anchors * num_classes,
                                      bias=-math.log((1 - PRIOR_PROB) / PRIOR_PROB))
        self.retina_reg = normal_conv(width, num_anchors * 4)

    def construct(self, feats):
        cls_scores, bbox_preds = [], []
        for x in feats:
            cls_scores.append(self.retina_cls(self.cls_convs(x)))
            bbox_preds.append(self.retina_reg(self.reg_convs(x)))
        return tuple(cls_scores), tuple(bbox_preds)


class RetinaNet(nn.Cell):
    """(B, C, H, W) images -> (class logits, box deltas): per pyramid level (B, A * K, h, w)
    and (B, A * 4, h, w), the raw outputs that the loss (detection/loss.py) and the shared
    postprocess (anchors.postprocess) read, and that export.py writes to MindIR. `anchors`,
    `train_cfg` and `test_cfg` hold the anchor, assignment and inference settings."""

    def __init__(self, backbone, neck, head, anchors, train_cfg=AssignCfg(),
                 test_cfg=InferCfg()):
        super().__init__()
        self.backbone, self.neck, self.bbox_head = backbone, neck, head
        self.anchors, self.train_cfg, self.test_cfg = anchors, train_cfg, test_cfg
        self.num_classes = head.num_classes
        self.in_chans = backbone_in_chans(backbone)

    def construct(self, x):
        return self.bbox_head(self.neck(self.backbone(x)))

    def no_weight_decay(self):
        """The backbone's rule (0-/1-D parameters, position tables); the detection recipes
        set no_decay_keys: [] to decay everything, as mmdet does."""
        return no_weight_decay_names(self, self.backbone.no_weight_decay_keywords)


class FlatOutputs(nn.Cell):
    """The detector with one flat output tuple (the class logits of every level, then the box
    deltas), the form export.py writes to MindIR; split_outputs undoes it."""

    def __init__(self, detector):
        super().__init__()
        self.detector = detector

    def construct(self, x):
        cls_scores, bbox_preds = self.detector(x)
        return cls_scores + bbox_preds


def split_outputs(outputs):
    """FlatOutputs' tuple -> ([class logits per level], [box deltas per level])."""
    half = len(outputs) // 2
    return list(outputs[:half]), list(outputs[half:])


def create_detector(backbone, head="retinanet", num_classes=80, fpn_channels=256,
                    stacked_convs=4, start_level=1, num_outs=5, octave_base_scale=4,
                    scales_per_octave=3, ratios=(0.5, 1.0, 2.0), pos_iou_thr=0.5,
                    neg_iou_thr=0.4, min_pos_iou=0.0, nms_pre=1000, score_thr=0.05,
                    nms_iou=0.5, max_per_img=100, **backbone_kwargs):
    """RetinaNet on the registered model `backbone` (its features_only form, built with
    `backbone_kwargs`: img_size, drop_path_rate, in_chans, ...). The defaults are mmdet's
    retinanet_r50_fpn_1x (FPN from the second backbone output, strides 8-128); small images
    take fewer levels or smaller anchors through the same arguments (see docs/detection.md)."""
    if head not in DETECTORS:
        raise ValueError(f"unknown detection head {head!r}: choose one of {', '.join(DETECTORS)}")
    for name, value in (("num_classes", num_classes), ("fpn_channels", fpn_channels),
                        ("num_outs", num_outs), ("scales_per_octave", scales_per_octave)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    net = create_model(backbone, features_only=True, **backbone_kwargs)
    chs, strides = net.feature_info.channels(), net.feature_info.reduction()
    if not 0 <= start_level < len(chs):
        raise ValueError(f"start_level {start_level} is not one of the backbone's "
                         f"{len(chs)} outputs")
    neck = RetinaFPN(chs, fpn_channels, start_level, num_outs)
    level_strides = list(strides[start_level:])
    while len(level_strides) < num_outs:
        level_strides.append(level_strides[-1] * 2)
    spec = AnchorSpec(tuple(level_strides[:num_outs]), octave_base_scale, scales_per_octave,
                      tuple(ratios))
    bbox_head = RetinaHead(num_classes, fpn_channels, fpn_channels, stacked_convs, spec.num_base)
    det = RetinaNet(net, neck, bbox_head, spec,
                    AssignCfg(pos_iou_thr, neg_iou_thr, min_pos_iou),
                    InferCfg(nms_pre, score_thr, nms_iou, max_per_img))
    det.head_name, det.backbone_name = head, backbone
    return det
