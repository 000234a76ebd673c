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


@pytest.mark.parametrize("name", sorted(TARGETS))
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
