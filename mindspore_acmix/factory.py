"""Building registered models by name."""
from . import models  # noqa: F401  (registers the model families)
from .checkpoint import load_network_checkpoint
from .registry import model_entrypoint


def create_model(name, num_classes=1000, checkpoint_path=None, **kwargs):
    """Build the registered model `name`; with `checkpoint_path`, load a .ckpt into it strictly."""
    net = model_entrypoint(name)(num_classes=num_classes, **kwargs)
    if checkpoint_path:
        load_network_checkpoint(net, checkpoint_path)
    return net


def count_params(net):
    """Trainable parameters, as torch's sum(p.numel() for p in model.parameters()) counts them
    (BatchNorm running statistics are buffers there and non-trainable here)."""
    return sum(int(p.size) for p in net.trainable_params())
