"""Mixed precision of the training network: which levels exist and what runs in float32.

Only O0 (float32) and O2 are offered ("auto" = O2 on Ascend/GPU, O0 on CPU). MindSpore's other
levels do not do what their names promise for these models: O1 goes through the rewrite
module, which inserts no cast into our cells (the network stays float32, with loss scaling),
and O3 casts every cell, so norms and the attention softmax would run in float16.

O2 here is MindSpore's black-list mechanism (ms.amp.custom_mixed_precision) with an explicit
list, FP32_CELLS: every cell of such a class runs in float32 (its inputs cast up, its output
cast back to float16), whatever its parent runs in. Beyond MindSpore's own list (BatchNorm,
LayerNorm) it names SyncBatchNorm (engine/sync_bn.py; not a BatchNorm2d subclass, so
MindSpore's list misses it) and GroupNorm. The attention softmax of every family and the halo
kernel's scores are ops.precision.Float32Cell subclasses, which O2 leaves in float32 (the
mechanism calls each cell's to_float, and theirs always means float32). The logits leave the
network in float32 (the cast MindSpore adds at the output) and the loss is computed outside
it, in float32 (engine/step.py). tests/test_amp.py reads these dtypes from the compiled
graph.
"""
import mindspore as ms
from mindspore import nn

from .. import config as config_lib

LEVELS = ("O0", "O2")
FP32_CELLS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.LayerNorm,
              nn.GroupNorm)


def resolve_amp(cfg, device):
    """The AMP level a config asks for on `device` (ConfigError where it cannot run)."""
    level = cfg["amp_level"]
    if level == "auto":
        return "O0" if device == "CPU" else "O2"
    if level != "O0" and device == "CPU":
        raise config_lib.ConfigError(
            f"amp_level {level} needs Ascend or GPU: MindSpore 2.10 has no dynamic loss scaling "
            "on CPU and fp16 is slower there; use amp_level O0 (or auto) on CPU")
    return level


def mixed_precision(net, level):
    """`net` run at `level` (O0: unchanged; O2: float16 but FP32_CELLS)."""
    if level == "O0":
        return net
    if level != "O2":
        raise ValueError(f"amp level {level!r} is not one of {', '.join(LEVELS)}")
    return ms.amp.custom_mixed_precision(net, black_list=list(FP32_CELLS))
