"""Swin Transformer (Liu et al., 2021) and Swin-ACmix, the official SwinTransformer_acmix.

Names mirror the official modules (patch_embed.proj, layers.0.blocks.1.attn.rate1,
layers.0.downsample.reduction, norm, head), so official checkpoints load one to one
(mindspore_acmix.convert). `attn_mask` and `relative_position_index` are constants
rebuilt from the configuration, never Parameters.

Faithful to the official code, including its quirks:
- in shifted blocks the ACmix convolution path also runs on the cyclically shifted map,
  so it wraps around the image borders and its zero padding lands on the seam inside
  the image (between rows/columns shift-1 and shift of the original map);
- the convolution path skips `proj`; `fc` has a bias, `dep_conv` none (the official init
  deletes it) and starts as shift kernels;
- a stage whose map is not larger than the window uses one window of the map's size
  and no shift (stage 4 at 224: 7x7).

Dense-prediction mode (`features_only=True`) is the official segmentation backbone
(SwinTransformer/Swin-Transformer-Semantic-Segmentation, mmseg/models/backbones/
swin_transformer.py) on the same parameters: any input size; the image zero-padded
right/bottom to a multiple of the patch, every block's normed map to a multiple of the
window (the shifted-window mask built for the padded size, the shift never disabled),
PatchMerging padding an odd side by one; each output stage through its own LayerNorm
(norm0..norm3, which exist only in this mode; the final `norm` and the classifier are
dropped). The ACmix convolution path runs on the padded (in shifted blocks also rolled)
map: it sits inside the attention cell, which sees what the official block hands it.
"""
import numpy as np
from mindspore import Parameter, Tensor, nn

from ..checks import int_pair, positive_int, probability
from ..layers.stochastic import Dropout
from ..layers.transformer import (DropPath, Mlp, PatchEmbed,
                                  init_transformer_weights, layer_norm, linspace, trunc_normal_)
from ..layers.window_attention import WindowAttention, WindowAttentionACmix
from ..ops.roll import roll2d
from ..ops.shift import pad_axis
from ..registry import register_model
from .base import ACMIX_TABLE, Backbone, feature, model_cfg, paper


