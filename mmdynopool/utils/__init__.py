from .checkpoint import (check_fits, check_resumable, keep_two_checkpoints,
                         load_strict, newest_loadable_checkpoint,
                         read_checkpoint)
from .inspection import eval_mode, resizing_report, unwrap_model
from .model import build_model_from_cfg
from .runtime import (allow_mmengine_checkpoints, close_distributed,
                      config_path, load_config, setup_distributed,
                      work_dir_lock)

__all__ = [
    'setup_distributed', 'close_distributed', 'allow_mmengine_checkpoints',
    'load_config', 'build_model_from_cfg', 'config_path', 'read_checkpoint',
    'load_strict', 'newest_loadable_checkpoint', 'eval_mode',
    'resizing_report', 'unwrap_model', 'check_fits', 'check_resumable',
    'keep_two_checkpoints', 'work_dir_lock'
]
