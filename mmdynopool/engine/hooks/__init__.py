from .alpha_grad_hook import AlphaGradHook
from .gmacs_loss_hook import GMACsLossHook
from .random_option_hook import RandomOptionHook
from .shape_hooks import ShapeAdaptorHook, ShapeLoggingHook

__all__ = [
    'GMACsLossHook', 'ShapeLoggingHook', 'ShapeAdaptorHook',
    'RandomOptionHook', 'AlphaGradHook'
]
