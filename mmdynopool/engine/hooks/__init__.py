from .alpha_grad_hook import AlphaGradHook, rescale_alpha_grads
from .gmacs_loss_hook import (GMACsLossHook, gmacs_loss_hook, gmacs_loss_hooks,
                              set_gmacs_loss_weight)
from .random_option_hook import RandomOptionHook
from .shape_adaptor_hook import ShapeAdaptorHook
from .shape_hooks import ShapeLoggingHook

__all__ = [
    'GMACsLossHook', 'ShapeLoggingHook', 'ShapeAdaptorHook',
    'RandomOptionHook', 'AlphaGradHook', 'gmacs_loss_hooks', 'gmacs_loss_hook',
    'set_gmacs_loss_weight', 'rescale_alpha_grads'
]
