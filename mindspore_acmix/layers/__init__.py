"""Network layers."""
from .acmix import ACmix
from .placement import describe_implementations, implementations, place_network
from .san import SAM, SAMACmix
from .transformer import DropPath, Mlp, PatchEmbed
from .window_attention import WindowAttention, WindowAttentionACmix

__all__ = ["ACmix", "SAM", "SAMACmix", "WindowAttention", "WindowAttentionACmix", "DropPath",
           "Mlp", "PatchEmbed", "place_network", "implementations", "describe_implementations"]
