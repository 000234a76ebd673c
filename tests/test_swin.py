"""Swin-ACmix against the official PyTorch code (tests/data/golden), its parts, and Swin
checkpoint conversion."""
import numpy as np
import pytest
from mindspore import Tensor

from mindspore_acmix import count_params, create_model
from mindspore_acmix.convert import load_torch_state_dict, main
from mindspore_acmix.layers import DropPath, WindowAttention, WindowAttentionACmix
from mindspore_acmix.layers.acmix import shift_kernels
from mindspore_acmix.models import SwinACmix, SwinTransformer
from mindspore_acmix.models.swin import SwinTransformerBlock
from mindspore_acmix.ops import roll2d

from conftest import assert_close, check_against, load_golden, official_state

LAYER_REL, MODEL_REL = 1e-5, 1e-4  # the golden README's bounds
# official counts at 1000 classes: SwinTransformer_acmix (golden README) and plain Swin
PARAMS = {"swin_acmix_tiny": 28_649_908, "swin_acmix_small": 50_345_080,
          "swin_tiny": 28_288_354, "swin_small": 49_606_258}


def build_window_attention(ctor):
    assert ctor["cls"] == "WindowAttention_acmix"
    return WindowAttentionACmix(ctor["dim"], ctor["window_size"], ctor["num_heads"])


def build_block(ctor):
    assert ctor["cls"] == "SwinTransformerBlock"
    return SwinTransformerBlock(ctor["dim"], ctor["input_resolution"], ctor["num_heads"],
                                ctor["window_size"], ctor["shift_size"], acmix=True)


def build_micro(ctor):
    ctor = dict(ctor)
    assert ctor.pop("cls") == "SwinTransformer_acmix"
    return SwinACmix(**ctor)


def without_buffers(state):
    return {k: v for k, v in state.items()
            if not k.endswith(("relative_position_index", "attn_mask"))}


def test_window_attention_graph():
    ctor, golden = load_golden("swin_window_attention_acmix_d24")
    net = build_window_attention(ctor)
    net.set_train(False)
    check_against(net, golden, official_state(golden), LAYER_REL, "window attention")


def test_shifted_block_graph():
    ctor, golden = load_golden("swin_block_acmix_d24_shift2")
    net = build_block(ctor)
    net.set_train(False)
    np.testing.assert_array_equal(net.attn_mask.asnumpy(), golden["buffer/attn_mask"])
    check_against(net, golden, official_state(golden), LAYER_REL, "shifted block")


def test_shifted_block_pynative(pynative):
    ctor, golden = load_golden("swin_block_acmix_d24_shift2")
    net = build_block(ctor)
    net.set_train(False)
    check_against(net, golden, without_buffers(official_state(golden)), LAYER_REL,
                  "shifted block (PyNative)")


def test_micro_model_graph():
    ctor, golden = load_golden("swin_acmix_micro")
    net = build_micro(ctor)
    net.set_train(False)
    # stage 2 (4x4 map, window 4) has no shift and so no attn_mask, as in the official model
    assert net.layers[0].blocks[1].attn_mask is not None
    assert net.layers[1].blocks[1].attn_mask is None
    check_against(net, golden, official_state(golden), MODEL_REL, "micro model")


