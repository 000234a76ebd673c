"""Dense-prediction mode (features_only=True) of every family: any input size at or above
min_input_size, values against PyTorch statements of the official dense backbones (Swin's
segmentation backbone, PVT v1's dense backbone) at non-square sizes, equality with the
classification path at the build size, the minimum-size errors, and loading a
classification checkpoint into a dense backbone (checkpoint.load_backbone_checkpoint)."""
import numpy as np
import mindspore as ms
import pytest
from mindspore import Tensor

from mindspore_acmix import create_model
from mindspore_acmix.checkpoint import (CheckpointError, load_backbone_checkpoint,
                                        save_checkpoint_atomic)
from mindspore_acmix.convert import load_torch_state_dict

from conftest import assert_close

torch = pytest.importorskip("torch")

import torch_pvt_reference as pvt_ref  # noqa: E402
import torch_swin_seg_reference as swin_ref  # noqa: E402
from torch_reference import perturb_  # noqa: E402

# tiny members; window 7 as the official one, so that 100x132 pads at every stage and its
# stage 4 (4x5) is smaller than a window, where the shift must stay on
SWIN = dict(embed_dim=12, depths=(2, 2, 2, 2), num_heads=(3, 3, 3, 3), window_size=7)
PVT = dict(embed_dims=(8, 16, 24, 32), num_heads=(1, 2, 2, 4), mlp_ratios=(2, 2, 2, 2),
           depths=(1, 1, 1, 1), sr_ratios=(8, 4, 2, 1))
SAN = dict(base_planes=16, share_planes=4)
REL = 1e-4


def image(h, w, batch=1, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, 3, h, w)).astype(np.float32)


def torch_outputs(module, x, forward=None):
    with torch.no_grad():
        outs = (forward or module)(torch.from_numpy(x))
    return [o.numpy() for o in outs]


def compare(net, module, x, forward=None, what="", unused=()):
    """net's maps against the torch module's, with the torch state (but the `unused`
    entries) loaded into net."""
    state = {k: v.numpy() for k, v in module.state_dict().items() if k not in unused}
    load_torch_state_dict(net, state)
    net.set_train(False)
    ours = [o.asnumpy() for o in net(Tensor(x))]
    ref = torch_outputs(module, x, forward)
    assert len(ours) == len(ref)
    for i, (a, b) in enumerate(zip(ours, ref)):
        assert_close(a, b, REL, f"{what} stage {i}")
    return ours


@pytest.fixture
def mode(request):
    """The ACmix member of each family in graph mode (the shifted-window masks and resized
    tables are then built at compile time for the input's size), the plain one in PyNative."""
    ms.set_context(mode=ms.GRAPH_MODE if request.param == "graph" else ms.PYNATIVE_MODE)
    yield request.param
    ms.set_context(mode=ms.GRAPH_MODE)


def graph(*case):
    """A case run in graph mode: it compiles a whole network (slow)."""
    return pytest.param(*case, "graph", marks=pytest.mark.slow)


@pytest.mark.parametrize("name,acmix,mode", [("swin_tiny", False, "pynative"),
                                             graph("swin_acmix_tiny", True)],
                         indirect=["mode"])
def test_swin_matches_the_official_segmentation_backbone_at_100x132(name, acmix, mode):
    """Padding at the patch embedding and in every block (25x33 -> 28x35, 13x17 -> 14x21,
    7x9 -> 7x14, 4x5 -> 7x7 with the shift kept), odd PatchMerging, output norms."""
    module = perturb_(swin_ref.SwinSeg(acmix=acmix, **SWIN).eval())
    net = create_model(name, features_only=True, drop_path_rate=0.0, **SWIN)
    outs = compare(net, module, image(100, 132), what=name)
    assert [o.shape[2:] for o in outs] == [(25, 33), (13, 17), (7, 9), (4, 5)]


@pytest.mark.parametrize("name,acmix,mode", [("pvt_tiny", False, "pynative"),
                                             graph("pvt_acmix_tiny", True)],
                         indirect=["mode"])
def test_pvt_matches_the_official_dense_backbone_at_100x150(name, acmix, mode):
    """Position tables resized bilinearly from the 224 grids (56/28/14/7) to 25x37, 12x18,
    6x9, 3x4; no class token; maps not divisible by sr_ratio (25x37 by 8) in PVT-ACmix."""
    module = pvt_ref.PVT(img_size=224, num_classes=1, acmix=acmix, **PVT)
    perturb_(module.eval())
    net = create_model(name, features_only=True, drop_path_rate=0.0, **PVT)
    unused = ("cls_token", "norm.weight", "norm.bias", "head.weight", "head.bias")
    outs = compare(net, module, image(100, 150), module.forward_dense, name, unused)
    assert [o.shape[2:] for o in outs] == [(25, 37), (12, 18), (6, 9), (3, 4)]


def twins(name, cfg):
    """A classifier (no head) with perturbed weights and the dense backbone with the same
    weights, both in inference mode."""
    cls = create_model(name, num_classes=0, **cfg)
    dense = create_model(name, features_only=True, **cfg)
    perturb_ms(cls)
    copy_weights(cls, dense)
    for net in (cls, dense):
        net.set_train(False)
    return cls, dense


