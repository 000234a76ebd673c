"""SAN (Zhao, Jia and Koltun, "Exploring Self-attention for Image Recognition", CVPR 2020) and
SAN-ACmix, as in the official hszhao/SAN `model/san.py`.

Names mirror the official modules (conv_in, bn_in, conv0..4, bn0..4, layer0..4, each block's
bn1, sam, bn2, conv; fc), so official checkpoints map one to one (mindspore_acmix.convert).
SAN-ACmix replaces every block's SAM by SAMACmix (design A of the golden fixtures' README: the
SAM's own q, k, v feed ACmix's shift-convolution path).
"""
from mindspore import nn

from ..checks import positive_int
from ..layers.conv import SameConv2d
from ..layers.san import SAM, SAMACmix
from ..registry import register_model
from .base import Backbone, feature, model_cfg, paper

NUM_STAGES = 5
# the width of stage i is base_planes * WIDTH_MULTIPLIERS[i]
WIDTH_MULTIPLIERS = (1, 4, 8, 16, 32)


def conv1x1(in_planes, out_planes, has_bias=False):
    return SameConv2d(in_planes, out_planes, 1, has_bias=has_bias)


class GlobalAvgPool2d(nn.Cell):
    """(N, C, H, W) -> (N, C), the official avgpool + flatten; a mean rather than
    AdaptiveAvgPool2d, which ONNX export lacks."""

    def construct(self, x):
        return x.mean(axis=(2, 3))


class Bottleneck(nn.Cell):
    """Pre-activation SAN block: x + conv(relu(bn2(sam(relu(bn1(x)))))), no ReLU after the add.

    `acmix` swaps the SAM for SAMACmix; `sam_kwargs` go to the SAM (for example the operator
    implementation). The official block supports stride 1 only (its identity is never
    downsampled), and so does this one.
    """

    def __init__(self, sa_type, in_planes, rel_planes, mid_planes, out_planes, share_planes=8,
                 kernel_size=7, stride=1, acmix=False, **sam_kwargs):
        super().__init__()
        if stride != 1 or in_planes != out_planes:
            raise ValueError(
                "the SAN Bottleneck adds its input unchanged, so it needs stride 1 and "
                f"in_planes == out_planes, got stride={stride!r}, in_planes={in_planes!r}, "
                f"out_planes={out_planes!r}")
        sam = SAMACmix if acmix else SAM
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.sam = sam(sa_type, in_planes, rel_planes, mid_planes, share_planes, kernel_size,
                       stride, **sam_kwargs)
        self.bn2 = nn.BatchNorm2d(mid_planes)
        self.conv = conv1x1(mid_planes, out_planes, has_bias=True)
        self.relu = nn.ReLU()

    def construct(self, x):
        out = self.relu(self.bn1(x))
        out = self.relu(self.bn2(self.sam(out)))
        return x + self.conv(out)


class SAN(Backbone):
    """The official SAN: a 1x1 stem, then five stages of (2x2 max-pool, 1x1 transition
    convolution, `layers[i]` Bottlenecks with `kernels[i]` x `kernels[i]` attention, BatchNorm,
    ReLU), global average pooling and a linear classifier.

    Stage widths are base_planes * (1, 4, 8, 16, 32); every block of a stage of width C uses
    rel_planes C // 16, mid_planes C // 4 and `share_planes`. The defaults (64, 8) are the
    official model's. sa_type 0 is pairwise, 1 patchwise attention; `acmix` builds SAN-ACmix.
    Extra keyword arguments go to every SAM (san_impl, conv_impl). `in_chans` and `drop_rate`
    (dropout before fc, 0 as officially) follow timm; feature_info lists the five stage
    outputs (after each stage's BatchNorm and ReLU, reductions 2 to 32).

    Initialisation: PyTorch's defaults, as the official code keeps them (MindSpore's Conv2d
    and Dense defaults are the same: Kaiming uniform with a = sqrt(5), bias uniform in
    +-1/sqrt(fan_in)); BatchNorm 1 and 0.

    The attention pads each window by reflection, which needs kernel // 2 < H and < W at
    every stage; after five 2x2 poolings stage 4 is H // 32, so 7x7 kernels need inputs of at
    least 128x128: `min_input_size`, which the features_only backbone names when an input is
    smaller (the classifier's SAM names its own minimum).
    """

    classifier_name = "fc"

    def __init__(self, sa_type, layers, kernels, num_classes=1000, base_planes=64,
                 share_planes=8, acmix=False, in_chans=3, drop_rate=0.0, **sam_kwargs):
        super().__init__()
        if sa_type not in (0, 1) or isinstance(sa_type, bool):
            raise ValueError(f"sa_type must be 0 (pairwise) or 1 (patchwise), got {sa_type!r}")
        for name, seq in (("layers", layers), ("kernels", kernels)):
            if not isinstance(seq, (list, tuple)) or len(seq) != NUM_STAGES:
                raise ValueError(f"{name} must list {NUM_STAGES} values, one per stage, "
                                 f"got {seq!r}")
            for value in seq:
                positive_int(name, value)
        if any(k % 2 == 0 for k in kernels):
            raise ValueError(f"kernels must be odd, got {list(kernels)!r}")
        for name, value in (("base_planes", base_planes), ("share_planes", share_planes),
                            ("in_chans", in_chans)):
            positive_int(name, value)
        if base_planes % 16:
            raise ValueError("base_planes must be a multiple of 16 (every block uses "
                             f"rel_planes = width // 16), got {base_planes!r}")
        self.sa_type, self.acmix = sa_type, bool(acmix)
        widths = [base_planes * m for m in WIDTH_MULTIPLIERS]
        self.conv_in, self.bn_in = conv1x1(in_chans, base_planes), nn.BatchNorm2d(base_planes)
        previous = base_planes
        for i, (width, blocks, kernel) in enumerate(zip(widths, layers, kernels)):
            # official attribute names: conv0/bn0/layer0 ... conv4/bn4/layer4
            setattr(self, f"conv{i}", conv1x1(previous, width))
            setattr(self, f"bn{i}", nn.BatchNorm2d(width))
            setattr(self, f"layer{i}", nn.SequentialCell([
                Bottleneck(sa_type, width, width // 16, width // 4, width, share_planes,
                           kernel, acmix=acmix, **sam_kwargs) for _ in range(blocks)]))
            previous = width
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.avgpool = GlobalAvgPool2d()
        self.feature_info = [feature(width, 2 ** (i + 1), f"layer{i}")
                             for i, width in enumerate(widths)]
        # stage i runs at floor(H / 2**(i+1)) (2x2 max-pools round down); its windows
        # reflect-pad by kernel // 2, which needs a side of at least kernel // 2 + 1
        self.min_input_size = max(2 ** (i + 1) * (getattr(self, f"layer{i}")[0].sam.padding + 1)
                                  for i in range(NUM_STAGES))
        self._init_head(widths[-1], num_classes, drop_rate)

    def stage_outputs(self, x):
        """The output of every stage, (stage 0, ..., stage 4)."""
        x0 = self.relu(self.bn_in(self.conv_in(x)))
        x0 = self.relu(self.bn0(self.layer0(self.conv0(self.pool(x0)))))
        x1 = self.relu(self.bn1(self.layer1(self.conv1(self.pool(x0)))))
        x2 = self.relu(self.bn2(self.layer2(self.conv2(self.pool(x1)))))
        x3 = self.relu(self.bn3(self.layer3(self.conv3(self.pool(x2)))))
        x4 = self.relu(self.bn4(self.layer4(self.conv4(self.pool(x3)))))
        return x0, x1, x2, x3, x4

    def forward_intermediates(self, x):
        return self.select_features(self.stage_outputs(x))

    def forward_features(self, x):
        return self.stage_outputs(x)[-1]

    def pool_features(self, x):
        return self.avgpool(x)


