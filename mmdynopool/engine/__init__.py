from .gmacs import GMACsCounter, count_macs, module_flops
from .hooks import (AlphaGradHook, GMACsLossHook, RandomOptionHook,
                    ShapeAdaptorHook, ShapeLoggingHook, gmacs_loss_hooks)

__all__ = [
    'GMACsCounter', 'count_macs', 'module_flops', 'GMACsLossHook',
    'ShapeLoggingHook', 'ShapeAdaptorHook', 'RandomOptionHook',
    'AlphaGradHook', 'gmacs_loss_hooks'
]
