from .efficientnet import DynOPoolEfficientNet
from .hrnet import DynOPoolHRNet
from .mobilenet_v2 import (DynOPoolMobileNetV2, DynOPoolMobileNetV2_CIFAR,
                           MobileNetV2_CIFAR, ShapeAdaptorMobileNetV2)
from .resnet import (DynOPoolResNet, DynOPoolResNet_CIFAR, SegDynOPoolResNet,
                     ShapeAdaptorResNet, ShapeAdaptorResNet_CIFAR)
from .vgg import (DynOPoolSlimVGG, DynOPoolVGG, ShapeAdaptorSlimVGG,
                  ShapeAdaptorVGG, SlimVGG)

__all__ = [
    'DynOPoolHRNet', 'DynOPoolResNet', 'DynOPoolResNet_CIFAR', 'DynOPoolVGG',
    'DynOPoolMobileNetV2', 'DynOPoolMobileNetV2_CIFAR', 'MobileNetV2_CIFAR',
    'ShapeAdaptorVGG', 'ShapeAdaptorResNet', 'ShapeAdaptorResNet_CIFAR',
    'ShapeAdaptorMobileNetV2', 'SlimVGG', 'DynOPoolSlimVGG',
    'ShapeAdaptorSlimVGG', 'DynOPoolEfficientNet', 'SegDynOPoolResNet'
]
