"""`sync_bn: true`: BatchNorm statistics over the whole data-parallel batch (under msrun).

Every nn.BatchNorm2d becomes an nn.SyncBatchNorm over all ranks, with the same parameters
(names, values, moving statistics, eps and momentum), so checkpoints load either way.
MindSpore 2.10 runs SyncBatchNorm on Ascend (HCCL) and GPU (NCCL) only.
"""
from mindspore import nn

from ..config import ConfigError


def check_sync_bn(device, world, log=print):
    """True when BatchNorm is to be synchronised; ConfigError where it cannot be."""
    if device not in ("Ascend", "GPU"):
        raise ConfigError(f"sync_bn needs Ascend or GPU: MindSpore 2.10 has no SyncBatchNorm "
                          f"on {device}; set sync_bn: false (each rank then normalises with "
                          "its own batch statistics)")
    if world == 1:
        log("note: sync_bn has no effect with one device; BatchNorm stays per device")
        return False
    return True


def convert_sync_batchnorm(net):
    """Replace every nn.BatchNorm2d of `net` by an nn.SyncBatchNorm over all ranks (needs the
    communication initialised); returns how many were replaced."""
    replaced = 0
    for _, cell in list(net.cells_and_names()):
        for name, child in list(cell.name_cells().items()):
            if type(child) is not nn.BatchNorm2d:  # noqa: E721  (SyncBatchNorm is a subclass)
                continue
            sync = nn.SyncBatchNorm(child.num_features, eps=child.eps, momentum=child.momentum,
                                    affine=child.affine)
            for attr in ("gamma", "beta", "moving_mean", "moving_variance"):
                getattr(sync, attr).set_data(getattr(child, attr).data)
            setattr(cell, name, sync)
            # the parent's prefix names the new parameters as the old ones
            for attr in ("gamma", "beta", "moving_mean", "moving_variance"):
                getattr(sync, attr).name = getattr(child, attr).name
            replaced += 1
    return replaced
