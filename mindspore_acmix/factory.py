"""Building registered models by name, and looking them up: importing this module registers
the model families, so its lookups (re-exported from the registry) see every model."""
from . import models  # noqa: F401  (registers the model families)
from .checkpoint import load_network_checkpoint
from .registry import get_default_cfg, is_model, list_models, model_entrypoint  # noqa: F401


def create_model(name, num_classes=1000, checkpoint_path=None, recompute=False, **kwargs):
    """Build the registered model `name`; with `checkpoint_path`, load a .ckpt into it strictly;
    with `recompute`, every block recomputes its activations in backward (recompute_blocks)."""
    net = model_entrypoint(name)(num_classes=num_classes, **kwargs)
    if recompute:
        recompute_blocks(net)
    if checkpoint_path:
        load_network_checkpoint(net, checkpoint_path)
    return net


def recompute_blocks(net):
    """Cell.recompute() on every residual bottleneck and transformer block of `net`: backward
    recomputes a block's activations from its input instead of keeping them, trading about
    one extra forward for the memory of the largest batches (Ascend). Same numbers.
    Returns the number of blocks."""
    blocks = (models.resnet.Bottleneck, models.swin.SwinTransformerBlock, models.pvt.Block)
    count = 0
    for _, cell in net.cells_and_names():
        if isinstance(cell, blocks):
            cell.recompute()
            count += 1
    if not count:
        raise ValueError(f"recompute: {type(net).__name__} has no bottleneck or transformer "
                         "block to recompute")
    return count


def count_params(net):
    """Trainable parameters, as torch's sum(p.numel() for p in model.parameters()) counts them
    (BatchNorm running statistics are buffers there and non-trainable here)."""
    return sum(int(p.size) for p in net.trainable_params())
