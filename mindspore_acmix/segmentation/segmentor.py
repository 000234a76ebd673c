"""Encoder-decoder segmentors: a features_only backbone, an optional neck, a decode head
and, in training, an optional auxiliary head (mmsegmentation's EncoderDecoder)."""
from mindspore import nn

from ..factory import create_model
from ..models.base import no_weight_decay_names
from .heads import FCNHead, FPNHead, UPerHead, resize
from .necks import FPN

HEADS = ("semantic_fpn", "upernet")
# the recipes' widths: Semantic FPN (mmseg fpn_r50, PVT) and UperNet (mmseg upernet, Swin)
DEFAULT_CHANNELS = {"semantic_fpn": dict(neck=256, head=128, aux=256),
                    "upernet": dict(neck=None, head=512, aux=256)}
AUX_LOSS_WEIGHT = 0.4  # the auxiliary FCN head's loss weight in Swin's UperNet recipe


class Segmentor(nn.Cell):
    """(B, C, H, W) images -> (B, num_classes, H, W) logits at the input resolution.

    In training mode (`set_train(True)`) with an auxiliary head the output is
    `(logits, aux_logits)`, both at the input resolution; inference never runs the
    auxiliary head, so an exported segmentor has none."""

    def __init__(self, backbone, decode_head, neck=None, auxiliary_head=None):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.decode_head = decode_head
        self.auxiliary_head = auxiliary_head
        self.num_classes = decode_head.num_classes
        self.in_chans = backbone_in_chans(backbone)

    def extract_feat(self, x):
        feats = self.backbone(x)
        if self.neck is not None:
            feats = self.neck(feats)
        return feats

    def construct(self, x):
        feats = self.extract_feat(x)
        size = x.shape[2:]
        logits = resize(self.decode_head(feats), size)
        if self.training and self.auxiliary_head is not None:
            return logits, resize(self.auxiliary_head(feats), size)
        return logits

    def no_weight_decay(self):
        """Full names of the parameters without weight decay: every 0-/1-D one (norms,
        biases, ACmix's rates) and the backbone's position tables."""
        return no_weight_decay_names(self, self.backbone.no_weight_decay_keywords)


def backbone_in_chans(backbone):
    cfg = getattr(backbone, "default_cfg", None)
    return cfg["input_size"][0] if cfg else 3


def _channels(value, default, name):
    value = default if value is None else value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def create_segmentor(backbone, head="semantic_fpn", num_classes=150, aux_head=None,
                     head_channels=None, neck_channels=None, aux_channels=None,
                     dropout_ratio=0.1, **backbone_kwargs):
    """Build a segmentor on the registered model `backbone` (its features_only form, built
    with `backbone_kwargs`: img_size, drop_path_rate, in_chans, out_indices, ...).

    head: "semantic_fpn" (FPN neck, 256 channels, + FPNHead, 128) or "upernet" (UPerHead,
    512); aux_head: the auxiliary FCNHead on the third output (256 channels), by default
    with UperNet only. The *_channels arguments override the recipes' widths (small
    models for small images)."""
    if head not in HEADS:
        raise ValueError(f"unknown segmentation head {head!r}: choose one of {', '.join(HEADS)}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if aux_head is None:
        aux_head = head == "upernet"
    widths = DEFAULT_CHANNELS[head]
    net = create_model(backbone, features_only=True, **backbone_kwargs)
    chs, strides = net.feature_info.channels(), net.feature_info.reduction()
    if len(chs) < (3 if aux_head else 2):
        raise ValueError(f"{head} needs at least {3 if aux_head else 2} backbone outputs, "
                         f"got {len(chs)} (out_indices)")
    index = tuple(range(len(chs)))
    neck = None
    if head == "semantic_fpn":
        neck = FPN(chs, _channels(neck_channels, widths["neck"], "neck_channels"))
        chs = [neck.out_channels] * len(chs)
        decode = FPNHead(chs, strides, num_classes,
                         _channels(head_channels, widths["head"], "head_channels"),
                         in_index=index, dropout_ratio=dropout_ratio)
    else:
        if neck_channels is not None:
            raise ValueError("neck_channels: upernet has no neck")
        decode = UPerHead(chs, num_classes, _channels(head_channels, widths["head"],
                                                      "head_channels"),
                          in_index=index, dropout_ratio=dropout_ratio)
    aux = None
    if aux_head:
        aux = FCNHead(chs, num_classes, _channels(aux_channels, widths["aux"], "aux_channels"),
                      in_index=2, dropout_ratio=dropout_ratio)
    elif aux_channels is not None:
        raise ValueError("aux_channels given without an auxiliary head (aux_head=False)")
    seg = Segmentor(net, decode, neck, aux)
    seg.head_name = head
    seg.backbone_name = backbone
    return seg
