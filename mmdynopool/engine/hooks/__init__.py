from .gmacs_loss_hook import GMACsLossHook
from .shape_hooks import ShapeAdaptorHook, ShapeLoggingHook

__all__ = ['GMACsLossHook', 'ShapeLoggingHook', 'ShapeAdaptorHook']