def copy_weights(src, dst):
    """dst's parameters that src has, set to src's values (same names)."""
    values = {p.name: p for p in src.get_parameters()}
    # strict_load: otherwise MindSpore matches a missing name by suffix (norm1.gamma would
    # take some block's norm1)
    ms.load_param_into_net(dst, {p.name: values[p.name] for p in dst.get_parameters()
                                 if p.name in values}, strict_load=True)


def test_swin_features_at_the_build_size_are_the_classification_stages_normed(pynative):
    """At a build size where no stage is smaller than a window (so the classification blocks
    shift too), the dense maps are the classification path's stage outputs through the
    output norms: padding and per-size masks change nothing there."""
    cfg = dict(img_size=32, embed_dim=12, depths=(2, 2), num_heads=(3, 3), window_size=2,
               drop_path_rate=0.0)
    cls, dense = twins("swin_acmix_tiny", cfg)
    x = Tensor(image(32, 32))
    maps = dense(x)
    tokens = cls._embed(x)
    for i, layer in enumerate(cls.layers):
        for blk in layer.blocks:
            tokens = blk(tokens)
        side = 8 // 2 ** i
        expected = getattr(dense, f"norm{i}")(tokens).asnumpy()
        expected = expected.reshape(1, side, side, -1).transpose(0, 3, 1, 2)
        np.testing.assert_allclose(maps[i].asnumpy(), expected, rtol=1e-5, atol=1e-5)
        if layer.downsample is not None:
            tokens = layer.downsample(tokens)


def test_pvt_features_at_the_build_size_are_the_classification_stages(pynative):
    """Stages 1-3 equal the classification path's (the tables need no resize at the build
    size); stage 4 differs by design: the dense backbone has no class token."""
    cfg = dict(img_size=64, drop_path_rate=0.0, **PVT)
    cls, dense = twins("pvt_acmix_tiny", cfg)
    x = Tensor(image(64, 64))
    maps = [m.asnumpy() for m in dense(x)]
    stages = [s.asnumpy() for s in cls._stages(x)]
    for i in range(3):
        np.testing.assert_allclose(maps[i], stages[i], rtol=1e-5, atol=1e-5)
    grid = stages[3][:, 1:].reshape(1, 2, 2, -1).transpose(0, 3, 1, 2)
    assert np.abs(maps[3] - grid).max() > 1e-3  # the class token took part there


def test_resnet_features_are_the_classification_trunk_at_any_size(pynative):
    cls, dense = twins("acmix_resnet_tiny", {})
    x = Tensor(image(13, 17))  # the minimum (13) on one side, odd on both
    maps = dense(x)
    assert [tuple(m.shape[2:]) for m in maps] == [(13, 17), (7, 9), (4, 5), (2, 3)]
    np.testing.assert_allclose(maps[3].asnumpy(), cls.forward_features(x).asnumpy(),
                               rtol=1e-5, atol=1e-6)


def perturb_ms(net, seed=0):
    """Move every parameter away from its init (norms, rates, tables), as perturb_ does."""
    rng = np.random.default_rng(seed)
    for p in net.get_parameters():
        v = p.asnumpy()
        p.set_data(Tensor((v * (1 + 0.2 * rng.standard_normal(v.shape))
                           + 0.02 * rng.standard_normal(v.shape)).astype(np.float32)))


@pytest.mark.parametrize("name,kwargs,minimum", [
    # ACmix's 7x7 reflection padding (3) at reduction 4 in the last stage: 4 * 3 + 1
    ("acmix_resnet_tiny", {}, 13),
    ("acmix_resnet26", dict(width=8), 49),   # the last ACmix input at reduction 16
    ("resnet_tiny", {}, 1),
    ("san10", SAN, 128),    # 7x7 windows at floor(H / 32) need 4
    ("pvt_tiny", PVT, 32),                   # stage 1's 8x8 spatial reduction at H / 4
    ("swin_tiny", SWIN, 1),                  # everything padded
])
def test_min_input_size_and_the_error_below_it(name, kwargs, minimum, pynative):
    net = create_model(name, features_only=True, **kwargs)
    assert net.min_input_size == minimum
    if minimum > 1:
        with pytest.raises(ValueError, match=rf"{name} \(features_only\) takes \(B, C, H, W\) "
                                             rf"inputs of at least {minimum}x{minimum} pixels"):
            net(Tensor(image(minimum - 1, minimum + 5)))


@pytest.mark.parametrize("name,kwargs,size,shapes", [
    ("pvt_acmix_tiny", PVT, (32, 45), [(8, 11), (4, 5), (2, 2), (1, 1)]),
    ("san_acmix10", SAN, (128, 131), [(64, 65), (32, 32), (16, 16), (8, 8),
                                                        (4, 4)]),
    ("swin_acmix_tiny", SWIN, (5, 3), [(2, 1), (1, 1), (1, 1), (1, 1)]),
])
def test_odd_sizes_at_the_minimum(name, kwargs, size, shapes, pynative):
    net = create_model(name, features_only=True, **kwargs)
    net.set_train(False)
    maps = net(Tensor(image(*size)))
    assert [tuple(m.shape[2:]) for m in maps] == shapes
    assert all(np.isfinite(m.asnumpy()).all() for m in maps)


