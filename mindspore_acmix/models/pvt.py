"""PVT v1 (Wang et al., ICCV 2021) and PVT-ACmix, the paper's PVT-ACmix-T/S.

The plain models follow whai362/PVT (classification/pvt.py) with its module names
(patch_embed1.proj, pos_embed1, block1.0.attn.q / kv / sr / norm, cls_token, norm,
head), so official PVT v1 weights load with mindspore_acmix.convert. LayerNorm eps is
1e-6 in the blocks and the final norm, 1e-5 in the patch embeddings and the
spatial-reduction norm, as there. Classification takes the img_size the model was built
for; dense-prediction mode (`features_only=True`) is PVT's dense backbone
(segmentation/pvt.py of the v1 branch): any input size, the position embeddings
resized bilinearly (align_corners=False) from the build grid to each stage's grid, no
class token, no final norm, each stage's map as the output.

No code of PVT-ACmix is public; the paper only says that ACmix replaces the attention
and shares its projections between the two paths. The decisions left open, and taken
here (each against the paper's 13M / 2.0G and 25M / 3.9G):

1. Shared projections: the convolution path is fed by the attention's own q, k and v,
   in the Swin-ACmix layout (3 * heads maps of head_dim channels), through the official
   Swin-ACmix module: fc = 1x1 conv 3*heads -> 9 with bias, dep_conv = 3x3 grouped conv
   (one group per head-dim index), no bias, shift-initialised; out = rate1 * proj(attn)
   + rate2 * conv, rates 0.5, the convolution path skipping proj.
2. Full-resolution k and v for the convolution path: PVT computes k and v from the
   spatially reduced tokens (sr_ratio x sr_ratio strided conv + LayerNorm), so they
   exist only at (H/sr) x (W/sr). They are upsampled by nearest neighbour (each reduced
   token copied onto the sr x sr patch it summarises), which costs nothing; q is
   already full resolution. Recomputing k, v from the unreduced tokens with kv would
   add 0.18 / 0.42 GMACs (T / S) and overshoot the paper's FLOPs (2.2G / 4.4G), while
   the upsampled path gives 2.02G / 3.97G (the paper's figure puts PVT-ACmix-S at about
   3.95G). In the last stage (sr 1) the path equals Swin-ACmix's.
3. Class token: it has no place on the map, so the convolution path skips it and its
   output is the attention path alone (its convolution term is zero).
4. Every block of every stage is replaced, as in Swin-ACmix; everything else (depths,
   widths, heads, MLP ratios, SR ratios, position embeddings, class token in stage 4,
   init, drop path 0.1) is PVT v1's.
5. Where a stage map is not divisible by its sr_ratio (dense mode at other sizes), the
   strided reduction drops the last rows/columns, as PVT's does; their k, v are those of
   the nearest reduced token (the last one): the patch copy, edge-extended.
"""
import numpy as np
from mindspore import Parameter, Tensor, nn, ops

from ..checks import int_pair, positive_int, probability
from ..layers.stochastic import Dropout
from ..layers.transformer import (DropPath, Mlp, PatchEmbed,
                                  init_transformer_weights, layer_norm, linspace, trunc_normal_)
from ..layers.window_attention import TokenConvPath
from ..ops.precision import Float32Softmax
from ..registry import register_model
from .base import ACMIX_TABLE, Backbone, feature, model_cfg, paper

NUM_STAGES = 4


def repeat_last(x, axis, count):
    """x with its last entry along `axis` appended `count` more times (edge padding)."""
    if count == 0:
        return x
    last = ops.narrow(x, axis, x.shape[axis] - 1, 1)
    return ops.concat((x,) + (last,) * count, axis)


