"""Model families; importing this module registers them."""
from .pvt import PyramidVisionTransformer
from .resnet import ACmixResNet, Bottleneck, ResNet
from .san import SAN
from .swin import SwinACmix, SwinTransformer

__all__ = ["ACmixResNet", "ResNet", "Bottleneck", "SwinTransformer", "SwinACmix",
           "PyramidVisionTransformer", "SAN"]