def test_convolution_path_sees_the_shifted_map():
    """In a shifted block the official convolution path runs on the rolled map: with the
    attention path switched off, the block is not translation-equivariant under a roll
    by 1, because dep_conv's zero padding sits on the seam of the rolled map."""
    net = SwinTransformerBlock(8, (8, 8), 2, window_size=4, shift_size=2, acmix=True)
    net.set_train(False)
    net.attn.rate1.set_data(Tensor([0.0], net.attn.rate1.dtype))
    x = np.random.default_rng(0).standard_normal((1, 8, 8, 8)).astype(np.float32)
    out = net(Tensor(x.reshape(1, 64, 8))).asnumpy().reshape(1, 8, 8, 8)
    # the rolled map starts at original row 2: its zero padding falls between original rows
    # 1 and 2, and original rows 7 and 0 become neighbours
    plain = SwinTransformerBlock(8, (8, 8), 2, window_size=4, shift_size=0, acmix=True)
    load_torch_state_dict(plain, {p.name: p.asnumpy() for p in net.get_parameters()})
    plain.set_train(False)
    plain.attn.rate1.set_data(Tensor([0.0], net.attn.rate1.dtype))
    ref = plain(Tensor(x.reshape(1, 64, 8))).asnumpy().reshape(1, 8, 8, 8)
    # away from both the image border and the seam the two agree ...
    np.testing.assert_allclose(out[:, 3:7, 3:7], ref[:, 3:7, 3:7], rtol=1e-5, atol=1e-5)
    # ... at the seam they differ (zero padding inside the image), and at the border the
    # shifted block wraps around
    assert np.abs(out[:, 1:3] - ref[:, 1:3]).max() > 1e-3
    assert np.abs(out[:, 7] - ref[:, 7]).max() > 1e-3


@pytest.mark.parametrize("shifts", [(1, 2), (-3, 0), (5, -6), (0, 0), (17, -9)])
def test_roll2d_equals_numpy_roll(shifts):
    x = np.arange(2 * 5 * 6 * 3, dtype=np.float32).reshape(2, 5, 6, 3)
    np.testing.assert_array_equal(roll2d(Tensor(x), shifts).asnumpy(),
                                  np.roll(x, shifts, axis=(1, 2)))


def test_drop_path_is_identity_in_eval_and_drops_samples_in_training():
    x = Tensor(np.ones((64, 3, 4), np.float32))
    drop = DropPath(0.25)
    drop.set_train(False)
    np.testing.assert_array_equal(drop(x).asnumpy(), x.asnumpy())
    drop.set_train(True)
    out = drop(x).asnumpy()
    per_sample = out.reshape(64, -1)
    # whole samples are either dropped or scaled by 1 / keep
    assert np.all(per_sample.min(1) == per_sample.max(1))
    kept = per_sample[:, 0] != 0
    np.testing.assert_allclose(per_sample[kept], 1 / 0.75, rtol=1e-6)
    assert 0 < kept.sum() < 64


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_counts_equal_the_official_code(name):
    net = create_model(name)
    assert count_params(net) == PARAMS[name]
    # the official recipes' stochastic depth, rising linearly to the last block
    assert net.layers[3].blocks[1].drop_path.drop_prob == pytest.approx(
        0.2 if "tiny" in name else 0.3)
    assert net.layers[0].blocks[0].drop_path.drop_prob == 0.0
    assert isinstance(net.layers[0].blocks[0].attn, WindowAttentionACmix) == ("acmix" in name)


def test_initialisation_follows_the_official_code():
    net = create_model("swin_acmix_tiny")
    attn = net.layers[2].blocks[3].attn
    np.testing.assert_array_equal(attn.dep_conv.weight.asnumpy(), shift_kernels(384, 3))
    assert attn.dep_conv.bias is None and attn.fc.bias is not None
    np.testing.assert_array_equal(attn.rate1.asnumpy(), [0.5])
    w = attn.qkv.weight.asnumpy()
    assert abs(w.std() / 0.02 - 1) < 0.05 and np.all(attn.qkv.bias.asnumpy() == 0)
    assert abs(attn.relative_position_bias_table.asnumpy().std() / 0.02 - 1) < 0.15


@pytest.mark.parametrize("kwargs,match", [
    (dict(img_size=226), r"img_size \(226, 226\) must be divisible by patch_size"),
    (dict(img_size=192), r"48x48 patch map at stage 0, which must be divisible by "
                         r"window_size 7"),
    (dict(embed_dim=100), r"stage 0 width embed_dim\*2\*\*0 = 100 must be divisible by "
                          r"num_heads\[0\] = 3"),
    (dict(depths=(2, 2, 6)), "depths and num_heads must be non-empty and of equal length"),
    (dict(window_size=0), "window_size must be a positive integer"),
    (dict(drop_path_rate=1.0), r"drop_path_rate must be a probability in \[0, 1\)"),
    (dict(num_classes=-1), "num_classes must be a non-negative integer"),
])
def test_invalid_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SwinACmix(**kwargs)