# ---- a classification checkpoint into a dense backbone -------------------------------------

@pytest.fixture(scope="module")
def swin_classifier_ckpt(tmp_path_factory):
    """A swin_tiny classification checkpoint (tiny widths) with the training state our
    trainer writes beside the weights (optimizer slots, metadata)."""
    net = create_model("swin_tiny", num_classes=5, **SWIN)
    perturb_ms(net)
    path = str(tmp_path_factory.mktemp("ckpt") / "swin_cls.ckpt")
    entries = [{"name": p.name, "data": p} for p in net.get_parameters()]
    entries.append({"name": "adam_m.head.weight", "data": net.head.weight})
    save_checkpoint_atomic(entries, path, append_dict={"model": "swin_tiny", "epoch": 3})
    return path, {p.name: p.asnumpy() for p in net.get_parameters()}


def test_a_classification_checkpoint_loads_into_the_dense_backbone(swin_classifier_ckpt):
    path, values = swin_classifier_ckpt
    net = create_model("swin_tiny", features_only=True, **SWIN)
    init = {p.name: p.asnumpy() for p in net.get_parameters()}
    lines = []
    load_backbone_checkpoint(net, path, log=lines.append)
    for p in net.get_parameters():
        if p.name.startswith("norm") and p.name[4].isdigit():  # the output norms
            np.testing.assert_array_equal(p.asnumpy(), init[p.name])
        else:
            np.testing.assert_array_equal(p.asnumpy(), values[p.name])
    assert net.dense_only_params == tuple(f"norm{i}.{n}" for i in range(4)
                                          for n in ("beta", "gamma"))
    assert len(lines) == 1 and "dropped (classification only): head.bias, head.weight, " \
        "norm.beta, norm.gamma; left at their initialisation (dense mode only): norm0.beta" \
        in lines[0]


def test_a_segmentor_checkpoint_loads_its_backbone_entries(swin_classifier_ckpt, tmp_path):
    _, values = swin_classifier_ckpt
    source = create_model("swin_tiny", features_only=True, **SWIN)
    perturb_ms(source)
    entries = [{"name": "backbone." + p.name, "data": p} for p in source.get_parameters()]
    entries.append({"name": "decode_head.conv_seg.weight", "data": Tensor(np.ones((2, 3)))})
    path = str(tmp_path / "seg.ckpt")
    save_checkpoint_atomic(entries, path)
    net = create_model("swin_tiny", features_only=True, **SWIN)
    load_backbone_checkpoint(net, path, log=lambda line: None)
    expected = {p.name: p.asnumpy() for p in source.get_parameters()}
    for p in net.get_parameters():  # output norms included
        np.testing.assert_array_equal(p.asnumpy(), expected[p.name])


@pytest.mark.parametrize("change,match", [
    ("drop", r"lacks 1 parameters of this backbone: layers.1.blocks.0.attn.qkv.weight"),
    ("extra", r"holds 1 parameters this backbone does not have: layers.9.extra.weight"),
    ("reshape", r"parameter patch_embed.proj.weight has shape \(12, 3, 2, 2\) there but "
                r"\(12, 3, 4, 4\) here"),
])
def test_backbone_checkpoint_errors_name_the_key(swin_classifier_ckpt, tmp_path, change, match):
    _, values = swin_classifier_ckpt
    values = dict(values)
    if change == "drop":
        del values["layers.1.blocks.0.attn.qkv.weight"]
    elif change == "extra":
        values["layers.9.extra.weight"] = np.ones(3, np.float32)
    else:
        values["patch_embed.proj.weight"] = np.ones((12, 3, 2, 2), np.float32)
    path = str(tmp_path / "bad.ckpt")
    save_checkpoint_atomic([{"name": k, "data": Tensor(v)} for k, v in values.items()], path)
    net = create_model("swin_tiny", features_only=True, **SWIN)
    with pytest.raises(CheckpointError, match=match):
        load_backbone_checkpoint(net, path, log=lambda line: None)


def test_backbone_loading_needs_a_features_only_model(swin_classifier_ckpt):
    net = create_model("swin_tiny", num_classes=5, **SWIN)
    with pytest.raises(CheckpointError, match="needs a features_only backbone"):
        load_backbone_checkpoint(net, swin_classifier_ckpt[0])


def test_pvt_dense_backbone_drops_the_class_token_and_final_norm():
    net = create_model("pvt_acmix_tiny", features_only=True, **PVT)
    assert net.classification_only_params == ("cls_token", "norm.beta", "norm.gamma",
                                              "head.weight", "head.bias")
    assert net.dense_only_params == ()
    with pytest.raises(ValueError, match="set_features_only was already called"):
        net.set_features_only((0, 1))
