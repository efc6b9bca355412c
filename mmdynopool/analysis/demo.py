"""The README's main job: human vs DynOPool HRNet on the embedded digits.

:func:`run_demo` trains the human and the DynOPool FCN-HRNet of
``configs/demo/`` on the same data, budget and seed
(:func:`run_experiment`: resumable, mmseg's ``IoUMetric``, GMACs at the
learned shape) and returns one comparison table. The console shows a
progress bar per run; mmengine's full log goes to each run's work dir.
"""
import logging
import os
import os.path as osp
from typing import Dict, Optional

from mmengine.hooks import Hook

from ..utils import config_path
from .experiments import run_experiment

__all__ = ['run_demo', 'format_demo']

MODELS = (('human',
           'demo/fcn_hr16-slim_human_1xb8-600iter_digits-voc-96x96.py'),
          ('DynOPool',
           'demo/fcn_hr16-slim_dynopool_1xb8-600iter_digits-voc-96x96.py'))


class _ConsoleProgress(Hook):
    """Quiet console (the log file keeps everything) and a progress bar."""
    priority = 'VERY_LOW'

    def __init__(self, title: str) -> None:
        self.title, self.bar = title, None

    def before_run(self, runner) -> None:
        for h in runner.logger.handlers:
            if isinstance(h, logging.StreamHandler) and not isinstance(
                    h, logging.FileHandler):
                h.setLevel(logging.WARNING)
        print(f'{self.title}: training (log: {runner.log_dir})', flush=True)

    def before_train(self, runner) -> None:
        from mmengine.utils import ProgressBar
        self.bar = ProgressBar(runner.max_iters - runner.iter)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.bar.update()

    def after_train(self, runner) -> None:
        print(flush=True)


def run_demo(work_dir: str = 'work_dirs/demo',
             iters: Optional[int] = None) -> Dict:
    """Train both demo models (or read back finished runs).

    Args:
        work_dir (str): ``human/`` and ``dynopool/`` go below it, with
            ``demo.md`` (the table).
        iters (int, optional): Training iterations for both. Default: the
            configs' 600.

    Returns:
        dict: ``rows`` (one :func:`run_experiment` result per model),
        ``table`` (markdown) and ``report`` (its file).
    """
    from mmengine.config import Config
    if iters is not None and (isinstance(iters, bool)
                              or not isinstance(iters, int) or iters < 1):
        raise ValueError(f'iters must be an integer >= 1, got {iters!r}')
    work_dir = osp.abspath(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    rows = []
    for name, rel in MODELS:
        cfg = Config.fromfile(config_path(rel))
        n = iters or cfg.train_cfg.max_iters
        cfg.train_cfg.max_iters = n
        cfg.train_cfg.val_interval = n
        cfg.param_scheduler[0].end = n
        cfg.default_hooks.checkpoint.interval = n
        # The digits are generated under the work dir, not the cwd.
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader'):
            cfg[loader].dataset.data_root = osp.join(work_dir, 'digits_voc')
        result = run_experiment(
            cfg, osp.join(work_dir, name.lower()), tuple(cfg.crop_size),
            extra=dict(model=name, iters=n),
            hooks=[_ConsoleProgress(f'{name} HRNet, {n} iterations')])
        rows.append(result)
    table = format_demo(rows)
    report = osp.join(work_dir, 'demo.md')
    with open(report, 'w') as f:
        f.write(table + '\n')
    return dict(rows=rows, table=table, report=report)


def format_demo(rows) -> str:
    """The comparison table: mIoU, GMACs and the learned sizes."""
    lines = ['| model | mIoU (%) | GMACs per image | feature-map sizes '
             '(stem, streams 1-4) |', '|---|---|---|---|']
    for r in rows:
        sizes = ' '.join(f'{h}x{w}' for h, w in r['resolutions'][1:])
        lines.append(f'| {r["model"]} | {r["value"]:.2f} | '
                     f'{r["gmacs"]:.4f} | {sizes} |')
    return '\n'.join(lines)
