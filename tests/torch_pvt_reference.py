"""A PyTorch statement of PVT v1 and of this port's PVT-ACmix design, used only by the tests.

State-dict names are PVT v1's (patch_embed1.proj, pos_embed1, block1.0.attn.kv, cls_token),
so the comparison also checks that official PVT weights map onto ours. The ACmix part
states the design of mindspore_acmix.models.pvt independently: k and v are brought back
to full resolution with F.interpolate(mode="nearest"), the class token gets no
convolution term; where a map is not divisible by sr_ratio, the rows/columns the strided
reduction dropped take the last reduced token's k, v (replicate padding).

`forward_dense` is PVT v1's dense backbone (segmentation/pvt.py of the v1 branch): no class
token, no final norm, position embeddings resized with F.interpolate(mode="bilinear") from
the build grid, skipped when a stage has as many tokens as stage 1's table.
"""
import torch
import torch.nn as tnn
import torch.nn.functional as F


class Attention(tnn.Module):
    def __init__(self, dim, heads, sr_ratio, acmix):
        super().__init__()
        self.heads, self.sr_ratio, self.acmix = heads, sr_ratio, acmix
        self.d = dim // heads
        self.q = tnn.Linear(dim, dim)
        self.kv = tnn.Linear(dim, 2 * dim)
        self.proj = tnn.Linear(dim, dim)
        if sr_ratio > 1:
            self.sr = tnn.Conv2d(dim, dim, sr_ratio, sr_ratio)
            self.norm = tnn.LayerNorm(dim)
        if acmix:
            self.rate1 = tnn.Parameter(torch.full((1,), 0.5))
            self.rate2 = tnn.Parameter(torch.full((1,), 0.5))
            self.fc = tnn.Conv2d(3 * heads, 9, 1)
            self.dep_conv = tnn.Conv2d(9 * self.d, dim, 3, padding=1, groups=self.d, bias=False)

    def forward(self, x, h, w):
        b, n, c = x.shape
        q = self.q(x)
        src = x
        if self.sr_ratio > 1:
            src = self.sr(x.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2)
            src = self.norm(src)
        kv = self.kv(src)
        k, v = kv.reshape(b, -1, 2, self.heads, self.d).permute(2, 0, 3, 1, 4)
        qh = q.reshape(b, n, self.heads, self.d).transpose(1, 2)
        att = (qh @ k.transpose(-2, -1) * self.d ** -0.5).softmax(-1)
        out = self.proj((att @ v).transpose(1, 2).reshape(b, n, c))
        if not self.acmix:
            return out
        extra = n - h * w
        r = self.sr_ratio
        kv_map = kv[:, extra:].reshape(b, h // r, w // r, 2 * c).permute(0, 3, 1, 2)
        kv_map = F.interpolate(kv_map, scale_factor=r, mode="nearest")
        kv_map = F.pad(kv_map, (0, w - kv_map.shape[3], 0, h - kv_map.shape[2]), mode="replicate")
        kv_map = kv_map.permute(0, 2, 3, 1)
        qkv = torch.cat([q[:, extra:].reshape(b, h, w, c), kv_map], -1)
        f = self.fc(qkv.reshape(b, h * w, 3 * self.heads, self.d).permute(0, 2, 1, 3))
        f = f.permute(0, 3, 1, 2).reshape(b, 9 * self.d, h, w)
        conv = self.dep_conv(f).permute(0, 2, 3, 1).reshape(b, h * w, c)
        conv = F.pad(conv, (0, 0, extra, 0))
        return self.rate1 * out + self.rate2 * conv


class Block(tnn.Module):
    def __init__(self, dim, heads, mlp_ratio, sr_ratio, acmix):
        super().__init__()
        self.norm1 = tnn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, sr_ratio, acmix)
        self.norm2 = tnn.LayerNorm(dim, eps=1e-6)
        self.mlp = tnn.Module()
        self.mlp.fc1 = tnn.Linear(dim, int(dim * mlp_ratio))
        self.mlp.fc2 = tnn.Linear(int(dim * mlp_ratio), dim)

    def forward(self, x, h, w):
        x = x + self.attn(self.norm1(x), h, w)
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))


class PVT(tnn.Module):
    def __init__(self, img_size, embed_dims, num_heads, mlp_ratios, depths, sr_ratios,
                 num_classes, acmix, patch_size=4):
        super().__init__()
        for i in range(4):
            pe = tnn.Module()
            pe.proj = tnn.Conv2d(3 if i == 0 else embed_dims[i - 1], embed_dims[i],
                                 patch_size if i == 0 else 2, patch_size if i == 0 else 2)
            pe.norm = tnn.LayerNorm(embed_dims[i])
            side = img_size // (patch_size * 2 ** i)
            setattr(self, f"patch_embed{i + 1}", pe)
            setattr(self, f"pos_embed{i + 1}", tnn.Parameter(
                0.02 * torch.randn(1, side * side + (i == 3), embed_dims[i])))
            setattr(self, f"block{i + 1}", tnn.ModuleList(
                Block(embed_dims[i], num_heads[i], mlp_ratios[i], sr_ratios[i], acmix)
                for _ in range(depths[i])))
        self.grids = [img_size // (patch_size * 2 ** i) for i in range(4)]
        self.norm = tnn.LayerNorm(embed_dims[3], eps=1e-6)
        self.cls_token = tnn.Parameter(0.02 * torch.randn(1, 1, embed_dims[3]))
        self.head = tnn.Linear(embed_dims[3], num_classes)

    def forward(self, x):
        b = x.shape[0]
        for i in range(4):
            pe = getattr(self, f"patch_embed{i + 1}")
            x = pe.proj(x)
            h, w = x.shape[2:]
            x = pe.norm(x.flatten(2).transpose(1, 2))
            if i == 3:
                x = torch.cat([self.cls_token.expand(b, -1, -1), x], 1)
            x = x + getattr(self, f"pos_embed{i + 1}")
            for blk in getattr(self, f"block{i + 1}"):
                x = blk(x, h, w)
            if i < 3:
                x = x.reshape(b, h, w, -1).permute(0, 3, 1, 2)
        return self.head(self.norm(x)[:, 0])

    def forward_dense(self, x):
        b, outs = x.shape[0], []
        for i in range(4):
            pe = getattr(self, f"patch_embed{i + 1}")
            x = pe.proj(x)
            h, w = x.shape[2:]
            x = pe.norm(x.flatten(2).transpose(1, 2))
            pos = getattr(self, f"pos_embed{i + 1}")[:, (i == 3):]
            if h * w != self.grids[0] ** 2:  # PVT's test: stage 1's token count
                g = self.grids[i]
                pos = F.interpolate(pos.reshape(1, g, g, -1).permute(0, 3, 1, 2), size=(h, w),
                                    mode="bilinear").reshape(1, -1, h * w).permute(0, 2, 1)
            x = x + pos
            for blk in getattr(self, f"block{i + 1}"):
                x = blk(x, h, w)
            x = x.reshape(b, h, w, -1).permute(0, 3, 1, 2)
            outs.append(x)
        return outs
