from .runtime import allow_mmengine_checkpoints, setup_distributed

__all__ = ['setup_distributed', 'allow_mmengine_checkpoints']
