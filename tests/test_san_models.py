"""SAN and SAN-ACmix models: golden parity, parameter counts, FLOPs, the full-size network
in graph mode, and reading official SAN checkpoints.

Whole-model cases cost mostly graph compilation, so they run with the fastest operators
(SAN's C++ kernels, MindSpore's own Conv2D, which compiles to one node where the per-tap
matmuls compile to many); tests/test_san_layers.py covers every operator implementation.
"""
import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor

from mindspore_acmix import count_params, create_model, list_models
from mindspore_acmix.convert import LEAF_NAMES, load_torch_state_dict, main as convert_main
from mindspore_acmix.convert import read_pth
from mindspore_acmix.layers import SAM, SAMACmix
from mindspore_acmix.models.san import SAN, Bottleneck
from mindspore_acmix.implementations import unavailable_reason
from mindspore_acmix.tools import flops

from conftest import assert_close, check_against, load_golden, official_state

FAST = dict(san_impl="unfold" if unavailable_reason("san") else "aot", conv_impl="native")

# official counts at 1000 classes (golden README, from instantiating hszhao/SAN's classes)
PARAMS = {"san10_pairwise": 10_531_848, "san15_pairwise": 14_065_436,
          "san19_pairwise": 17_596_156, "san10": 11_841_124, "san15": 16_181_310,
          "san19": 20_518_470, "san_acmix10": 11_995_152, "san_acmix15": 16_414_944,
          "san_acmix19": 20_830_304}


def build_golden(ctor):
    ctor = dict(ctor)
    cls = ctor.pop("cls")
    if cls == "Bottleneck_SAN":
        net = Bottleneck(**ctor, **FAST)
    else:
        net = SAN(**ctor, acmix=cls == "SAN_ACmix", **FAST)
    net.set_train(False)  # golden files were made in eval mode
    return net


@pytest.mark.parametrize("case,rel", [("san_bottleneck_patch_64", 1e-5),
                                      ("san_micro_patch", 1e-4),
                                      ("san_acmix_micro_patch", 1e-4)])
def test_golden_output_and_every_gradient(case, rel):
    """rel: the golden README's bound, 1e-5 for blocks and 1e-4 for whole models."""
    ctor, golden = load_golden(case)
    check_against(build_golden(ctor), golden, official_state(golden), rel, case)


def test_registry_and_official_parameter_counts():
    assert list_models("san*") == sorted(PARAMS)
    for name, count in PARAMS.items():
        assert count_params(create_model(name)) == count, name


def test_model_conventions():
    net = create_model("san10", in_chans=1, features_only=True, out_indices=(1, 4))
    assert net.feature_info.channels() == [256, 2048]
    assert net.feature_info.reduction() == [4, 32]
    assert net.conv_in.weight.shape == (64, 1, 1, 1)
    assert net.default_cfg["first_conv"] == "conv_in"
    assert net.default_cfg["input_size"] == (1, 224, 224)
    # PyTorch's default initialisation, as the official code: uniform in +-1/sqrt(fan_in)
    w, b = net.layer1[0].conv.weight.asnumpy(), net.layer1[0].conv.bias.asnumpy()
    assert 0.12 < np.abs(w).max() <= 0.125 and 0.1 < np.abs(b).max() <= 0.125  # fan_in 64


@pytest.mark.parametrize("kwargs,match", [
    (dict(sa_type=2), "sa_type must be 0 .pairwise. or 1"),
    (dict(layers=[1, 1, 1, 1]), "layers must list 5 values"),
    (dict(kernels=[3, 7, 7, 7, 6]), "kernels must be odd"),
    (dict(base_planes=24), "base_planes must be a multiple of 16"),
    (dict(share_planes=0), "share_planes must be a positive integer"),
])
def test_invalid_arguments_name_the_argument(kwargs, match):
    args = dict(sa_type=1, layers=[1] * 5, kernels=[3, 7, 7, 7, 7], base_planes=16,
                share_planes=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        SAN(**args)
    with pytest.raises(ValueError, match="stride 1 and in_planes == out_planes"):
        Bottleneck(1, 64, 4, 16, 64, stride=2)


# ---- the full-size network ---------------------------------------------------------------

@pytest.fixture(scope="module")
def san_acmix10():
    net = create_model("san_acmix10", **FAST)
    net.set_train(False)
    return net


@pytest.mark.slow
def test_san_acmix10_at_224_graph_mode_equals_the_unfold_reference(san_acmix10):
    """Graph mode at full size, against the unfold operators (the reference formulation)
    run op by op with the same weights: what compilation or the fast kernels could break
    at the real stage shapes (112 to 7 pixels, 3x3 and 7x7 windows) shows here."""
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    logits = san_acmix10(Tensor(x)).asnumpy()
    assert logits.shape == (1, 1000) and np.isfinite(logits).all()
    reference = create_model("san_acmix10", san_impl="unfold", conv_impl="native")
    reference.set_train(False)
    ms.load_param_into_net(reference, {p.name: p for p in san_acmix10.get_parameters()})
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        expected = reference(Tensor(x)).asnumpy()
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)
    assert np.abs(expected).max() > 1e-3
    assert_close(logits, expected, 1e-4, "san_acmix10 logits", floor=0.0)