def test_invalid_layer_arguments(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a failed graph compile writes rank_0/ into the cwd
    with pytest.raises(ValueError, match=r"dim \(10\) must be divisible by num_heads \(3\)"):
        WindowAttention(10, 2, 3)
    with pytest.raises(ValueError, match="window_size must be an int or a pair"):
        WindowAttentionACmix(12, (2, 2, 2), 3)
    with pytest.raises(ValueError, match=r"the map \(6x6\) must be divisible by the window"):
        WindowAttention(12, 4, 3)(Tensor(np.zeros((1, 6, 6, 12), np.float32)))


def test_wrong_input_size_is_reported(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    net = SwinTransformer(img_size=32, embed_dim=12, depths=(1, 1), num_heads=(3, 3),
                          window_size=4, num_classes=4)
    with pytest.raises(ValueError, match=r"built for img_size \(32, 32\)"):
        net(Tensor(np.zeros((1, 3, 64, 64), np.float32)))


def torch_swin_classifier(depths, num_heads, embed_dim, window_size, num_classes):
    """The official Swin-ACmix classifier in PyTorch, from the statement of its blocks in
    tests/torch_swin_seg_reference.py: a stage whose map is no larger than the window runs
    unshifted windows of the map's size (the official rule); final LayerNorm, mean, head."""
    torch = pytest.importorskip("torch")
    import torch_swin_seg_reference as swin_ref
    from torch_reference import perturb_

    module = swin_ref.SwinSeg(embed_dim, depths, num_heads, window_size, acmix=True)
    for i in range(len(depths)):
        delattr(module, f"norm{i}")  # the segmentation backbone's per-stage norms
    dim = embed_dim * 2 ** (len(depths) - 1)
    module.norm, module.head = torch.nn.LayerNorm(dim), torch.nn.Linear(dim, num_classes)
    perturb_(module)
    module.eval()

    def forward(x):
        x = module.patch_embed.proj(x)
        h, w = x.shape[2:]
        x = module.patch_embed.norm(x.flatten(2).transpose(1, 2))
        for layer in module.layers:
            if min(h, w) <= window_size:  # (the blocks' window is then the map: no shrink)
                assert (h, w) == (window_size, window_size)
                for blk in layer.blocks:
                    blk.shift = 0
            mask = swin_ref.shifted_mask(h, w, window_size, window_size // 2)
            for blk in layer.blocks:
                x = blk(x, h, w, mask)
            if hasattr(layer, "downsample"):
                b, _, c = x.shape
                x = x.view(b, h, w, c)
                x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2],
                               x[:, 1::2, 1::2]], -1).view(b, -1, 4 * c)
                x = layer.downsample.reduction(layer.downsample.norm(x))
                h, w = h // 2, w // 2
        return module.head(module.norm(x).mean(1))

    return module, forward


