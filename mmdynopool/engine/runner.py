"""What ``tools/train.py`` and ``tools/test.py`` run: mmengine's Runner with
this package's checkpoint handling.

* :func:`train`: resumes from the newest checkpoint that can be read (a
  killed job may have cut the last one off), and loads the checkpoints the
  user names with ``weights_only`` kept on.
* :func:`test`: loads the checkpoint strictly (every key of the model, alpha
  included, with its shape; :func:`~mmdynopool.utils.load_strict`) and
  evaluates without the GMACs loss, which only acts while training
  (``ShapeAdaptorHook`` stays: it sets the memory penalty the learned shape
  is tested with).
"""
from typing import Dict, Optional

from ..utils import (allow_mmengine_checkpoints, load_config, load_strict,
                     newest_loadable_checkpoint, read_checkpoint)
from ..utils.inspection import unwrap_model
from .hooks.gmacs_loss_hook import gmacs_loss_hooks

__all__ = ['train', 'test']


def train(config: str,
          work_dir: Optional[str] = None,
          cfg_options: Optional[dict] = None,
          launcher: str = 'none',
          resume: Optional[str] = None,
          amp: bool = False):
    """Train ``config`` with mmengine's Runner.

    Args:
        config (str): Config file.
        work_dir (str, optional): Default: the config's, else
            ``work_dirs/<config name>``.
        cfg_options (dict, optional): Merged into the config.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
            Default: ``'none'``.
        resume (str, optional): A checkpoint to resume from, or ``'auto'``
            for the newest readable one in the work dir. Default: None.
        amp (bool): Automatic mixed precision. Default: False.

    Returns:
        Runner: The runner, after training.
    """
    from mmengine.runner import Runner
    cfg = load_config(config, cfg_options, launcher, work_dir)
    if amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    # The user names the checkpoints to resume or load: allow mmengine's
    # classes under torch's weights_only loading.
    allow_mmengine_checkpoints()
    if resume == 'auto':
        path = newest_loadable_checkpoint(cfg.work_dir)
        cfg.resume, cfg.load_from = path is not None, path
    elif resume is not None:
        read_checkpoint(resume)  # a clear error naming the file
        cfg.resume, cfg.load_from = True, resume
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test(config: str,
         checkpoint: str,
         work_dir: Optional[str] = None,
         cfg_options: Optional[dict] = None,
         launcher: str = 'none') -> Dict:
    """Evaluate ``checkpoint`` on ``config``'s test set.

    Args:
        config (str): Config file.
        checkpoint (str): Loaded strictly (missing, unexpected or
            mis-shaped keys are a ``ValueError``).
        work_dir (str, optional): Default: the config's, else
            ``work_dirs/<config name>``.
        cfg_options (dict, optional): Merged into the config.
        launcher (str): As for :func:`train`. Default: ``'none'``.

    Returns:
        dict: The test metrics.
    """
    from mmengine.runner import Runner
    cfg = load_config(config, cfg_options, launcher, work_dir)
    cfg.load_from = None  # loaded strictly below
    gmacs_loss_hooks(cfg, remove=True)
    runner = Runner.from_cfg(cfg)
    model = unwrap_model(runner.model)
    load_strict(model, checkpoint)
    return runner.test()
