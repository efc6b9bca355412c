from .alpha_grad_hook import AlphaGradHook
from .gmacs_loss_hook import GMACsLossHook, gmacs_loss_hooks
from .random_option_hook import RandomOptionHook
from .shape_adaptor_hook import ShapeAdaptorHook
from .shape_hooks import ShapeLoggingHook

__all__ = [
    'GMACsLossHook', 'ShapeLoggingHook', 'ShapeAdaptorHook',
    'RandomOptionHook', 'AlphaGradHook', 'gmacs_loss_hooks'
]
