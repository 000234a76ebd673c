"""A PyTorch statement of the official Swin segmentation backbone
(SwinTransformer/Swin-Transformer-Semantic-Segmentation, mmseg/models/backbones/
swin_transformer.py), with the official Swin-ACmix window attention (LeapLabTHU/ACmix,
Swin-Transformer/models/swin_transformer_acmix.py) as an option; used only by the tests.

State-dict names are the official ones (patch_embed.proj, layers.0.blocks.1.attn.qkv,
layers.0.downsample.reduction, norm0..norm3). The ACmix attention is handed the padded (in
shifted blocks also rolled) map, as the official block hands its attention.
"""
import torch
import torch.nn as tnn
import torch.nn.functional as F


def partition(x, ws):
    b, h, w, c = x.shape
    return x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)


def reverse(windows, ws, h, w):
    c = windows.shape[-1]
    x = windows.view(-1, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


class WindowAttention(tnn.Module):
    def __init__(self, dim, ws, heads, acmix):
        super().__init__()
        self.dim, self.ws, self.heads, self.acmix = dim, ws, heads, acmix
        self.relative_position_bias_table = tnn.Parameter(
            0.02 * torch.randn((2 * ws - 1) ** 2, heads))
        coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij"))
        rel = (coords.flatten(1)[:, :, None] - coords.flatten(1)[:, None, :]).permute(1, 2, 0)
        self.register_buffer("relative_position_index",
                             (rel[..., 0] + ws - 1) * (2 * ws - 1) + rel[..., 1] + ws - 1)
        self.qkv = tnn.Linear(dim, 3 * dim)
        self.proj = tnn.Linear(dim, dim)
        if acmix:
            self.fc = tnn.Conv2d(3 * heads, 9, 1)
            self.dep_conv = tnn.Conv2d(9 * dim // heads, dim, 3, padding=1, groups=dim // heads,
                                       bias=False)
            self.rate1 = tnn.Parameter(torch.full((1,), 0.5))
            self.rate2 = tnn.Parameter(torch.full((1,), 0.5))

    def forward(self, x, mask):
        b, h, w, c = x.shape
        qkv = self.qkv(x)
        win = partition(qkv, self.ws)
        n, d = self.ws * self.ws, c // self.heads
        q, k, v = win.reshape(-1, n, 3, self.heads, d).permute(2, 0, 3, 1, 4)
        attn = (q * d ** -0.5) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        attn = attn + bias.view(n, n, -1).permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(-1, nw, self.heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.heads, n, n)
        out = self.proj((attn.softmax(-1) @ v).transpose(1, 2).reshape(-1, n, c))
        out = reverse(out, self.ws, h, w)
        if not self.acmix:
            return out
        f = self.fc(qkv.reshape(b, h * w, 3 * self.heads, -1).permute(0, 2, 1, 3))
        conv = self.dep_conv(f.permute(0, 3, 1, 2).reshape(b, 9 * c // self.heads, h, w))
        return self.rate1 * out + self.rate2 * conv.permute(0, 2, 3, 1)


class Block(tnn.Module):
    def __init__(self, dim, heads, ws, shift, acmix):
        super().__init__()
        self.ws, self.shift = ws, shift
        self.norm1 = tnn.LayerNorm(dim)
        self.attn = WindowAttention(dim, ws, heads, acmix)
        self.norm2 = tnn.LayerNorm(dim)
        self.mlp = tnn.Module()
        self.mlp.fc1 = tnn.Linear(dim, 4 * dim)
        self.mlp.fc2 = tnn.Linear(4 * dim, dim)

    def forward(self, x, h, w, mask):
        b, _, c = x.shape
        shortcut = x
        x = self.norm1(x).view(b, h, w, c)
        x = F.pad(x, (0, 0, 0, (self.ws - w % self.ws) % self.ws, 0, (self.ws - h % self.ws) % self.ws))
        if self.shift:
            x = torch.roll(x, (-self.shift, -self.shift), (1, 2))
        x = self.attn(x, mask if self.shift else None)
        if self.shift:
            x = torch.roll(x, (self.shift, self.shift), (1, 2))
        x = shortcut + x[:, :h, :w].reshape(b, h * w, c)
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))


def shifted_mask(hp, wp, ws, shift):
    img = torch.zeros(1, hp, wp, 1)
    cuts = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    cnt = 0
    for hs in cuts:
        for wsl in cuts:
            img[:, hs, wsl, :] = cnt
            cnt += 1
    win = partition(img, ws).squeeze(-1)
    mask = win.unsqueeze(1) - win.unsqueeze(2)
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


class SwinSeg(tnn.Module):
    def __init__(self, embed_dim, depths, num_heads, window_size, acmix, patch_size=4):
        super().__init__()
        self.patch, self.ws = patch_size, window_size
        self.patch_embed = tnn.Module()
        self.patch_embed.proj = tnn.Conv2d(3, embed_dim, patch_size, patch_size)
        self.patch_embed.norm = tnn.LayerNorm(embed_dim)
        self.layers = tnn.ModuleList()
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            dim = embed_dim * 2 ** i
            layer = tnn.Module()
            layer.blocks = tnn.ModuleList(
                Block(dim, heads, window_size, 0 if j % 2 == 0 else window_size // 2, acmix)
                for j in range(depth))
            if i < len(depths) - 1:
                layer.downsample = tnn.Module()
                layer.downsample.norm = tnn.LayerNorm(4 * dim)
                layer.downsample.reduction = tnn.Linear(4 * dim, 2 * dim, bias=False)
            self.layers.append(layer)
            setattr(self, f"norm{i}", tnn.LayerNorm(dim))

    def forward(self, x):
        _, _, h, w = x.shape
        x = F.pad(x, (0, (self.patch - w % self.patch) % self.patch,
                      0, (self.patch - h % self.patch) % self.patch))
        x = self.patch_embed.proj(x)
        h, w = x.shape[2:]
        x = self.patch_embed.norm(x.flatten(2).transpose(1, 2))
        outs = []
        for i, layer in enumerate(self.layers):
            hp, wp = -(-h // self.ws) * self.ws, -(-w // self.ws) * self.ws
            mask = shifted_mask(hp, wp, self.ws, self.ws // 2)
            for blk in layer.blocks:
                x = blk(x, h, w, mask)
            out = getattr(self, f"norm{i}")(x)
            outs.append(out.view(-1, h, w, out.shape[-1]).permute(0, 3, 1, 2))
            if hasattr(layer, "downsample"):
                b, _, c = x.shape
                x = x.view(b, h, w, c)
                x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
                x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2],
                               x[:, 1::2, 1::2]], -1).view(b, -1, 4 * c)
                x = layer.downsample.reduction(layer.downsample.norm(x))
                h, w = (h + 1) // 2, (w + 1) // 2
        return outs
