"""timm / MindCV conventions of every model family (models/base.py, registry.py), at tiny
sizes: features_only maps and feature_info, num_classes=0 and pre_logits, reset_classifier,
in_chans / in_channels, pretrained, default_cfg, and no_weight_decay in our optimizer."""
import numpy as np
import mindspore as ms
import pytest
from mindspore import Tensor

from mindspore_acmix import config as config_lib
from mindspore_acmix import create_model, list_models
from mindspore_acmix.engine.optim import param_groups
from mindspore_acmix.factory import get_default_cfg

# small members of each family (stage maps >= 4 where ACmix's 7x7 reflection padding needs it)
SWIN = dict(img_size=32, embed_dim=12, depths=(1, 1, 1), num_heads=(3, 3, 3), window_size=2)
PVT = dict(img_size=32, embed_dims=(8, 16, 24, 32), num_heads=(1, 2, 2, 4),
           mlp_ratios=(2, 2, 2, 2), depths=(1, 1, 1, 1), sr_ratios=(4, 2, 1, 1))
FAMILIES = {"acmix_resnet_tiny": {}, "swin_acmix_tiny": SWIN, "pvt_acmix_tiny": PVT}


def image(channels=3, size=32, batch=2, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, channels, size, size)).astype(
        np.float32)


@pytest.fixture(params=["graph", "pynative"])
def mode(request):
    """Graph mode for one family (the list output compiles); PyNative for the others, to
    keep the suite's compile time down."""
    if request.param == "pynative":
        ms.set_context(mode=ms.PYNATIVE_MODE)
    yield request.param
    ms.set_context(mode=ms.GRAPH_MODE)


@pytest.mark.parametrize("name,kwargs,size,shapes,mode", [
    # ImageNet stem: reductions 4/8/16/32, 4x the stage widths
    ("resnet26", dict(width=8), 32, [(32, 8), (64, 4), (128, 2), (256, 1)], "pynative"),
    ("swin_acmix_tiny", SWIN, 32, [(12, 8), (24, 4), (48, 2)], "graph"),
    # PVT's stage 4 as a map: its class token dropped
    ("pvt_acmix_tiny", PVT, 32, [(8, 8), (16, 4), (24, 2), (32, 1)], "pynative"),
], indirect=["mode"])
def test_features_only_gives_nchw_maps_at_the_documented_reductions(name, kwargs, size, shapes,
                                                                     mode):
    net = create_model(name, features_only=True, in_chans=1, **kwargs)
    net.set_train(False)
    feats = net(Tensor(image(1, size)))
    assert isinstance(feats, (list, tuple)) and len(feats) == len(shapes)
    assert [tuple(f.shape) for f in feats] == [(2, c, s, s) for c, s in shapes]
    info = net.feature_info
    assert info.channels() == [c for c, _ in shapes] == net.out_channels
    assert info.reduction() == [size // s for _, s in shapes]
    for entry in info:  # MindCV's keys and timm's
        assert entry["chs"] == entry["num_chs"] and entry["name"] == entry["module"]
    assert net.default_cfg["input_size"][0] == 1 and net.get_classifier() is not None
    assert all(np.isfinite(f.asnumpy()).all() and f.asnumpy().std() > 0 for f in feats)


def test_out_indices_select_stages():
    net = create_model("resnet26", width=8, features_only=True, out_indices=(1, -1))
    assert net.out_indices == (1, 3) and net.feature_info.module_name() == ["layer2", "layer4"]
    assert [f["reduction"] for f in net.feature_info] == [8, 32]
    with pytest.raises(ValueError, match=r"out_indices must be distinct stage indices in \[0, 4\)"):
        create_model("resnet_tiny", features_only=True, out_indices=(0, 4))
    with pytest.raises(ValueError, match="out_indices needs features_only=True"):
        create_model("resnet_tiny", out_indices=(0,))


@pytest.mark.parametrize("name", ["acmix_resnet50", "swin_acmix_tiny", "pvt_acmix_tiny"])
def test_feature_info_of_the_imagenet_models(name):
    """At 224: ResNet 256/512/1024/2048, Swin 96/192/384/768, PVT 64/128/320/512 channels,
    all at reductions 4/8/16/32; the modules named exist in the network."""
    net = create_model(name, features_only=True)
    chs = {"acmix_resnet50": [256, 512, 1024, 2048], "swin_acmix_tiny": [96, 192, 384, 768],
           "pvt_acmix_tiny": [64, 128, 320, 512]}[name]
    assert net.feature_info.channels() == chs and net.feature_info.reduction() == [4, 8, 16, 32]
    cells = {n for n, _ in net.cells_and_names()}
    assert set(net.feature_info.module_name()) <= cells
    assert not any(n.startswith(("fc.", "head.")) for n in (p.name for p in net.get_parameters()))


def check_head_conventions(name, kwargs):
    """logits = pooled @ W.T + b with pooled = forward_head(..., pre_logits=True); after
    reset_classifier(0) the network returns exactly pooled; reset_classifier(3) a new head."""
    net = create_model(name, num_classes=5, in_channels=1, **kwargs)
    net.set_train(False)
    x = Tensor(image(1))
    logits = net(x).asnumpy()
    pooled = net.forward_head(net.forward_features(x), pre_logits=True).asnumpy()
    head = net.get_classifier()
    assert head is getattr(net, net.default_cfg["classifier"])
    expected = pooled @ head.weight.asnumpy().T + head.bias.asnumpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)
    net.reset_classifier(0)
    assert net.num_classes == 0 and net.default_cfg["num_classes"] == 0
    np.testing.assert_allclose(net(x).asnumpy(), pooled, rtol=1e-4, atol=1e-5)
    net.reset_classifier(3)
    assert net.get_classifier().weight.shape == (3, net.num_features)
    assert net.get_classifier().weight.name == f"{net.default_cfg['classifier']}.weight"