class PVTAttention(nn.Cell):
    """Multi-head attention whose keys and values come from tokens spatially reduced by an
    sr_ratio x sr_ratio strided convolution and a LayerNorm (PVT v1's SRA).

    resolution: (h, w) of the token map; the input may carry extra leading tokens (the
    class token) when sr_ratio is 1.
    """

    def __init__(self, dim, num_heads, resolution, qkv_bias=True, qk_scale=None,
                 attn_drop=0.0, proj_drop=0.0, sr_ratio=1):
        super().__init__()
        positive_int("dim", dim)
        positive_int("num_heads", num_heads)
        positive_int("sr_ratio", sr_ratio)
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.dim, self.num_heads, self.sr_ratio = dim, num_heads, sr_ratio
        self.resolution = tuple(resolution)
        self.head_dim = dim // num_heads
        self.scale = float(qk_scale) if qk_scale else self.head_dim ** -0.5
        self.q = nn.Dense(dim, dim, has_bias=qkv_bias)
        self.kv = nn.Dense(dim, 2 * dim, has_bias=qkv_bias)
        self.softmax = Float32Softmax(-1)  # float32 under AMP O2 (ops/precision.py)
        self.attn_drop = Dropout(p=attn_drop)
        self.proj = nn.Dense(dim, dim)
        self.proj_drop = Dropout(p=proj_drop)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, stride=sr_ratio, pad_mode="valid",
                                has_bias=True)
            self.norm = layer_norm(dim)

    def key_tokens(self, x, h, w):
        """The tokens keys and values are computed from: reduced when sr_ratio > 1."""
        if self.sr_ratio == 1:
            return x
        b, _, c = x.shape
        x = self.sr(x.transpose(0, 2, 1).reshape(b, c, h, w))
        return self.norm(x.reshape(b, c, -1).transpose(0, 2, 1))

    def attend(self, q, kv):
        """proj(softmax(q k^T * scale) v) of q (B, N, C) and kv (B, Nk, 2C)."""
        b, n, c = q.shape
        q = q.reshape(b, n, self.num_heads, self.head_dim).transpose(0, 2, 1, 3)
        kv = kv.reshape(b, -1, 2, self.num_heads, self.head_dim).transpose(2, 0, 3, 1, 4)
        # q scaled before the product, as Swin does: q k^T itself can overflow float16
        attn = ops.matmul(q * self.scale, kv[0].swapaxes(-2, -1))
        attn = self.attn_drop(self.softmax(attn))
        return self.proj(ops.matmul(attn, kv[1]).transpose(0, 2, 1, 3).reshape(b, n, c))

    def construct(self, x, h=None, w=None):
        """x: (B, [extra +] h*w, C); h, w default to the build resolution."""
        if h is None:
            h, w = self.resolution
        return self.proj_drop(self.attend(self.q(x), self.kv(self.key_tokens(x, h, w))))


class PVTAttentionACmix(TokenConvPath, PVTAttention):
    """PVT's spatial-reduction attention mixed with ACmix's convolution path (see the
    module docstring for the design)."""

    def __init__(self, dim, num_heads, resolution, qkv_bias=True, qk_scale=None,
                 attn_drop=0.0, proj_drop=0.0, sr_ratio=1):
        super().__init__(dim, num_heads, resolution, qkv_bias, qk_scale, attn_drop, proj_drop,
                         sr_ratio)
        self._init_conv_path(dim, num_heads)

    def full_resolution(self, kv, h, w):
        """Reduced (B, h//sr * w//sr, 2C) tokens back to (B, h*w, 2C): each copied onto the
        sr x sr patch it summarises; rows/columns the reduction dropped (h, w not divisible
        by sr) repeat the last patch's."""
        r = self.sr_ratio
        b, _, c = kv.shape
        hr, wr = h // r, w // r
        kv = kv.reshape(b, hr, 1, wr, 1, c)
        kv = ops.broadcast_to(kv, (b, hr, r, wr, r, c)).reshape(b, hr * r, wr * r, c)
        kv = repeat_last(kv, 1, h - hr * r)
        return repeat_last(kv, 2, w - wr * r).reshape(b, h * w, c)

    def construct(self, x, h=None, w=None):
        if h is None:
            h, w = self.resolution
        b, n, c = x.shape
        q, kv = self.q(x), self.kv(self.key_tokens(x, h, w))
        out_att = self.attend(q, kv)
        extra = n - h * w  # leading class token(s): attention only
        kv_map = kv[:, extra:] if self.sr_ratio == 1 else self.full_resolution(kv, h, w)
        qkv = ops.concat((q[:, extra:], kv_map), -1)
        out_conv = self.conv_path(qkv, h, w).reshape(b, h * w, c)
        if extra > 0:
            out_conv = ops.concat((ops.zeros((b, extra, c), out_conv.dtype), out_conv), 1)
        return self.proj_drop(self.rate1 * out_att + self.rate2 * out_conv)


