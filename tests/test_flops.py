"""The MAC / parameter counter against the official code's own accounting and the paper."""
import json

import pytest

from mindspore_acmix.layers import ACmix, WindowAttentionACmix
from mindspore_acmix.tools import flops
from mindspore_acmix.tools.flops import count_macs, profile


def total(per_stage):
    return {c: sum(m[c] for m in per_stage.values()) for c in flops.CATEGORIES}


def test_acmix_layer_rule_counts_both_paths():
    c, heads, s, k_att = 16, 4, 8, 7
    stage = total(count_macs(ACmix(c, c, kernel_att=k_att, head=heads), (1, c, s, s)))
    d, hw = c // heads, s * s
    assert stage["conv"] == 3 * c * c * hw + 2 * d * hw  # conv1-3 and conv_p
    assert stage["attention"] == 3 * c * hw * k_att ** 2  # q.k, q.(pe_i - pe_j), sum of v
    assert stage["acmix_conv"] == 3 * heads * 9 * d * hw + c * hw * 81  # fc + dep_conv


def test_window_attention_rule_matches_the_official_flops():
    dim, heads, window, s = 24, 3, 4, 8
    stage = total(count_macs(WindowAttentionACmix(dim, window, heads), (2, s, s, dim)))
    n, nw = window * window, 2 * (s // window) ** 2
    # WindowAttention_acmix.flops(N) per window, the block's ACmix fc / group conv terms
    official = nw * (n * dim * 3 * dim + 2 * heads * n * (dim // heads) * n + n * dim * dim)
    official += 2 * (3 * dim * s * s * 9 + 9 * dim * 9 * s * s)
    assert sum(stage.values()) == official


# model -> (reference GFLOPs, relative tolerance, reference params or None)
TARGETS = {
    "swin_acmix_tiny": (4.649, 0.01, 28_649_908),   # official flops() / parameters()
    "swin_acmix_small": (8.999, 0.01, 50_345_080),
    "acmix_resnet26": (2.3, 0.03, 10_487_816),      # the paper's table
    "pvt_acmix_tiny": (2.0, 0.05, None),            # the paper: 13M / 2.0G
    "pvt_acmix_small": (3.9, 0.05, None),           # the paper: 25M / 3.9G
}


# the transformer models (5-10 s each to build and count) in the slow tier; ACmix-ResNet-26,
# seconds, stays in the fast tier
@pytest.mark.parametrize("name", [n if "resnet" in n else pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(TARGETS)])
def test_model_gflops_match_the_references(name):
    gflops, rel, params = TARGETS[name]
    rows, summary = profile(name)
    assert summary["gflops"] == pytest.approx(gflops, rel=rel)
    if params is not None:
        assert summary["params"] == params
    assert sum(r[1] for r in rows) == summary["params"]
    assert sum(sum(r[2].values()) for r in rows) == summary["macs"]


def test_cli_prints_a_table_and_ends_with_json(capsys):
    assert flops.main(["swin_tiny", "--image-size", "224"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("layers.2") for line in lines)
    summary = json.loads(lines[-1])
    assert summary["params"] == 28_288_354
    assert summary["gflops"] == pytest.approx(4.49, rel=0.01)  # Swin-T's official 4.5G
    assert summary["macs_by_type"]["acmix_conv"] == 0


def test_cli_markdown_and_errors(capsys):
    assert flops.main(["--markdown", "pvt_tiny"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("| Model |")
    cells = [c.strip() for c in out[-1].strip("|").split("|")]
    assert cells[0] == "pvt_tiny" and cells[2] == "13.23M"  # PVT v1 Tiny: 13.2M / 1.9G
    assert float(cells[3]) == pytest.approx(1.9, rel=0.03)
    assert flops.main(["swin_tiny", "--image-size", "200"]) == 2
    assert "img_size (200, 200)" in capsys.readouterr().err
    assert flops.main(["nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


def test_segmentor_counts_skip_arithmetic_but_not_macs(capsys):
    """shape_only gives the MACs of the full pass; the auxiliary head has parameters (as the
    Swin paper counts them) but no MACs (inference never runs it); the command's JSON."""
    from mindspore_acmix.factory import count_params
    from mindspore_acmix.segmentation import create_segmentor

    net = create_segmentor("acmix_resnet_tiny", head="upernet", num_classes=5, head_channels=8,
                           aux_channels=8)
    macs = count_macs(net, (1, 3, 24, 40))
    assert macs == count_macs(net, (1, 3, 24, 40), fast=True)
    assert "auxiliary_head" not in macs and flops.params_per_stage(net)["auxiliary_head"] > 0
    assert flops.main(["resnet_tiny", "--head", "semantic_fpn", "--image-size", "24", "40"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("semantic_fpn on resnet_tiny at 24x40")
    summary = json.loads(lines[-1])
    assert summary["image_size"] == [24, 40] and summary["head"] == "semantic_fpn"
    assert summary["params"] == count_params(create_segmentor("resnet_tiny"))


def test_detector_neck_and_head_macs_by_hand(capsys):
    """RetinaNet on resnet_tiny (outputs 64/128/256/512 channels at strides 1/2/4/8) at
    32x48 with 8 FPN channels, one conv per head branch, 3 classes and 4 levels: FPN levels
    16x24, 8x12, 4x6 and P6 2x3 (a stride-2 conv on the last backbone output)."""
    from mindspore_acmix.detection import create_detector

    det = create_detector("resnet_tiny", num_classes=3, fpn_channels=8, stacked_convs=1,
                          num_outs=4)
    assert det.backbone.feature_info.channels() == [64, 128, 256, 512]
    assert det.backbone.feature_info.reduction() == [1, 2, 4, 8]
    macs = {stage: sum(cats.values())
            for stage, cats in count_macs(det, (1, 3, 32, 48), fast=True).items()}
    lateral = 128 * 8 * 384 + 256 * 8 * 96 + 512 * 8 * 24
    fpn = 9 * 8 * 8 * (384 + 96 + 24)
    p6 = 9 * 512 * 8 * 6
    assert macs["neck"] == lateral + fpn + p6
    # per location: one 3x3 conv per branch, then 9 anchors x 3 classes and 9 x 4 deltas
    per_location = 2 * 9 * 8 * 8 + 9 * 8 * 9 * 3 + 9 * 8 * 9 * 4
    assert macs["bbox_head"] == per_location * (384 + 96 + 24 + 6)
    assert macs["backbone"] == sum(sum(c.values()) for c in count_macs(
        det.backbone, (1, 3, 32, 48)).values())
    assert flops.main(["resnet_tiny", "--detector", "retinanet", "--image-size", "32",
                       "48"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["detector"] == "retinanet" and summary["image_size"] == [32, 48]
    assert summary["params"] == flops.count_params(create_detector("resnet_tiny"))
    with pytest.raises(SystemExit) as exc:  # argparse's usage error
        flops.main(["resnet_tiny", "--detector", "retinanet", "--head", "upernet"])
    assert exc.value.code == 2