def shifted_window_mask(h, w, window, shift):
    """(nW, window**2, window**2) float mask of the official code: 0 within a region,
    -100 between tokens that only the cyclic shift made neighbours."""
    img = np.zeros((h, w), np.float32)
    cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for i, hs in enumerate(cuts):
        for j, ws in enumerate(cuts):
            img[hs, ws] = 3 * i + j
    win = img.reshape(h // window, window, w // window, window).transpose(0, 2, 1, 3)
    win = win.reshape(-1, window * window)
    return np.where(win[:, None, :] != win[:, :, None], -100.0, 0.0).astype(np.float32)


def pad_end(x, multiples, axes):
    """Zero-pad `x` at the end of each of `axes` up to a multiple of its entry of
    `multiples` (right/bottom, as the official segmentation backbone)."""
    for axis, multiple in zip(axes, multiples):
        x = pad_axis(x, axis, 0, -x.shape[axis] % multiple, fill="zero")
    return x


class PatchMerging(nn.Cell):
    """2x2 neighbours concatenated (in the official order x00, x10, x01, x11), normed,
    and reduced from 4C to 2C channels without bias."""

    def __init__(self, input_resolution, dim):
        super().__init__()
        self.input_resolution = input_resolution
        self.reduction = nn.Dense(4 * dim, 2 * dim, has_bias=False)
        self.norm = layer_norm(4 * dim)

    def construct(self, x, h=None, w=None):
        """x: (B, h*w, C); h, w default to the build resolution. An odd side is zero-padded
        by one (the segmentation backbone's rule): the output is ceil(h/2) x ceil(w/2)."""
        if h is None:
            h, w = self.input_resolution
        b, _, c = x.shape
        if h % 2 or w % 2:
            x = pad_end(x.view(b, h, w, c), (2, 2), (1, 2))
            h, w = h + h % 2, w + w % 2
        # (B, H/2, 2 [row], W/2, 2 [col], C) -> order (col, row): x00, x10, x01, x11
        x = x.view(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 4, 2, 5)
        return self.reduction(self.norm(x.reshape(b, (h // 2) * (w // 2), 4 * c)))


class SwinTransformerBlock(nn.Cell):
    """LN -> (shifted) window attention -> residual; LN -> MLP -> residual, on (B, H*W, C)."""

    def __init__(self, dim, input_resolution, num_heads, window_size=7, shift_size=0,
                 mlp_ratio=4.0, qkv_bias=True, qk_scale=None, drop=0.0, attn_drop=0.0,
                 drop_path=0.0, acmix=True):
        super().__init__()
        self.dim = dim
        self.input_resolution = tuple(input_resolution)
        self.dense = False
        # what the segmentation backbone uses at every size (enter_dense_mode)
        self.configured = dict(window_size=window_size, shift_size=shift_size,
                               attention=(dim, num_heads, qkv_bias, qk_scale, attn_drop, drop),
                               acmix=acmix)
        if min(self.input_resolution) <= window_size:
            # the map fits one window: no partition and nothing to shift
            shift_size, window_size = 0, min(self.input_resolution)
        if not 0 <= shift_size < window_size:
            raise ValueError(f"shift_size must be in [0, window_size={window_size}), "
                             f"got {shift_size}")
        h, w = self.input_resolution
        if h % window_size or w % window_size:
            raise ValueError(f"the {h}x{w} map must be divisible by window_size {window_size}")
        self.window_size, self.shift_size = window_size, shift_size
        attention = WindowAttentionACmix if acmix else WindowAttention
        self.norm1 = layer_norm(dim)
        self.attn = attention(dim, window_size, num_heads, qkv_bias, qk_scale, attn_drop, drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = layer_norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        self.attn_mask = (Tensor(shifted_window_mask(h, w, window_size, shift_size))
                          if shift_size > 0 else None)

    def enter_dense_mode(self):
        """The segmentation backbone's block: the configured window and shift at every size
        (never shrunk to the map, the shift never disabled), the map padded to windows and
        the mask built per input size. A window shrunk at the build size gets a new
        attention cell of the configured window (same parameter names)."""
        cfg = self.configured
        if self.window_size != cfg["window_size"]:
            attention = WindowAttentionACmix if cfg["acmix"] else WindowAttention
            dim, heads, qkv_bias, qk_scale, attn_drop, drop = cfg["attention"]
            self.attn = attention(dim, cfg["window_size"], heads, qkv_bias, qk_scale,
                                  attn_drop, drop)
            init_transformer_weights(self.attn)
        self.window_size, self.shift_size = cfg["window_size"], cfg["shift_size"]
        self.attn_mask = None
        self.dense = True

    def construct(self, x, h=None, w=None):
        """x: (B, h*w, C); h, w default to the build resolution (classification)."""
        if h is None:
            h, w = self.input_resolution
        b, length, c = x.shape
        if length != h * w:
            raise ValueError(f"input feature has {length} tokens, expected {h}x{w}")
        shortcut = x
        x = self.norm1(x).view(b, h, w, c)
        mask = self.attn_mask
        if self.dense:
            # padded after norm1, as the official block: padded tokens are zeros there
            x = pad_end(x, (self.window_size, self.window_size), (1, 2))
            if self.shift_size > 0:
                mask = Tensor(shifted_window_mask(x.shape[1], x.shape[2], self.window_size,
                                                  self.shift_size))
        if self.shift_size > 0:
            x = roll2d(x, (-self.shift_size, -self.shift_size))
        x = self.attn(x, mask)
        if self.shift_size > 0:
            x = roll2d(x, (self.shift_size, self.shift_size))
        if self.dense:
            x = x[:, :h, :w]
        x = shortcut + self.drop_path(x.reshape(b, h * w, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class BasicLayer(nn.Cell):
    """One stage: blocks alternating plain and shifted windows, then optional PatchMerging."""

    def __init__(self, dim, input_resolution, depth, num_heads, window_size, mlp_ratio,
                 qkv_bias, qk_scale, drop, attn_drop, drop_path, downsample, acmix):
        super().__init__()
        self.blocks = nn.CellList([
            SwinTransformerBlock(dim, input_resolution, num_heads, window_size,
                                 0 if i % 2 == 0 else window_size // 2, mlp_ratio, qkv_bias,
                                 qk_scale, drop, attn_drop, drop_path[i], acmix)
            for i in range(depth)])
        self.downsample = PatchMerging(input_resolution, dim) if downsample else None

    def construct(self, x):
        for blk in self.blocks:
            x = blk(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return x


class SwinTransformer(Backbone):
    """Swin Transformer for a fixed input size; `acmix=True` gives SwinTransformer_acmix.

    `drop_rate` is the official one (after the embedding, in the MLPs and projections);
    `features_only` gives the segmentation backbone (module docstring): any input size,
    each stage's tokens before patch merging through its output norm, as (B, C, H, W)
    maps of ceil(H / 4 / 2**i) x ceil(W / 4 / 2**i) at reductions 4/8/16/32.

    Raises ValueError for sizes the architecture cannot take: img_size not divisible by
    patch_size, a stage map that cannot be halved by PatchMerging or split into windows,
    a stage width (embed_dim * 2**i) not divisible by its heads.
    """

    def __init__(self, img_size=224, patch_size=4, in_chans=3, num_classes=1000, embed_dim=96,
                 depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7, mlp_ratio=4.0,
                 qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1,
                 ape=False, patch_norm=True, acmix=False):
        super().__init__()
        img_size = int_pair("img_size", img_size)
        patch_size = int_pair("patch_size", patch_size)
        for name, value in (("in_chans", in_chans), ("embed_dim", embed_dim),
                            ("window_size", window_size)):
            positive_int(name, value)
        depths, num_heads = tuple(depths), tuple(num_heads)
        if not depths or len(depths) != len(num_heads):
            raise ValueError(f"depths and num_heads must be non-empty and of equal length, got "
                             f"{depths!r} and {num_heads!r}")
        for i, (d, n) in enumerate(zip(depths, num_heads)):
            positive_int(f"depths[{i}]", d)
            positive_int(f"num_heads[{i}]", n)
            if (embed_dim * 2 ** i) % n:
                raise ValueError(f"stage {i} width embed_dim*2**{i} = {embed_dim * 2 ** i} must "
                                 f"be divisible by num_heads[{i}] = {n}")
        if not mlp_ratio > 0:
            raise ValueError(f"mlp_ratio must be positive, got {mlp_ratio!r}")
        for name, value in (("drop_rate", drop_rate), ("attn_drop_rate", attn_drop_rate),
                            ("drop_path_rate", drop_path_rate)):
            probability(name, value)
        if img_size[0] % patch_size[0] or img_size[1] % patch_size[1]:
            raise ValueError(f"img_size {img_size} must be divisible by patch_size {patch_size}")
        res = (img_size[0] // patch_size[0], img_size[1] // patch_size[1])
        num_layers = len(depths)
        for i in range(num_layers):
            h, w = res[0] // 2 ** i, res[1] // 2 ** i
            window = min(window_size, h, w)
            if (i < num_layers - 1 and (h % 2 or w % 2)) or h % window or w % window:
                raise ValueError(
                    f"img_size {img_size} gives a {h}x{w} patch map at stage {i}, which must be "
                    f"divisible by window_size {window}"
                    + (" and by 2 for patch merging" if i < num_layers - 1 else "")
                    + f"; use an img_size divisible by patch_size * 2**{num_layers - 1} * "
                    "window_size")

        self.img_size, self.patch_size, self.acmix = img_size, patch_size, acmix
        self.feature_info = [feature(embed_dim * 2 ** i, patch_size[0] * 2 ** i, f"layers.{i}")
                             for i in range(num_layers)]
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim, patch_norm)
        self.absolute_pos_embed = None
        if ape:
            self.absolute_pos_embed = Parameter(
                Tensor(np.zeros((1, res[0] * res[1], embed_dim), np.float32)),
                name="absolute_pos_embed")
            trunc_normal_(self.absolute_pos_embed)
        self.pos_drop = Dropout(p=drop_rate)
        dpr = linspace(0.0, drop_path_rate, sum(depths))
        self.layers = nn.CellList([
            BasicLayer(embed_dim * 2 ** i, (res[0] // 2 ** i, res[1] // 2 ** i), depths[i],
                       num_heads[i], window_size, mlp_ratio, qkv_bias, None, drop_rate,
                       attn_drop_rate, dpr[sum(depths[:i]):sum(depths[:i + 1])],
                       i < num_layers - 1, acmix)
            for i in range(num_layers)])
        self.norm = layer_norm(embed_dim * 2 ** (num_layers - 1))
        self._init_head(embed_dim * 2 ** (num_layers - 1), num_classes)
        init_transformer_weights(self)

    def _embed(self, x):
        if x.ndim != 4 or tuple(x.shape[2:]) != self.img_size:
            raise ValueError(f"input must be (B, C, {self.img_size[0]}, {self.img_size[1]}) as "
                             f"this model was built for img_size {self.img_size}; got {x.shape}")
        x = self.patch_embed(x)
        if self.absolute_pos_embed is not None:
            x = x + self.absolute_pos_embed
        return self.pos_drop(x)

    def forward_features(self, x):
        """(B, C, H, W) image -> normed (B, tokens, num_features) of the last stage."""
        x = self._embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)

    def pool_features(self, x):
        return x.mean(axis=1)

    def _enter_dense_mode(self):
        """The segmentation backbone: blocks in dense mode, an output LayerNorm per selected
        stage (norm0..norm3, named as there), no final norm."""
        if self.absolute_pos_embed is not None:
            raise ValueError("features_only with ape=True is not supported: the Swin "
                             "segmentation backbone keeps its absolute position embedding in "
                             "another layout (Swin-T/S use ape=False)")
        for layer in self.layers:
            for blk in layer.blocks:
                blk.enter_dense_mode()
        for i in self.out_indices:
            setattr(self, f"norm{i}", layer_norm(self.all_feature_info[i]["num_chs"]))
        del self.norm

    def forward_intermediates(self, x):
        """Every stage's map, normed, in dense mode (any size, zero-padded inside)."""
        x = pad_end(x, self.patch_size, (2, 3))
        h, w = x.shape[2] // self.patch_size[0], x.shape[3] // self.patch_size[1]
        x = self.pos_drop(self.patch_embed(x))
        feats = ()
        for layer in self.layers:
            for blk in layer.blocks:
                x = blk(x, h, w)
            feats += ((x, h, w),)
            if layer.downsample is not None:
                x = layer.downsample(x, h, w)
                h, w = (h + 1) // 2, (w + 1) // 2
        out = []
        for i in self.out_indices:
            x, h, w = feats[i]
            x = getattr(self, "norm" + str(i))(x)
            out.append(x.reshape(x.shape[0], h, w, -1).transpose(0, 3, 1, 2))
        return out


class SwinACmix(SwinTransformer):
    """The official SwinTransformer_acmix: every block's attention is WindowAttentionACmix."""

    def __init__(self, img_size=224, patch_size=4, in_chans=3, num_classes=1000, embed_dim=96,
                 depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7, mlp_ratio=4.0,
                 qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1,
                 ape=False, patch_norm=True):
        super().__init__(img_size, patch_size, in_chans, num_classes, embed_dim, depths,
                         num_heads, window_size, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate,
                         drop_path_rate, ape, patch_norm, acmix=True)


TINY = dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7)
SMALL = dict(TINY, depths=(2, 2, 18, 2))
ACMIX_SOURCE = "Swin-ACmix (Pan et al., CVPR 2022), LeapLabTHU/ACmix Swin-Transformer/"
SWIN_SOURCE = "Swin Transformer (Liu et al., ICCV 2021), microsoft/Swin-Transformer"


def swin_cfg(source, published):
    """Swin's evaluation: bicubic resize to 224 / 0.875, centre crop 224."""
    return model_cfg(source, interpolation="bicubic", first_conv="patch_embed.proj",
                     classifier="head", paper=published)


@register_model(default_cfg=swin_cfg(ACMIX_SOURCE, paper("30M", "4.6G", 81.9, ACMIX_TABLE)))
def swin_acmix_tiny(num_classes=1000, **kwargs):
    return SwinACmix(num_classes=num_classes, **{**TINY, "drop_path_rate": 0.2, **kwargs})


@register_model(default_cfg=swin_cfg(ACMIX_SOURCE, paper("51M", "9.0G", 83.5, ACMIX_TABLE)))
def swin_acmix_small(num_classes=1000, **kwargs):
    return SwinACmix(num_classes=num_classes, **{**SMALL, "drop_path_rate": 0.3, **kwargs})


@register_model(default_cfg=swin_cfg(SWIN_SOURCE, paper("28M", "4.5G", 81.2, "Swin paper")))
def swin_tiny(num_classes=1000, **kwargs):
    return SwinTransformer(num_classes=num_classes, **{**TINY, "drop_path_rate": 0.2, **kwargs})


@register_model(default_cfg=swin_cfg(SWIN_SOURCE, paper("50M", "8.7G", 83.0, "Swin paper")))
def swin_small(num_classes=1000, **kwargs):
    return SwinTransformer(num_classes=num_classes, **{**SMALL, "drop_path_rate": 0.3, **kwargs})
