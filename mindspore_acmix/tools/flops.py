"""Parameters and multiply-accumulates (MACs) of a registered model, per stage and per
layer type; GFLOPs are MACs / 1e9, as the ACmix paper and the official Swin `flops()`
count them.

    python -m mindspore_acmix.tools.flops swin_acmix_tiny [--image-size 224]
    python -m mindspore_acmix.tools.flops --markdown          # table of every model
    python -m mindspore_acmix.tools.flops san10 --convention san   # SAN's own counter
    python -m mindspore_acmix.tools.flops swin_acmix_tiny --head upernet   # a segmentor
    python -m mindspore_acmix.tools.flops --markdown --head all    # every recipe's segmentor
    python -m mindspore_acmix.tools.flops pvt_acmix_tiny --detector retinanet   # a detector
    python -m mindspore_acmix.tools.flops --markdown --detector all     # every recipe's detector

A segmentor (`--head semantic_fpn|upernet`, the model then being its backbone) is counted in
inference mode at 512x512 (Semantic FPN) or 512x2048 (UperNet), as the PVT and Swin papers
report them: backbone, neck and decode head; the auxiliary head, which inference never runs,
has parameters (counted, as the Swin paper does) but no MACs. Its rows are the segmentor's
parts. To keep 512x2048 within minutes on a CPU, convolutions and linear layers return zeros
of their output shape instead of computing (`shape_only`): their MACs follow from shapes.

A detector (`--detector retinanet`, 80 COCO classes) is counted the same way (shape_only) at
800x1280 (height x width, the "1280x800" of detection papers): backbone, FPN with its extra
levels, and the head on every level; anchors, decoding and NMS are not counted. A full
PyNative pass at that size computes every convolution of the head on ~1e5 locations (minutes
on a CPU, and more under load); with shape_only the pass takes seconds, the MACs unchanged.

How it counts: one PyNative forward pass of a batch-1 zero image with a forward hook on
every cell that has a rule below; each rule turns the cell's input/output shapes and
its configuration into MACs of one layer type:

- conv: Conv2d, out_elements * in_channels / groups * kh * kw;
- linear: Dense, out_elements * in_features;
- attention: the attention products, which are not cells: logits q.k and the
  softmax-weighted sum of v, each queries * keys * channels (Swin: the keys of the
  window; PVT: the spatially reduced tokens). ACmix-ResNet's window of k_att**2 keys
  has a third product, the positional relation q.(pe_i - pe_j), counted as SASA counts
  its q.r (the official code adds it to k before one product; counting it apart is
  what reproduces the paper's 2.3 / 2.9 / 3.6 G, see the notes' section 2.5);
- acmix_conv: ACmix's convolution path (fc over the 3*heads maps, then the grouped
  k_conv x k_conv dep_conv), counted by the ACmix layer's rule;
- norm: LayerNorm, one per element, as the official Swin `flops()` does. BatchNorm is
  not counted: at inference it folds into the preceding convolution.

- attention (SAN): SAN's aggregation, output elements * k**2 (the weighted sum over
  the window); SAN-ACmix's convolution path goes to acmix_conv as for ACmix.

Softmax, activations, residual adds, pooling and the relative position bias add are
not counted (nor are they by the official code or the paper).

`convention="san"` (`--convention san`) counts instead as SAN's own counter does
(hszhao/SAN util/complexity.py, which gives the FLOPs of SAN's README and of the ACmix
paper's SAN rows): a convolution's MACs plus one per output element for its bias;
BatchNorm 2 per element (norm); ReLU one per element and max / average pooling one per
input element (elementwise); SAN's subtraction (pairwise relations) one per output element
and aggregation k**2 per output element (attention); Dense in * out, no bias. Only SAN is
meant to be read that way; the default is the MAC count above.
"""
import argparse
import contextlib
import json
import sys

import numpy as np
import mindspore as ms
from mindspore import Tensor, nn, ops

from ..checks import ceil_div
from ..detection import DETECTORS, create_detector
from ..factory import count_params, create_model, list_models
from ..segmentation import HEADS, create_segmentor
from ..layers.acmix import ACmix
from ..layers.san import SAM, SAMACmix
from ..layers.window_attention import CONV_KERNEL, WindowAttention, WindowAttentionACmix
from ..models.pvt import PVTAttention, PVTAttentionACmix
from ..models.san import GlobalAvgPool2d

