"""Cells that compute in float32 whatever precision the network runs in.

Under AMP O2 (engine/amp.py: MindSpore calls to_float(float16) on every cell and then casts
the inputs of every operator inside) an explicit cast in construct does not survive, so these
cells pin their own precision: to_float always means float32 here, and the cast of their
inputs is the one MindSpore inserts. Their output stays float32; the float16 operator that
consumes it casts it down.
"""
import mindspore as ms
from mindspore import nn, ops


class Float32Cell(nn.Cell):
    """Base of the cells that compute in float32 under AMP O2 (see the module docstring)."""

    def to_float(self, dst_type):
        return super().to_float(ms.float32)


class Float32Softmax(Float32Cell):
    """softmax over `axis` in float32: attention logits (q . k plus position terms and masks)
    lose their small differences, and exp overflows, in float16."""

    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis

    def construct(self, x):
        return ops.softmax(x, self.axis)
