"""Network layers."""
from .acmix import ACmix
from .transformer import DropPath, Mlp, PatchEmbed
from .window_attention import WindowAttention, WindowAttentionACmix

__all__ = ["ACmix", "WindowAttention", "WindowAttentionACmix", "DropPath", "Mlp", "PatchEmbed"]