CATEGORIES = ("conv", "linear", "attention", "acmix_conv", "norm", "elementwise")
CONVENTIONS = ("macs", "san")


def _size(shape):
    return int(np.prod(shape))


def token_conv_path_macs(dim, num_heads, tokens):
    """fc (3*heads -> k**2 per head-dim index and token) plus the grouped dep_conv
    (k**2 inputs per group, k x k kernel, dim outputs per token)."""
    kk = CONV_KERNEL * CONV_KERNEL
    return tokens * (3 * num_heads * kk * (dim // num_heads) + dim * kk * kk)


def _conv(cell, inputs, output):
    in_per_group = cell.in_channels // cell.group
    kh, kw = cell.kernel_size
    return {"conv": _size(output.shape) * in_per_group * kh * kw}


def _dense(cell, inputs, output):
    return {"linear": _size(output.shape) * cell.in_channels}


def _layer_norm(cell, inputs, output):
    return {"norm": _size(inputs[0].shape)}


def _acmix(cell, inputs, output):
    b, c, ho, wo = output.shape
    h, w = inputs[0].shape[2], inputs[0].shape[3]
    kc2 = cell.kernel_conv ** 2
    fc = b * kc2 * cell.head_dim * h * w * 3 * cell.head
    dep_conv = b * c * ho * wo * kc2 * kc2
    return {"attention": 3 * b * c * ho * wo * cell.kernel_att ** 2,
            "acmix_conv": fc + dep_conv}


def _window_attention(cell, inputs, output):
    b, h, w, c = output.shape
    wh, ww = cell.window_size
    return {"attention": 2 * b * h * w * wh * ww * c}


def _window_attention_acmix(cell, inputs, output):
    b, h, w, c = output.shape
    macs = _window_attention(cell, inputs, output)
    macs["acmix_conv"] = b * token_conv_path_macs(c, cell.num_heads, h * w)
    return macs


def _pvt_map(cell, inputs):
    """(h, w) of a PVT attention's token map: the call's (dense mode: any size) or the
    build resolution (classification calls it with x alone)."""
    if len(inputs) >= 3 and inputs[1] is not None:
        return inputs[1], inputs[2]
    return cell.resolution


def _pvt_attention(cell, inputs, output):
    b, n, c = output.shape
    h, w = _pvt_map(cell, inputs)
    keys = n if cell.sr_ratio == 1 else (h // cell.sr_ratio) * (w // cell.sr_ratio)
    return {"attention": 2 * b * n * keys * c}


def _pvt_attention_acmix(cell, inputs, output):
    b, _, c = output.shape
    h, w = _pvt_map(cell, inputs)
    macs = _pvt_attention(cell, inputs, output)
    macs["acmix_conv"] = b * token_conv_path_macs(c, cell.num_heads, h * w)
    return macs


def _sam(cell, inputs, output):
    return {"attention": _size(output.shape) * cell.kernel_size ** 2}  # aggregation


def _sam_acmix(cell, inputs, output):
    """Aggregation plus design A's convolution path: fc mixes the P pieces into kc**2 maps
    per weight-sharing group and position, dep_conv is a grouped kc x kc convolution."""
    b, c, ho, wo = output.shape
    h, w = inputs[0].shape[2], inputs[0].shape[3]
    kc2 = cell.dep_conv.kernel_size[0] * cell.dep_conv.kernel_size[1]
    fc = b * kc2 * cell.fc.in_channels * cell.dep_conv.group * h * w
    dep_conv = b * c * ho * wo * kc2 * kc2
    macs = _sam(cell, inputs, output)
    macs["acmix_conv"] = fc + dep_conv
    return macs


def _conv_with_bias(cell, inputs, output):
    macs = _conv(cell, inputs, output)
    if cell.has_bias:
        macs["conv"] += _size(output.shape)
    return macs


def _batch_norm(cell, inputs, output):
    return {"norm": 2 * _size(inputs[0].shape)}


def _per_output(cell, inputs, output):
    return {"elementwise": _size(output.shape)}


def _per_input(cell, inputs, output):
    return {"elementwise": _size(inputs[0].shape)}


def _san_sam(cell, inputs, output):
    """SAN's counter: aggregation plus, in pairwise SAMs, the two subtractions (the
    relations q_i - k_j, rel_planes x k**2 per position, and those of the batch-1 position
    encoding, 2 x k**2 per position)."""
    macs = _sam(cell, inputs, output)
    if cell.sa_type == 0:
        b, _, h, w = output.shape
        macs["attention"] += (b * cell.conv1.out_channels + 2) * cell.kernel_size ** 2 * h * w
    return macs


def _san_sam_acmix(cell, inputs, output):
    macs = _sam_acmix(cell, inputs, output)
    macs["attention"] = _san_sam(cell, inputs, output)["attention"]
    return macs


# cell class -> (rule, children the rule counts itself)
RULES = {
    nn.Conv2d: (_conv, ()),
    nn.Dense: (_dense, ()),
    nn.LayerNorm: (_layer_norm, ()),
    ACmix: (_acmix, ("fc", "dep_conv")),
    WindowAttention: (_window_attention, ()),
    WindowAttentionACmix: (_window_attention_acmix, ("fc", "dep_conv")),
    PVTAttention: (_pvt_attention, ()),
    PVTAttentionACmix: (_pvt_attention_acmix, ("fc", "dep_conv")),
    SAM: (_sam, ()),
    SAMACmix: (_sam_acmix, ("fc", "dep_conv")),
}
# convention "san": these rules replace or add to RULES
SAN_RULES = {
    nn.Conv2d: (_conv_with_bias, ()),
    nn.BatchNorm2d: (_batch_norm, ()),
    nn.ReLU: (_per_output, ()),
    nn.MaxPool2d: (_per_input, ()),
    nn.AvgPool2d: (_per_input, ()),
    GlobalAvgPool2d: (_per_input, ()),
    SAM: (_san_sam, ()),
    SAMACmix: (_san_sam_acmix, ("fc", "dep_conv")),
}


def register_rule(cls, rule, owned=()):
    """Count cells of `cls` with `rule(cell, inputs, output) -> {category: MACs}`; the
    children named in `owned` are then not counted on their own."""
    RULES[cls] = (rule, tuple(owned))


def _rules(convention):
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    return {**RULES, **SAN_RULES} if convention == "san" else RULES


def _rule_for(cell, rules):
    for klass in type(cell).__mro__:
        if klass in rules:
            return rules[klass]
    return None


def stage_of(net, name):
    """Row of the table for a cell or parameter name: its top-level child (PVT's block1,
    ResNet's layer1), or one item of it when the child is a list of stages that are
    themselves lists of blocks (Swin's layers.0)."""
    if not name:
        return "(model)"
    parts = name.split(".")
    top = getattr(net, parts[0], None)
    if isinstance(top, nn.CellList) and len(parts) > 1 and any(
            isinstance(c, nn.CellList) for _, c in top[int(parts[1])].cells_and_names()):
        return ".".join(parts[:2])
    return parts[0]


def _conv_output_shape(cell, shape):
    """Output shape of nn.Conv2d `cell` (any pad_mode) on an NCHW input of `shape`."""
    size = []
    for axis in (0, 1):
        n, k, s, d = shape[2 + axis], cell.kernel_size[axis], cell.stride[axis], \
            cell.dilation[axis]
        if cell.pad_mode == "same":
            size.append(ceil_div(n, s))
            continue
        pad = cell.padding if isinstance(cell.padding, int) else sum(
            cell.padding[2 * axis:2 * axis + 2]) / 2
        pad = 0 if cell.pad_mode == "valid" else pad
        size.append(int((n + 2 * pad - d * (k - 1) - 1) // s + 1))
    return (shape[0], cell.out_channels) + tuple(size)


def _zeros_like_output(cell):
    if isinstance(cell, nn.Conv2d):
        def construct(x):
            return ops.zeros(_conv_output_shape(cell, x.shape), x.dtype)
    else:
        def construct(x):
            return ops.zeros(tuple(x.shape[:-1]) + (cell.out_channels,), x.dtype)
    return construct


@contextlib.contextmanager
def shape_only(net):
    """Within the block, every Conv2d and Dense of `net` returns zeros of its output shape
    without computing: shapes, hence MACs, are unchanged (no shape here depends on values)."""
    patched = [cell for _, cell in net.cells_and_names() if isinstance(cell, (nn.Conv2d, nn.Dense))]
    for cell in patched:
        object.__setattr__(cell, "construct", _zeros_like_output(cell))
    try:
        yield net
    finally:
        for cell in patched:
            object.__delattr__(cell, "construct")


def count_macs(net, input_shape=(1, 3, 224, 224), convention="macs", fast=False):
    """{stage: {category: MACs}} in order of execution, from a PyNative forward pass of
    zeros of `input_shape`, counted by `convention` (see the module docstring); `fast`:
    convolutions and linear layers skip their arithmetic (shape_only)."""
    rules = _rules(convention)
    per_stage = {}
    handles, owned_prefixes = [], []

    def hook_for(name, rule):
        def hook(cell, inputs, output):
            stage = per_stage.setdefault(stage_of(net, name), dict.fromkeys(CATEGORIES, 0))
            for category, macs in rule(cell, inputs, output).items():
                stage[category] += int(macs)
        return hook

    for name, cell in net.cells_and_names():
        if any(name == p or name.startswith(p + ".") for p in owned_prefixes):
            continue
        found = _rule_for(cell, rules)
        if found is None:
            continue
        rule, owned = found
        owned_prefixes.extend(f"{name}.{child}" if name else child for child in owned)
        handles.append(cell.register_forward_hook(hook_for(name, rule)))
    mode = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE)  # forward hooks only run in PyNative
    try:
        net.set_train(False)
        with shape_only(net) if fast else contextlib.nullcontext():
            net(Tensor(np.zeros(input_shape, np.float32)))
    finally:
        ms.set_context(mode=mode)
        for handle in handles:
            handle.remove()
    return per_stage


def params_per_stage(net):
    stages = {}
    for p in net.trainable_params():
        key = stage_of(net, p.name)
        stages[key] = stages.get(key, 0) + int(p.size)
    return stages


def build(name, image_size):
    """The model at `image_size`; models built for a fixed size take it as img_size."""
    try:
        return create_model(name, img_size=image_size)
    except TypeError as exc:
        if "img_size" not in str(exc):
            raise
        return create_model(name)


# the papers' input sizes for segmentors: PVT's Semantic FPN table, Swin's UperNet table
SEGMENTOR_SIZES = {"semantic_fpn": (512, 512), "upernet": (512, 2048)}


# the papers' input size for detectors, (height, width): "1280x800"
DETECTOR_SIZE = (800, 1280)


def profile(name, image_size=224, convention="macs", head=None, detector=None):
    """(table rows, summary) of a registered model, or with `head` of the segmentor on that
    backbone (150 classes, ADE20K's), or with `detector` of the detector on it (80 classes,
    COCO's); image_size: an int (square) or (height, width). summary is {model, head,
    detector, image_size, convention, params, macs, gflops, per-category MACs}."""
    _rules(convention)  # a bad convention fails before the model is built
    if head is not None and detector is not None:
        raise ValueError("give a segmentation head or a detector, not both")
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    if detector is not None:
        net = create_detector(name, head=detector, num_classes=80)
        macs = count_macs(net, (1, net.in_chans, height, width), convention, fast=True)
    elif head is None:
        net = build(name, height)
        macs = count_macs(net, (1, 3, height, width), convention)
    else:
        net = create_segmentor(name, head=head)
        macs = count_macs(net, (1, net.in_chans, height, width), convention, fast=True)
    params = params_per_stage(net)
    rows = []
    for stage in list(macs) + [s for s in params if s not in macs]:
        cats = macs.get(stage, dict.fromkeys(CATEGORIES, 0))
        rows.append((stage, params.get(stage, 0), cats))
    totals = {c: sum(m[c] for m in macs.values()) for c in CATEGORIES}
    total = sum(totals.values())
    summary = {"model": name, "head": head, "detector": detector,
               "image_size": height if height == width else [height, width],
               "convention": convention, "params": count_params(net),
               "macs": total, "gflops": round(total / 1e9, 4),
               "macs_by_type": totals}
    return rows, summary


def format_table(rows, summary):
    header = f"{'stage':<16}{'params':>12}" + "".join(f"{c:>12}" for c in CATEGORIES) \
        + f"{'GMACs':>10}"
    lines = [header, "-" * len(header)]
    for stage, params, cats in rows:
        lines.append(f"{stage:<16}{params:>12,}" + "".join(f"{cats[c] / 1e6:>11.1f}M"
                                                           for c in CATEGORIES)
                     + f"{sum(cats.values()) / 1e9:>10.4f}")
    totals = summary["macs_by_type"]
    lines.append("-" * len(header))
    lines.append(f"{'total':<16}{summary['params']:>12,}"
                 + "".join(f"{totals[c] / 1e6:>11.1f}M" for c in CATEGORIES)
                 + f"{summary['macs'] / 1e9:>10.4f}")
    return "\n".join(lines)


# published Params / FLOPs at 224: the ACmix paper's table for the ACmix models, the base
# models' own papers / repositories for the baselines (SAN's README for ResNet-26/38/50,
# PVT v1, Swin)
PUBLISHED = {"acmix_resnet26": "10.6M / 2.3G", "acmix_resnet38": "14.6M / 2.9G",
         "acmix_resnet50": "18.6M / 3.6G", "resnet26": "13.7M / 2.4G",
         "resnet38": "19.6M / 3.2G", "resnet50": "25.6M / 4.1G",
         "pvt_acmix_tiny": "13M / 2.0G", "pvt_acmix_small": "25M / 3.9G",
         "pvt_tiny": "13.2M / 1.9G", "pvt_small": "24.5M / 3.8G",
         "swin_acmix_tiny": "30M / 4.6G", "swin_acmix_small": "51M / 9.0G",
         "swin_tiny": "28M / 4.5G", "swin_small": "50M / 8.7G",
         "san10_pairwise": "10.5M / 2.2G", "san15_pairwise": "14.1M / 3.0G",
         "san19_pairwise": "17.6M / 3.8G", "san10": "11.8M / 1.9G", "san15": "16.2M / 2.6G",
         "san19": "20.5M / 3.3G", "san_acmix10": "12.1M / 1.9G",
         "san_acmix15": "16.6M / 2.7G", "san_acmix19": "21.2M / 3.4G"}


# published Params / FLOPs of segmentors (150 classes): the PVT v1 paper's Semantic FPN
# table (params; FLOPs at 512x512 as the PVT v2 paper lists them), the Swin paper's UperNet
# table (512x2048, params with the auxiliary head)
PUBLISHED_SEGMENTORS = {("resnet50", "semantic_fpn"): "28.5M / 45.6G",
                        ("pvt_tiny", "semantic_fpn"): "17.0M / 33.2G",
                        ("pvt_small", "semantic_fpn"): "28.2M / 44.5G",
                        ("swin_tiny", "upernet"): "60M / 945G",
                        ("swin_small", "upernet"): "81M / 1038G"}
# the recipes' segmentors (configs/ade20k), in the order of the docs' table
SEGMENTORS = [("resnet50", "semantic_fpn"), ("acmix_resnet50", "semantic_fpn"),
              ("pvt_tiny", "semantic_fpn"), ("pvt_small", "semantic_fpn"),
              ("pvt_acmix_tiny", "semantic_fpn"), ("pvt_acmix_small", "semantic_fpn"),
              ("swin_tiny", "upernet"), ("swin_small", "upernet"),
              ("swin_acmix_tiny", "upernet"), ("swin_acmix_small", "upernet")]


# published Params / FLOPs of RetinaNet 1x (80 classes): the PVT v1 paper's Table 3 lists
# parameters only (no FLOPs); ResNet-50's 37.7M counts mmdet's trainable parameters (stem and
# stage 1 frozen, docs/detection.md)
PUBLISHED_DETECTORS = {("resnet50", "retinanet"): "37.7M / -",
                       ("pvt_tiny", "retinanet"): "23.0M / -",
                       ("pvt_small", "retinanet"): "34.2M / -"}
# the recipes' detectors (configs/coco), in the order of the docs' table
DETECTOR_RECIPES = [(b, "retinanet") for b in (
    "resnet50", "acmix_resnet50", "pvt_tiny", "pvt_acmix_tiny", "pvt_small", "pvt_acmix_small",
    "swin_tiny", "swin_acmix_tiny")]


def markdown_table(names, image_size, convention="macs", head=None, detector=None):
    """A Markdown table of models (names), of segmentors ((backbone, head) pairs, each at
    its head's paper size unless image_size is given) or, with `detector`, of detectors
    ((backbone, detector) pairs or backbone names, at DETECTOR_SIZE unless image_size)."""
    if detector is not None:
        return _detector_table(names, image_size or DETECTOR_SIZE, convention, detector)
    unit = "GMACs" if convention == "macs" else "GFLOPs (SAN's counter)"
    lines = [f"| Model | Input | Params | {unit} | Published Params / FLOPs |",
             "|---|---|---|---|---|"]
    for entry in names:
        name, seg_head = entry if isinstance(entry, tuple) else (entry, head)
        size = image_size or SEGMENTOR_SIZES.get(seg_head, 224)
        _, s = profile(name, size, convention, seg_head)
        h, w = (size, size) if isinstance(size, int) else size
        label = f"{seg_head} + {name}" if seg_head else name
        published = PUBLISHED_SEGMENTORS.get((name, seg_head), "-") if seg_head \
            else PUBLISHED.get(name, "-")
        lines.append(f"| {label} | {h}x{w} | {s['params'] / 1e6:.2f}M | "
                     f"{s['gflops']:.2f} | {published} |")
    return "\n".join(lines)


def _detector_table(names, size, convention, detector):
    unit = "GMACs" if convention == "macs" else "GFLOPs (SAN's counter)"
    h, w = (size, size) if isinstance(size, int) else size
    lines = [f"| Detector | Input (h x w) | Params | {unit} | backbone / neck / head {unit} "
             "| Published Params / FLOPs |", "|---|---|---|---|---|---|"]
    for entry in names:
        name, det = entry if isinstance(entry, tuple) else (entry, detector)
        rows, s = profile(name, size, convention, detector=det)
        parts = " / ".join(f"{sum(cats.values()) / 1e9:.2f}" for _, _, cats in rows
                           if sum(cats.values()))
        lines.append(f"| {det} + {name} | {h}x{w} | {s['params'] / 1e6:.2f}M | "
                     f"{s['gflops']:.2f} | {parts} | "
                     f"{PUBLISHED_DETECTORS.get((name, det), '-')} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m mindspore_acmix.tools.flops",
        description="Parameters and MACs per stage and layer type of a registered model. "
                    "The last line printed is a JSON summary.")
    parser.add_argument("model", nargs="?", help="registered model name, e.g. swin_acmix_tiny")
    parser.add_argument("--image-size", type=int, nargs="+", metavar="SIZE",
                        help="SIZE or HEIGHT WIDTH (default: 224; segmentors: 512x512 for "
                             "semantic_fpn, 512x2048 for upernet)")
    parser.add_argument("--head", choices=HEADS + ("all",),
                        help="count the segmentor with this decode head on MODEL (all, with "
                             "--markdown: every recipe's segmentor)")
    parser.add_argument("--detector", choices=DETECTORS + ("all",),
                        help="count the detector on MODEL at 800x1280 (all, with --markdown: "
                             "every recipe's detector)")
    parser.add_argument("--markdown", action="store_true",
                        help="print a Markdown table of every registered model (or of MODEL)")
    parser.add_argument("--convention", choices=CONVENTIONS, default="macs",
                        help="macs: multiply-accumulates of convolutions, linear layers, "
                             "attention and LayerNorm (the default, the papers' FLOPs); san: "
                             "SAN's util/complexity.py rules, which also count biases, "
                             "BatchNorm, ReLU, pooling and SAN's subtraction (SAN's README)")
    args = parser.parse_args(argv)
    size = args.image_size
    if size is not None and (len(size) > 2 or min(size) < 1):
        parser.error("--image-size takes one or two positive numbers")
    size = None if size is None else (size[0] if len(size) == 1 else tuple(size))
    if not args.model and not args.markdown:
        parser.error("give a MODEL or --markdown")
    if args.head == "all" and (args.model or not args.markdown):
        parser.error("--head all goes with --markdown and no MODEL")
    if args.detector == "all" and (args.model or not args.markdown):
        parser.error("--detector all goes with --markdown and no MODEL")
    if args.head and args.detector:
        parser.error("give --head or --detector, not both")
    try:
        if args.markdown:
            if args.head == "all":
                names = SEGMENTORS
            elif args.detector == "all":
                names = DETECTOR_RECIPES
            else:
                names = [args.model] if args.model else list_models()
            print(markdown_table(names, size, args.convention, args.head, args.detector))
            return 0
        default = DETECTOR_SIZE if args.detector else SEGMENTOR_SIZES.get(args.head, 224)
        size = size or default
        rows, summary = profile(args.model, size, args.convention, args.head, args.detector)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    h, w = (size, size) if isinstance(size, int) else size
    what = f"{args.head or args.detector} on {args.model}" if args.head or args.detector \
        else args.model
    print(f"{what} at {h}x{w} ({args.convention} convention, by layer type)")
    print(format_table(rows, summary))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
