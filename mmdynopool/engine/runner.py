"""What ``tools/train.py`` and ``tools/test.py`` run: mmengine's Runner with
this package's checkpoint handling.

* :func:`train`: one training per work dir (a lock file there); resumes
  from the newest checkpoint that can be read (a killed job may have cut
  the last one off; none is a warning), only from a training checkpoint of
  the same model; keeps at least two checkpoints (a kill while writing the
  newest leaves the previous one); and reads every checkpoint the user
  names with ``weights_only=True`` passed explicitly, before mmengine
  loads it.
* :func:`test`: loads the checkpoint strictly (every key of the model, alpha
  included, with its shape; :func:`~mmdynopool.utils.load_strict`) and
  evaluates without the GMACs loss, which only acts while training
  (``ShapeAdaptorHook`` stays: it sets the memory penalty the learned shape
  is tested with).
"""
import warnings
from typing import Dict, Optional

from ..utils import (allow_mmengine_checkpoints, check_fits, check_resumable,
                     keep_two_checkpoints, load_config, load_strict,
                     newest_loadable_checkpoint, read_checkpoint,
                     work_dir_lock)
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
            for the newest readable one in the work dir (a warning when
            there is none: training starts from scratch). Default: None.
        amp (bool): Automatic mixed precision. Default: False.

    Raises:
        ValueError: when another training holds the work dir, when a
            checkpoint cannot be read (``weights_only``), and when the one
            to resume from was not written by a training run or does not fit
            the model.

    Returns:
        Runner: The runner, after training.
    """
    from mmengine.runner import Runner
    cfg = load_config(config, cfg_options, launcher, work_dir)
    if amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    keep_two_checkpoints(cfg)
    # The user names the checkpoints to resume or load: allow mmengine's
    # classes under torch's weights_only loading.
    allow_mmengine_checkpoints()
    with work_dir_lock(cfg.work_dir, launcher):
        if resume == 'auto' or (resume is None and cfg.get('resume')
                                and not cfg.get('load_from')):
            path = newest_loadable_checkpoint(cfg.work_dir)
            if path is None:
                warnings.warn('--resume: no readable checkpoint in the work '
                              f'dir {cfg.work_dir!r}; training starts from '
                              'scratch')
            cfg.resume, cfg.load_from = path is not None, path
        elif resume is not None:
            cfg.resume, cfg.load_from = True, resume
        ckpt = None
        if cfg.get('load_from'):
            # Read here with weights_only=True, so that a file mmengine's
            # loader (which leaves weights_only unset) would unpickle
            # unsafely never reaches it; a clear error names the file.
            ckpt = read_checkpoint(cfg.load_from)
            if cfg.get('resume'):
                check_resumable(ckpt, cfg.load_from)
        runner = Runner.from_cfg(cfg)
        if ckpt is not None and cfg.get('resume'):
            # mmengine resumes non-strictly: another network's checkpoint
            # would train on with half its weights random.
            check_fits(unwrap_model(runner.model), ckpt, cfg.load_from)
        del ckpt
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
