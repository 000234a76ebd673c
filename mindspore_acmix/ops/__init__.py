"""Operators shared by the layers: shifts, rolls, reflection padding, local attention."""
from .local_attention import (LOCAL_ATTENTION, get_local_attention, local_attention_unfold,
                              resolve_local_attention)
from .roll import roll2d, roll_axis
from .shift import pad_axis, reflect_pad2d, shift2d, shift_axis

__all__ = ["shift2d", "shift_axis", "pad_axis", "reflect_pad2d", "roll2d", "roll_axis",
           "get_local_attention", "resolve_local_attention", "local_attention_unfold",
           "LOCAL_ATTENTION"]