def test_flops_by_sans_counter_at_224(san_acmix10):
    """SAN's util/complexity.py rules give design A's 1.963 G for SAN-ACmix-10, and, without
    the convolution path, SAN10 patchwise's 1.865 G (SAN's README: 1.9 G)."""
    macs = flops.count_macs(san_acmix10, (1, 3, 224, 224), convention="san")
    by_type = {c: sum(m[c] for m in macs.values()) for c in flops.CATEGORIES}
    total = sum(by_type.values())
    assert total / 1e9 == pytest.approx(1.963, rel=0.002)
    assert (total - by_type["acmix_conv"]) / 1e9 == pytest.approx(1.865, rel=0.002)
    assert by_type["norm"] > 0 and by_type["elementwise"] > 0


def _layer_counts(cell, shape, convention):
    per_stage = flops.count_macs(cell, shape, convention)
    return {c: sum(m[c] for m in per_stage.values()) for c in flops.CATEGORIES}


def test_sam_flop_rules_in_both_conventions():
    """Pairwise SAM (c 32 -> 16, rel 4, share 4, k 3) at 6x6, counted by hand."""
    n, c, rel, out, share, k, h = 2, 32, 4, 16, 4, 3, 6
    hw, kk, cw = h * h, k * k, out // share
    sam = SAM(0, c, rel, out, share, k, **FAST)
    macs = _layer_counts(sam, (n, c, h, h), "macs")
    conv = (n * hw * c * (2 * rel + out) + hw * 2 * 2  # conv1-3, conv_p (batch 1)
            + n * kk * hw * ((rel + 2) * rel + rel * cw))  # conv_w over every window position
    assert macs["conv"] == conv
    assert macs["attention"] == n * out * hw * kk  # aggregation
    san = _layer_counts(sam, (n, c, h, h), "san")
    biases = n * hw * (2 * rel + out) + 2 * hw + n * kk * hw * cw
    assert san["conv"] == conv + biases
    assert san["attention"] == n * out * hw * kk + (n * rel + 2) * kk * hw  # + subtractions
    bn = n * kk * hw * ((rel + 2) + rel)
    assert san["norm"] == 2 * bn and san["elementwise"] == bn  # ReLU after each BatchNorm

    acmix = SAMACmix(1, c, rel, out, share, k, **FAST)
    pieces = 2 * rel // cw + share
    macs = _layer_counts(acmix, (n, c, h, h), "macs")
    assert macs["acmix_conv"] == n * hw * (9 * pieces * cw + out * 9 * 9)  # fc + dep_conv


def test_flops_convention_is_checked():
    with pytest.raises(ValueError, match="convention must be one of"):
        flops.profile("san10", convention="fvcore")


# ---- official checkpoints ----------------------------------------------------------------

def official_checkpoint(state, path):
    """A .pth as SAN's tool/train.py writes it: DataParallel names under 'state_dict',
    beside the epoch and the optimizer state."""
    torch = pytest.importorskip("torch")
    torch.save({"epoch": 100,
                "state_dict": {"module." + k: torch.from_numpy(np.array(v))
                               for k, v in state.items()},
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.0, "momentum": 0.9}]}},
               path)
    return str(path)


def test_reads_an_official_san_checkpoint_strictly(tmp_path):
    ctor, golden = load_golden("san_acmix_micro_patch")
    state = official_state(golden)
    net = build_golden(ctor)
    loaded = load_torch_state_dict(net, read_pth(official_checkpoint(state, tmp_path / "a.pth")))
    assert len(loaded) == len(list(net.get_parameters()))
    np.testing.assert_array_equal(net.layer3[0].sam.dep_conv.weight.asnumpy(),
                                  state["layer3.0.sam.dep_conv.weight"])
    np.testing.assert_array_equal(net.bn_in.moving_variance.asnumpy(), state["bn_in.running_var"])
    del state["layer2.0.sam.conv_w.3.running_mean"]
    with pytest.raises(ValueError, match=r"missing for 1 parameters: "
                                         r"layer2\.0\.sam\.conv_w\.3\.moving_mean"):
        load_torch_state_dict(net, read_pth(official_checkpoint(state, tmp_path / "b.pth")))


def test_convert_command_writes_a_checkpoint_of_a_registered_san(tmp_path, capsys):
    """`python -m mindspore_acmix.convert --model san10 ...` on a SAN-format file whose
    tensors carry the official names (made from our own names: LEAF_NAMES backwards)."""
    official_leaf = {ours: off for off, candidates in LEAF_NAMES.items() for ours in candidates
                     if ours != off}
    rng = np.random.default_rng(0)
    state = {}
    for p in create_model("san10", num_classes=10).get_parameters():
        prefix, _, leaf = p.name.rpartition(".")
        state[f"{prefix}.{official_leaf.get(leaf, leaf)}"] = rng.standard_normal(
            p.shape).astype(np.float32)
    assert "layer4.0.sam.conv_w.0.running_var" in state and "fc.weight" in state
    pth = official_checkpoint(state, tmp_path / "san10.pth")
    ckpt = str(tmp_path / "san10.ckpt")
    assert convert_main(["--model", "san10", "--num-classes", "10", "--input", pth,
                         "--output", ckpt]) == 0
    assert "into san10" in capsys.readouterr().out
    written = ms.load_checkpoint(ckpt)
    np.testing.assert_array_equal(written["layer1.0.sam.conv_w.5.weight"].asnumpy(),
                                  state["layer1.0.sam.conv_w.5.weight"])
    np.testing.assert_array_equal(written["bn4.moving_mean"].asnumpy(), state["bn4.running_mean"])