@pytest.mark.parametrize("name", ["resnet_tiny", "swin_acmix_tiny", "pvt_acmix_tiny"])
def test_head_conventions(name, pynative):
    check_head_conventions(name, FAMILIES.get(name, {}))


def test_num_classes_zero_builds_no_classifier_parameters():
    net = create_model("swin_tiny", num_classes=0, **SWIN)
    assert net.num_features == 48 and not any(p.name.startswith("head.")
                                              for p in net.get_parameters())


def test_entry_point_arguments():
    with pytest.raises(ValueError, match="no pretrained weights ship.*mindspore_acmix.convert "
                                         "--model acmix_resnet50"):
        create_model("acmix_resnet50", pretrained=True)
    with pytest.raises(ValueError, match="in_chans .1. and in_channels .3. .*disagree"):
        create_model("resnet_tiny", in_chans=1, in_channels=3)
    net = create_model("resnet_tiny", in_channels=2, drop_rate=0.2, drop_path_rate=0.3)
    assert net.conv1.weight.shape[1] == 2 and isinstance(net.head_drop, ms.nn.Dropout)
    # stochastic depth rises linearly over the blocks to drop_path_rate
    rates = [net.layer1[0].drop_path.drop_prob, net.layer4[0].drop_path.drop_prob]
    np.testing.assert_allclose(rates, [0.0, 0.3])
    assert create_model("resnet_tiny").layer4[0].drop_path.drop_prob == 0.0


def test_every_model_has_a_default_cfg():
    keys = {"url", "num_classes", "input_size", "interpolation", "crop_pct", "mean", "std",
            "first_conv", "classifier", "architecture", "paper"}
    for name in list_models():
        cfg = get_default_cfg(name)
        assert keys <= set(cfg), name
        assert cfg["interpolation"] in ("bilinear", "bicubic") and 0 < cfg["crop_pct"] <= 1
    assert get_default_cfg("acmix_resnet50")["paper"]["top1"] == 77.8
    assert get_default_cfg("swin_acmix_tiny")["paper"]["flops"] == "4.6G"
    assert get_default_cfg("acmix_resnet_tiny")["input_size"] == (3, 32, 32)


def test_config_leaves_data_keys_to_the_default_cfg(tmp_path):
    cfg = config_lib.resolve(None, [("model", "swin_acmix_tiny"), ("num_classes", 3),
                                    ("data_dir", str(tmp_path))])
    assert (cfg["image_size"], cfg["eval_resize"], cfg["interpolation"]) == (224, 256, "bicubic")
    np.testing.assert_allclose(cfg["mean"], [123.675, 116.28, 103.53])
    cfg = config_lib.resolve(None, [("model", "acmix_resnet_tiny"), ("num_classes", 10),
                                    ("dataset", "digits"), ("interpolation", "bicubic")])
    assert (cfg["image_size"], cfg["eval_resize"], cfg["interpolation"]) == (32, 32, "bicubic")
    np.testing.assert_allclose(cfg["std"], [75.0, 75.0, 75.0])


