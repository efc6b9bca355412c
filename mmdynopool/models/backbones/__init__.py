from .classification import (DynOPoolMobileNetV2, DynOPoolResNet,
                             DynOPoolResNet_CIFAR, DynOPoolVGG)
from .hrnet import DynOPoolHRNet
from .shape_adaptor import (ShapeAdaptorMobileNetV2, ShapeAdaptorResNet,
                            ShapeAdaptorResNet_CIFAR, ShapeAdaptorVGG)

__all__ = [
    'DynOPoolHRNet', 'DynOPoolResNet', 'DynOPoolResNet_CIFAR', 'DynOPoolVGG',
    'DynOPoolMobileNetV2', 'ShapeAdaptorVGG', 'ShapeAdaptorResNet',
    'ShapeAdaptorResNet_CIFAR', 'ShapeAdaptorMobileNetV2'
]
