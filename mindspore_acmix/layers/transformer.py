"""Pieces shared by the token models (Swin, PVT): patch embedding, MLP, stochastic depth,
initialisation."""
from mindspore import nn
from mindspore.common.initializer import TruncatedNormal, Zero, initializer

from ..checks import probability
from .stochastic import DropPath, Dropout  # noqa: F401  (re-exported)


class Mlp(nn.Cell):
    """fc1 -> GELU -> dropout -> fc2 -> dropout, as in Swin and PVT.

    GELU is the exact (erf) form, as torch's nn.GELU / F.gelu in both official codes;
    note that Erf does not export to ONNX (MindIR is fine)."""

    def __init__(self, in_features, hidden_features, drop=0.0):
        super().__init__()
        probability("drop", drop)
        self.fc1 = nn.Dense(in_features, hidden_features)
        self.act = nn.GELU(approximate=False)
        self.fc2 = nn.Dense(hidden_features, in_features)
        self.drop = Dropout(p=drop)

    def construct(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class PatchEmbed(nn.Cell):
    """Non-overlapping patch x patch convolution to embed_dim channels, flattened to
    (B, tokens, embed_dim), then LayerNorm (eps 1e-5 in both Swin and PVT) if `norm`."""

    def __init__(self, patch_size, in_chans, embed_dim, norm=True):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size,
                              pad_mode="valid", has_bias=True)
        self.norm = layer_norm(embed_dim) if norm else None

    def construct(self, x):
        x = self.proj(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).transpose(0, 2, 1)
        return self.norm(x) if self.norm is not None else x


def layer_norm(dim, eps=1e-5):
    """torch.nn.LayerNorm(dim, eps) over the last axis."""
    return nn.LayerNorm((dim,), epsilon=eps)


def trunc_normal_(param, std=0.02):
    """timm's trunc_normal_(std): normal, cut at +-2 (absolute, so practically untruncated)."""
    param.set_data(initializer(TruncatedNormal(sigma=std), param.shape, param.dtype))


def init_transformer_weights(net):
    """The official _init_weights of Swin and PVT: every Linear is trunc-normal(0.02) with
    zero bias, LayerNorm is 1 / 0 (MindSpore's default already); convolutions keep their
    framework default, which matches torch's (Kaiming uniform, a = sqrt(5))."""
    for _, cell in net.cells_and_names():
        if isinstance(cell, nn.Dense):
            trunc_normal_(cell.weight)
            if cell.bias is not None:
                cell.bias.set_data(initializer(Zero(), cell.bias.shape, cell.bias.dtype))


def linspace(start, stop, num):
    """Python floats evenly spaced from start to stop (torch.linspace(...).tolist())."""
    if num == 1:
        return [float(start)]
    return [start + (stop - start) * (i / (num - 1)) for i in range(num)]  # ends at stop
