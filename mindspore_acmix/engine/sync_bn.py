"""`sync_bn: true`: BatchNorm statistics over the whole data-parallel batch (under msrun).

Every nn.BatchNorm2d becomes an nn.SyncBatchNorm over all ranks, with the same parameters
(names, values, moving statistics, eps and momentum), so checkpoints load either way; see
convert_sync_batchnorm for what else must hold.
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


def convert_sync_batchnorm(net, process_groups=None):
    """Replace every nn.BatchNorm2d of `net` by an nn.SyncBatchNorm (over all ranks; needs the
    communication initialised) and return how many were replaced.

    The replacement keeps what the checkpoint and the forward depend on:
    - parameter names and values (gamma, beta, moving statistics);
    - eps and momentum: BatchNorm2d stores 1 - its momentum argument (MindSpore's momentum
      weighs the old statistics), so the argument is given back as 1 - the stored value;
    - affine (trainable gamma and beta) and use_batch_statistics;
    - what the forward calls: a SequentialCell runs its `cell_list`, a copy of its children
      taken when it was built, so that list is rebuilt where a child was replaced (ResNet's
      downsample branches, SAN's conv_w).
    Under AMP O2 SyncBatchNorm stays in float32 (engine/amp.FP32_CELLS names it: it is not a
    BatchNorm2d subclass, so MindSpore's own list misses it).

    process_groups: SyncBatchNorm's; 0 builds it without any group, which synchronises
    nothing and needs no communication (how the tests run this conversion on CPU)."""
    replaced = 0
    for _, cell in list(net.cells_and_names()):
        changed = False
        for name, child in list(cell.name_cells().items()):
            if type(child) is not nn.BatchNorm2d:  # noqa: E721  (an exact type: not subclasses)
                continue
            sync = nn.SyncBatchNorm(child.num_features, eps=child.eps,
                                    momentum=1.0 - child.momentum,
                                    affine=child.gamma.requires_grad,
                                    use_batch_statistics=child.use_batch_statistics,
                                    process_groups=process_groups)
            setattr(cell, name, sync)
            for attr in ("gamma", "beta", "moving_mean", "moving_variance"):
                old, new = getattr(child, attr), getattr(sync, attr)
                new.set_data(old.value().copy())
                new.name = old.name  # the names the checkpoint holds, whatever the prefixing
            changed = True
            replaced += 1
        if changed and isinstance(cell, nn.SequentialCell):
            cell.cell_list = list(cell.cells())
    return replaced
