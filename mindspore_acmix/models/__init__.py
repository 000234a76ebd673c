"""Model families; importing this module registers them."""
from .resnet import ACmixResNet, Bottleneck, ResNet

__all__ = ["ACmixResNet", "ResNet", "Bottleneck"]