@pytest.mark.slow
def test_swin_acmix_tiny_at_224_in_graph_mode_equals_pytorch():
    """The real configuration (224, window 7, maps 56/28/14/7: the last stage's window is its
    whole map, unshifted) compiled whole, against PyTorch with the same weights."""
    torch = pytest.importorskip("torch")
    module, forward = torch_swin_classifier((2, 2, 6, 2), (3, 6, 12, 24), 96, 7, 1000)
    net = create_model("swin_acmix_tiny")
    net.set_train(False)
    load_torch_state_dict(net, {k: v.numpy() for k, v in module.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        expected = forward(torch.from_numpy(x)).numpy()
    out = net(Tensor(x)).asnumpy()
    assert expected.std() > 0.1  # perturbed weights: logits that say something
    assert_close(out, expected, MODEL_REL, "swin_acmix_tiny at 224")


# ---- conversion of official Swin checkpoints ------------------------------------------

def test_derived_buffers_are_checked_and_optional():
    ctor, golden = load_golden("swin_acmix_micro")
    state = official_state(golden)
    loaded = load_torch_state_dict(build_micro(ctor), state)
    assert not any(k.endswith(("relative_position_index", "attn_mask")) for k in loaded)
    load_torch_state_dict(build_micro(ctor), without_buffers(state))  # absent: fine
    bad = dict(state)
    index = bad["layers.1.blocks.0.attn.relative_position_index"].copy()
    index[0, 1] += 1
    bad["layers.1.blocks.0.attn.relative_position_index"] = index
    with pytest.raises(ValueError, match=r"'layers\.1\.blocks\.0\.attn\.relative_position_index'"
                                         r" differs from the relative_position_index"):
        load_torch_state_dict(build_micro(ctor), bad)
    bad = dict(state)
    bad["layers.0.blocks.1.attn_mask"] = np.zeros_like(bad["layers.0.blocks.1.attn_mask"])
    with pytest.raises(ValueError, match=r"'layers\.0\.blocks\.1\.attn_mask' differs"):
        load_torch_state_dict(build_micro(ctor), bad)
    # a mask for a block that has no shift here is an unexpected key
    bad = dict(state)
    bad["layers.1.blocks.1.attn_mask"] = state["layers.0.blocks.1.attn_mask"]
    with pytest.raises(ValueError, match=r"1 unexpected keys: layers\.1\.blocks\.1\.attn_mask"):
        load_torch_state_dict(build_micro(ctor), bad)


def official_swin_state(net):
    """What the official Swin code's state_dict() holds for `net`: LayerNorm weight/bias
    and the relative_position_index / attn_mask buffers."""
    state = {}
    for p in net.get_parameters():
        name = p.name
        prefix, _, leaf = name.rpartition(".")
        leaf = {"gamma": "weight", "beta": "bias"}.get(leaf, leaf)
        state[f"{prefix}.{leaf}" if prefix else leaf] = p.asnumpy()
    for name, cell in net.cells_and_names():
        for buffer in ("relative_position_index", "attn_mask"):
            value = getattr(cell, buffer, None)
            if value is not None:
                dtype = np.int64 if buffer == "relative_position_index" else np.float32
                state[f"{name}.{buffer}"] = value.asnumpy().astype(dtype)
    return state


@pytest.mark.slow
def test_cli_converts_an_official_swin_checkpoint(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    source = create_model("swin_acmix_tiny", num_classes=5)
    state = official_swin_state(source)
    assert "layers.0.blocks.1.attn_mask" in state and "norm.weight" in state
    pth, ckpt = tmp_path / "acmix_swin_tiny.pth", tmp_path / "swin.ckpt"
    # the Swin training script keeps the weights under 'model', next to other entries
    torch.save({"model": {k: torch.from_numpy(v) for k, v in state.items()}, "epoch": 299},
               pth)
    assert main(["--model", "swin_acmix_tiny", "--num-classes", "5", "--input", str(pth),
                 "--output", str(ckpt)]) == 0
    assert "into swin_acmix_tiny" in capsys.readouterr().out
    net = create_model("swin_acmix_tiny", num_classes=5, checkpoint_path=str(ckpt))
    expected = dict(source.parameters_and_names())
    for p in net.get_parameters():
        np.testing.assert_array_equal(p.asnumpy(), expected[p.name].asnumpy(), err_msg=p.name)

    key = "layers.2.blocks.4.attn.relative_position_index"
    state[key] = state[key][::-1].copy()
    torch.save({"model": {k: torch.from_numpy(v) for k, v in state.items()}}, pth)
    assert main(["--model", "swin_acmix_tiny", "--num-classes", "5", "--input", str(pth),
                 "--output", str(tmp_path / "bad.ckpt")]) == 2
    assert f"'{key}' differs from the relative_position_index" in capsys.readouterr().err
    assert not (tmp_path / "bad.ckpt").exists()