@pytest.mark.parametrize("name,expected", [
    ("acmix_resnet_tiny", ["layer1.0.conv2.rate1", "layer4.0.conv2.rate2", "bn1.gamma",
                           "layer2.0.conv2.conv_p.bias", "fc.bias"]),
    ("swin_acmix_tiny", ["layers.0.blocks.0.attn.relative_position_bias_table",
                         "layers.1.blocks.0.attn.rate1", "norm.gamma", "patch_embed.proj.bias"]),
    ("pvt_acmix_tiny", ["pos_embed1", "cls_token", "block4.0.attn.rate2", "block1.0.norm1.beta"]),
])
def test_no_weight_decay_is_what_the_optimizer_uses(name, expected):
    net = create_model(name, num_classes=4, **FAMILIES[name])
    skip = net.no_weight_decay()
    assert set(expected) <= skip
    decay, no_decay, _ = param_groups(net, 0.05)
    assert {p.name for p in no_decay["params"]} == skip
    assert {p.name for p in decay["params"]}.isdisjoint(skip) and decay["params"]
    assert all(p.ndim > 1 for p in decay["params"])
    # through AMP's output-cast wrapper too (what the trainer builds the optimizer on)
    wrapped = ms.amp.auto_mixed_precision(create_model(name, num_classes=4, **FAMILIES[name]),
                                          "O2")
    assert {p.name for p in param_groups(wrapped, 0.05)[1]["params"]} == skip


# Swin with two blocks (plain and shifted windows) per stage and maps (8, 4) above the window,
# so that no stage shrinks its window at the build size: the segmentation backbone never
# shrinks it (the official code), and where the classifier does, the two differ by design.
SWIN_2X2 = dict(img_size=32, embed_dim=12, depths=(2, 2), num_heads=(3, 3), window_size=2)


def np_layer_norm(x, cell):
    x = x.astype(np.float64)
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * cell.gamma.asnumpy() + cell.beta.asnumpy()


def tokens_to_map(x, h, w):
    return x.reshape(x.shape[0], h, w, -1).transpose(0, 3, 1, 2)


def full_model_stages(name, net, x):
    """Every stage's output of the classification network, run cell by cell on its own
    (classification) path, as the features_only maps should be."""
    if name == "acmix_resnet_tiny":
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        outs = []
        for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
            x = layer(x)
            outs.append(x.asnumpy())
        return outs, []
    if name == "swin_acmix_tiny":
        x = net._embed(x)  # noqa: SLF001 (the classification embedding, size-checked)
        outs = []
        for layer in net.layers:
            h, w = layer.blocks[0].input_resolution
            for blk in layer.blocks:
                x = blk(x)
            outs.append((x.asnumpy(), h, w))
            if layer.downsample is not None:
                x = layer.downsample(x)
        return outs, ["norm0", "norm1"]
    # PVT: stages 1-3 as the classifier computes them; stage 4 without the class token
    # (the dense backbone has none): the classifier's stage-4 cells on the patch tokens
    maps = [m.asnumpy() for m in net._stages(x)[:3]]  # noqa: SLF001
    h, w = net.resolutions[3]
    t = net.patch_embed4(Tensor(maps[2])) + net.pos_embed4[:, 1:]
    for blk in net.block4:
        t = blk(t, h, w)
    return maps + [tokens_to_map(t.asnumpy(), h, w)], []


@pytest.mark.parametrize("name,kwargs", [("acmix_resnet_tiny", {}),
                                         ("swin_acmix_tiny", SWIN_2X2),
                                         ("pvt_acmix_tiny", PVT)])
def test_features_only_equals_the_full_models_stages(name, kwargs, pynative):
    """Same weights (copied from the classifier into a features_only build initialised from
    another seed), same input at the build size: the features_only maps are the stages of
    the classifier (Swin: each through its output LayerNorm, which only the backbone has)."""
    ms.set_seed(0)
    full = create_model(name, num_classes=5, **kwargs)
    ms.set_seed(1)
    feat = create_model(name, features_only=True, **kwargs)
    full.set_train(False)
    feat.set_train(False)
    weights = {p.name: p for p in full.get_parameters()}
    not_loaded = [p.name for p in feat.get_parameters() if p.name not in weights]
    for p in feat.get_parameters():
        if p.name in weights:
            p.set_data(weights[p.name].data.copy())
    x = Tensor(image(3, 32, batch=2, seed=3))
    expected, own = full_model_stages(name, full, x)
    assert sorted({n.split(".")[0] for n in not_loaded}) == own  # only the backbone's norms
    if own:  # Swin: give the backbone's norms values of their own, then apply them
        rng = np.random.default_rng(4)
        for i in range(len(own)):
            cell = getattr(feat, f"norm{i}")
            for p in (cell.gamma, cell.beta):
                p.set_data(Tensor(rng.standard_normal(p.shape).astype(np.float32)))
        expected = [tokens_to_map(np_layer_norm(t, getattr(feat, f"norm{i}")), h, w)
                    for i, (t, h, w) in enumerate(expected)]
    feats = [f.asnumpy() for f in feat(x)]
    assert len(feats) == len(expected)
    for i, (ours, ref) in enumerate(zip(feats, expected)):
        assert ours.shape == ref.shape, i
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5, err_msg=f"{name} stage {i}")
        assert ref.std() > 1e-3  # the stage computes something