# block counts and attention kernels of SAN's config/imagenet/imagenet_san{10,15,19}_*.yaml
DEPTHS = {10: [2, 1, 2, 4, 1], 15: [3, 2, 3, 5, 2], 19: [3, 3, 4, 6, 3]}
KERNELS = [3, 7, 7, 7, 7]
SAN_SOURCE = "SAN (Zhao et al., CVPR 2020), hszhao/SAN model/san.py"
ACMIX_SOURCE = ("SAN-ACmix (Pan et al., CVPR 2022), design A of this project: no official "
                "code exists; hszhao/SAN model/san.py with ACmix's convolution path")
SAN_TABLE = "SAN README"
ACMIX_TABLE = "ACmix paper results table"


def san_cfg(source, published):
    return model_cfg(source, first_conv="conv_in", paper=published)


def _san(depth, sa_type, acmix, num_classes, kwargs):
    return SAN(sa_type, DEPTHS[depth], KERNELS, num_classes=num_classes, acmix=acmix, **kwargs)


@register_model(default_cfg=san_cfg(SAN_SOURCE, paper("11.8M", "1.9G", 77.1, SAN_TABLE)))
def san10(num_classes=1000, **kwargs):
    """SAN10 patchwise (the variant the ACmix paper compares with)."""
    return _san(10, 1, False, num_classes, kwargs)


@register_model(default_cfg=san_cfg(SAN_SOURCE, paper("16.2M", "2.6G", 78.0, SAN_TABLE)))
def san15(num_classes=1000, **kwargs):
    return _san(15, 1, False, num_classes, kwargs)


@register_model(default_cfg=san_cfg(SAN_SOURCE, paper("20.5M", "3.3G", 78.2, SAN_TABLE)))
def san19(num_classes=1000, **kwargs):
    return _san(19, 1, False, num_classes, kwargs)


@register_model(default_cfg=san_cfg(SAN_SOURCE, paper("10.5M", "2.2G", 74.9, SAN_TABLE)))
def san10_pairwise(num_classes=1000, **kwargs):
    return _san(10, 0, False, num_classes, kwargs)


@register_model(default_cfg=san_cfg(SAN_SOURCE, paper("14.1M", "3.0G", 76.6, SAN_TABLE)))
def san15_pairwise(num_classes=1000, **kwargs):
    return _san(15, 0, False, num_classes, kwargs)


@register_model(default_cfg=san_cfg(SAN_SOURCE, paper("17.6M", "3.8G", 76.9, SAN_TABLE)))
def san19_pairwise(num_classes=1000, **kwargs):
    return _san(19, 0, False, num_classes, kwargs)


@register_model(default_cfg=san_cfg(ACMIX_SOURCE, paper("12.1M", "1.9G", 77.6, ACMIX_TABLE)))
def san_acmix10(num_classes=1000, **kwargs):
    """SAN-ACmix-10: SAN10 patchwise with every SAM an ACmix SAM (design A)."""
    return _san(10, 1, True, num_classes, kwargs)


@register_model(default_cfg=san_cfg(ACMIX_SOURCE, paper("16.6M", "2.7G", 78.4, ACMIX_TABLE)))
def san_acmix15(num_classes=1000, **kwargs):
    return _san(15, 1, True, num_classes, kwargs)


@register_model(default_cfg=san_cfg(ACMIX_SOURCE, paper("21.2M", "3.4G", 78.7, ACMIX_TABLE)))
def san_acmix19(num_classes=1000, **kwargs):
    return _san(19, 1, True, num_classes, kwargs)
