from .config_surgery import (export_fixed_config, export_fixed_config_file,
                             set_input_resolution)
from .cost_target import GMACsTarget, exact_gmacs, settle_to_gmacs
from .gmacs import GMACsCounter, count_macs, module_flops
from .hooks import (AlphaGradHook, GMACsLossHook, RandomOptionHook,
                    ShapeAdaptorHook, ShapeLoggingHook, gmacs_loss_hook,
                    gmacs_loss_hooks, rescale_alpha_grads,
                    set_gmacs_loss_weight)

__all__ = [
    'GMACsCounter', 'count_macs', 'module_flops', 'GMACsLossHook',
    'ShapeLoggingHook', 'ShapeAdaptorHook', 'RandomOptionHook',
    'AlphaGradHook', 'gmacs_loss_hooks', 'gmacs_loss_hook',
    'set_gmacs_loss_weight', 'rescale_alpha_grads', 'GMACsTarget',
    'exact_gmacs', 'settle_to_gmacs', 'set_input_resolution',
    'export_fixed_config', 'export_fixed_config_file'
]
