"""Parity with the official PyTorch code's outputs and gradients (tests/data/golden)."""
import pytest
from mindspore import nn

from mindspore_acmix.layers import ACmix
from mindspore_acmix.models.resnet import Bottleneck, conv1x1

from conftest import check_against, load_golden, official_state

LAYER_CASES = ["acmix_c16_h4_s1", "acmix_c16_h4_s2", "acmix_in8_out16_h2_k5"]
BLOCK_CASES = ["bottleneck_64_16_s1", "bottleneck_32_16_s2_down"]
REL = 1e-5  # the golden README's bound for layers and blocks


def build_acmix(ctor, attn_impl="auto"):
    ctor = dict(ctor)
    assert ctor.pop("cls") == "ACmix"
    return ACmix(**ctor, attn_impl=attn_impl)


def build_bottleneck(ctor, attn_impl="auto"):
    downsample = None
    if ctor.get("downsample"):
        out = ctor["planes"] * Bottleneck.expansion
        downsample = nn.SequentialCell([conv1x1(ctor["inplanes"], out, ctor["stride"]),
                                        nn.BatchNorm2d(out)])
    acmix = dict(kernel_att=ctor["k_att"], head=ctor["head"], kernel_conv=ctor["k_conv"],
                 attn_impl=attn_impl)
    net = Bottleneck(ctor["inplanes"], ctor["planes"], ctor["stride"], downsample, acmix=acmix)
    net.set_train(False)  # golden files were made in eval mode: BatchNorm uses running stats
    return net


@pytest.mark.parametrize("case", LAYER_CASES)
def test_acmix_layer_graph(case, attn_impl):
    ctor, golden = load_golden(case)
    check_against(build_acmix(ctor, attn_impl), golden, official_state(golden), REL,
                  f"{case} [{attn_impl}]")


@pytest.mark.parametrize("case", BLOCK_CASES)
def test_bottleneck_graph(case, attn_impl):
    ctor, golden = load_golden(case)
    check_against(build_bottleneck(ctor, attn_impl), golden, official_state(golden), REL,
                  f"{case} [{attn_impl}]")


@pytest.mark.parametrize("case", ["acmix_c16_h4_s2", "bottleneck_32_16_s2_down"])
def test_pynative(case, attn_impl, pynative):
    ctor, golden = load_golden(case)
    build = build_acmix if ctor["cls"] == "ACmix" else build_bottleneck
    check_against(build(ctor, attn_impl), golden, official_state(golden), REL,
                  f"{case} [{attn_impl}] (PyNative)")
