"""Operators shared by the layers: shifts, rolls, reflection padding, blocked windows (halo),
local attention and SAN's operators; the plain unfold references in ops.references."""
from .references import local_attention_unfold
from .roll import roll2d, roll_axis
from .shift import pad_axis, reflect_pad2d, shift2d, shift_axis

__all__ = ["shift2d", "shift_axis", "pad_axis", "reflect_pad2d", "roll2d", "roll_axis",
           "local_attention_unfold"]