class Block(nn.Cell):
    """Pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x)); LN eps 1e-6."""

    def __init__(self, dim, num_heads, resolution, mlp_ratio, qkv_bias, drop, attn_drop,
                 drop_path, sr_ratio, acmix):
        super().__init__()
        attention = PVTAttentionACmix if acmix else PVTAttention
        self.norm1 = layer_norm(dim, 1e-6)
        self.attn = attention(dim, num_heads, resolution, qkv_bias, None, attn_drop, drop,
                              sr_ratio)
        self.drop_path = DropPath(drop_path)
        self.norm2 = layer_norm(dim, 1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def construct(self, x, h=None, w=None):
        x = x + self.drop_path(self.attn(self.norm1(x), h, w))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def _four(name, values):
    values = tuple(values)
    if len(values) != NUM_STAGES:
        raise ValueError(f"{name} must give {NUM_STAGES} stages, got {values!r}")
    return values


class PyramidVisionTransformer(Backbone):
    """PVT v1 for a fixed input size; `acmix=True` gives PVT-ACmix.

    `drop_rate` is the official one (after the position embeddings, in the MLPs and
    projections); `features_only` gives PVT's dense backbone (module docstring): any input
    size at or above min_input_size (32 for PVT's sr_ratios), each stage's output as
    (B, C, H, W) maps of floor(H / 4 / 2**i) x floor(W / 4 / 2**i), no class token.
    """

    classifier_init = "trunc_normal"

    def __init__(self, img_size=224, patch_size=4, in_chans=3, num_classes=1000,
                 embed_dims=(64, 128, 320, 512), num_heads=(1, 2, 5, 8), mlp_ratios=(8, 8, 4, 4),
                 qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1,
                 depths=(2, 2, 2, 2), sr_ratios=(8, 4, 2, 1), acmix=False):
        super().__init__()
        img_size = int_pair("img_size", img_size)
        positive_int("patch_size", patch_size)
        positive_int("in_chans", in_chans)
        embed_dims, num_heads = _four("embed_dims", embed_dims), _four("num_heads", num_heads)
        mlp_ratios, depths = _four("mlp_ratios", mlp_ratios), _four("depths", depths)
        sr_ratios = _four("sr_ratios", sr_ratios)
        for i in range(NUM_STAGES):
            for name, values in (("embed_dims", embed_dims), ("num_heads", num_heads),
                                 ("depths", depths), ("sr_ratios", sr_ratios)):
                positive_int(f"{name}[{i}]", values[i])
            if embed_dims[i] % num_heads[i]:
                raise ValueError(f"embed_dims[{i}] ({embed_dims[i]}) must be divisible by "
                                 f"num_heads[{i}] ({num_heads[i]})")
            if not mlp_ratios[i] > 0:
                raise ValueError(f"mlp_ratios[{i}] must be positive, got {mlp_ratios[i]!r}")
        if sr_ratios[-1] != 1:
            raise ValueError("sr_ratios[3] must be 1: the last stage carries the class token, "
                             "which a spatial reduction cannot take")
        for name, value in (("drop_rate", drop_rate), ("attn_drop_rate", attn_drop_rate),
                            ("drop_path_rate", drop_path_rate)):
            probability(name, value)
        stride = patch_size * 2 ** (NUM_STAGES - 1)
        if img_size[0] % stride or img_size[1] % stride:
            raise ValueError(f"img_size {img_size} must be divisible by patch_size * 8 = "
                             f"{stride} (one patch embedding and three 2x2 ones)")
        self.img_size, self.patch_size, self.acmix = img_size, patch_size, acmix
        self.resolutions = [(img_size[0] // (patch_size * 2 ** i),
                             img_size[1] // (patch_size * 2 ** i)) for i in range(NUM_STAGES)]
        # stage i's map is floor(H / (patch_size * 2**i)) (unpadded strided embeddings); its
        # spatial reduction (kernel = stride = sr_ratio, unpadded) needs at least sr_ratio
        self.min_input_size = max(patch_size * 2 ** i * r for i, r in enumerate(sr_ratios))
        dpr = linspace(0.0, drop_path_rate, sum(depths))
        for i in range(NUM_STAGES):
            h, w = self.resolutions[i]
            tokens = h * w + (1 if i == NUM_STAGES - 1 else 0)
            setattr(self, f"patch_embed{i + 1}",
                    PatchEmbed(patch_size if i == 0 else 2,
                               in_chans if i == 0 else embed_dims[i - 1], embed_dims[i]))
            pos_embed = Parameter(Tensor(np.zeros((1, tokens, embed_dims[i]), np.float32)),
                                  name=f"pos_embed{i + 1}")
            trunc_normal_(pos_embed)
            setattr(self, f"pos_embed{i + 1}", pos_embed)
            setattr(self, f"pos_drop{i + 1}", Dropout(p=drop_rate))
            first = sum(depths[:i])
            setattr(self, f"block{i + 1}", nn.CellList([
                Block(embed_dims[i], num_heads[i], (h, w), mlp_ratios[i], qkv_bias, drop_rate,
                      attn_drop_rate, dpr[first + j], sr_ratios[i], acmix)
                for j in range(depths[i])]))
        self.feature_info = [feature(embed_dims[i], patch_size * 2 ** i, f"block{i + 1}")
                             for i in range(NUM_STAGES)]
        self.norm = layer_norm(embed_dims[-1], 1e-6)
        self.cls_token = Parameter(Tensor(np.zeros((1, 1, embed_dims[-1]), np.float32)),
                                   name="cls_token")
        trunc_normal_(self.cls_token)
        self._init_head(embed_dims[-1], num_classes)
        init_transformer_weights(self)

    def _stage(self, x, patch_embed, pos_embed, pos_drop, blocks, index):
        """Patch embedding, position embedding and blocks of one stage, on (B, C, H, W)."""
        x = patch_embed(x)
        if index == NUM_STAGES - 1:
            x = ops.concat((ops.broadcast_to(self.cls_token, (x.shape[0], 1, x.shape[2])), x),
                           1)
        x = pos_drop(x + pos_embed)
        for blk in blocks:
            x = blk(x)
        if index == NUM_STAGES - 1:
            return x
        h, w = self.resolutions[index]
        return x.reshape(x.shape[0], h, w, -1).transpose(0, 3, 1, 2)

    def _stages(self, x):
        """Stage outputs: three (B, C, H, W) maps, then stage 4's (B, 1 + tokens, C)."""
        if x.ndim != 4 or tuple(x.shape[2:]) != self.img_size:
            raise ValueError(f"input must be (B, C, {self.img_size[0]}, {self.img_size[1]}) as "
                             f"this model was built for img_size {self.img_size}; got {x.shape}")
        x1 = self._stage(x, self.patch_embed1, self.pos_embed1, self.pos_drop1, self.block1, 0)
        x2 = self._stage(x1, self.patch_embed2, self.pos_embed2, self.pos_drop2, self.block2, 1)
        x3 = self._stage(x2, self.patch_embed3, self.pos_embed3, self.pos_drop3, self.block3, 2)
        x4 = self._stage(x3, self.patch_embed4, self.pos_embed4, self.pos_drop4, self.block4, 3)
        return x1, x2, x3, x4

    def forward_features(self, x):
        """(B, C, H, W) image -> normed (B, 1 + tokens, C) of the last stage, class token first."""
        return self.norm(self._stages(x)[3])

    def pool_features(self, x):
        return x[:, 0]

    def _enter_dense_mode(self):
        """PVT's dense backbone has no class token and no final norm (pos_embed4 keeps its
        class-token slot, unused, so that classification checkpoints load)."""
        del self.cls_token
        del self.norm

    def resized_pos_embed(self, pos_embed, index, h, w):
        """Stage `index`'s (1, tokens, C) position embedding resized bilinearly
        (align_corners=False, as F.interpolate's default in PVT's dense code) from the build
        grid to h x w. PVT skips the resize when a stage has as many tokens as stage 1 at
        the build size; this compares the grid, which differs only where such a stage has
        another shape (e.g. 49x64), and there PVT adds a table of the wrong grid."""
        gh, gw = self.resolutions[index]
        if (h, w) == (gh, gw):
            return pos_embed
        c = pos_embed.shape[2]
        grid = pos_embed.reshape(1, gh, gw, c).transpose(0, 3, 1, 2)
        grid = ops.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False)
        return grid.reshape(1, c, h * w).transpose(0, 2, 1)

    def _dense_stage(self, x, patch_embed, pos_embed, pos_drop, blocks, index):
        """One stage of the dense backbone on a (B, C, H, W) map of any size."""
        stride = self.patch_size if index == 0 else 2
        h, w = x.shape[2] // stride, x.shape[3] // stride
        x = patch_embed(x)
        if index == NUM_STAGES - 1:
            pos_embed = pos_embed[:, 1:]  # the class token's slot
        x = pos_drop(x + self.resized_pos_embed(pos_embed, index, h, w))
        for blk in blocks:
            x = blk(x, h, w)
        return x.reshape(x.shape[0], h, w, -1).transpose(0, 3, 1, 2)

    def forward_intermediates(self, x):
        """Every stage's map in dense mode (any size at or above min_input_size)."""
        x1 = self._dense_stage(x, self.patch_embed1, self.pos_embed1, self.pos_drop1,
                               self.block1, 0)
        x2 = self._dense_stage(x1, self.patch_embed2, self.pos_embed2, self.pos_drop2,
                               self.block2, 1)
        x3 = self._dense_stage(x2, self.patch_embed3, self.pos_embed3, self.pos_drop3,
                               self.block3, 2)
        x4 = self._dense_stage(x3, self.patch_embed4, self.pos_embed4, self.pos_drop4,
                               self.block4, 3)
        return self.select_features((x1, x2, x3, x4))


TINY = dict(depths=(2, 2, 2, 2))
SMALL = dict(depths=(3, 4, 6, 3))
ACMIX_SOURCE = ("PVT-ACmix (Pan et al., CVPR 2022; no public code: this project's design, see "
                "the module docstring) on whai362/PVT v1")
PVT_SOURCE = "PVT v1 (Wang et al., ICCV 2021), whai362/PVT classification/pvt.py"


def pvt_cfg(source, published):
    """PVT's evaluation (DeiT's): bicubic resize to 224 / 0.875, centre crop 224."""
    return model_cfg(source, interpolation="bicubic", first_conv="patch_embed1.proj",
                     classifier="head", paper=published)


@register_model(default_cfg=pvt_cfg(ACMIX_SOURCE, paper("13M", "2.0G", 78.0, ACMIX_TABLE)))
def pvt_acmix_tiny(num_classes=1000, **kwargs):
    return PyramidVisionTransformer(num_classes=num_classes, acmix=True, **{**TINY, **kwargs})


@register_model(default_cfg=pvt_cfg(ACMIX_SOURCE, paper("25M", "3.9G", 81.7, ACMIX_TABLE)))
def pvt_acmix_small(num_classes=1000, **kwargs):
    return PyramidVisionTransformer(num_classes=num_classes, acmix=True, **{**SMALL, **kwargs})


@register_model(default_cfg=pvt_cfg(PVT_SOURCE, paper("13.2M", "1.9G", 75.1, "PVT README")))
def pvt_tiny(num_classes=1000, **kwargs):
    return PyramidVisionTransformer(num_classes=num_classes, **{**TINY, **kwargs})


@register_model(default_cfg=pvt_cfg(PVT_SOURCE, paper("24.5M", "3.8G", 79.8, "PVT README")))
def pvt_small(num_classes=1000, **kwargs):
    return PyramidVisionTransformer(num_classes=num_classes, **{**SMALL, **kwargs})
