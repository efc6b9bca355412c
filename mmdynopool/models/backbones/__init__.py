from .classification import (DynOPoolMobileNetV2, DynOPoolMobileNetV2_CIFAR,
                             DynOPoolResNet, DynOPoolResNet_CIFAR, DynOPoolVGG,
                             MobileNetV2_CIFAR)
from .efficientnet import DynOPoolEfficientNet
from .hrnet import DynOPoolHRNet
from .shape_adaptor import (ShapeAdaptorMobileNetV2, ShapeAdaptorResNet,
                            ShapeAdaptorResNet_CIFAR, ShapeAdaptorVGG)
from .slim_vgg import DynOPoolSlimVGG, ShapeAdaptorSlimVGG, SlimVGG

__all__ = [
    'DynOPoolHRNet', 'DynOPoolResNet', 'DynOPoolResNet_CIFAR', 'DynOPoolVGG',
    'DynOPoolMobileNetV2', 'DynOPoolMobileNetV2_CIFAR', 'MobileNetV2_CIFAR',
    'ShapeAdaptorVGG', 'ShapeAdaptorResNet',
    'ShapeAdaptorResNet_CIFAR', 'ShapeAdaptorMobileNetV2', 'SlimVGG',
    'DynOPoolSlimVGG', 'ShapeAdaptorSlimVGG', 'DynOPoolEfficientNet'
]
