"""The README's demo (``tools/demo.py``): human vs DynOPool HRNet on the
embedded digits.

:func:`run_demo` trains the human FCN-HRNet of ``configs/demo/`` and the
DynOPool one at the human model's cost (``GMACsLossHook(target_gmacs)``) on
the same data, budget and seed, one torch thread each
(:func:`run_experiment`: resumable, mmseg's ``IoUMetric``, GMACs at the
learned shape) and returns one comparison table. One seed is a smoke test,
not a result: the study over seeds is ``tools/repro/seg_study.py``
(``docs/studies/segmentation.md``). The console shows a progress bar over
the runs; mmengine's full log goes to each run's work dir.
"""
import os
import os.path as osp
from typing import Dict, Optional

from mmdynopool.analysis.experiments import run_experiment
from mmdynopool.utils import config_path

__all__ = ['run_demo', 'format_demo']

MODELS = (('human',
           'demo/fcn_hr16-slim_human_1xb8-600iter_digits-voc-96x96.py'),
          ('DynOPool',
           'demo/fcn_hr16-slim_dynopool-target_1xb8-600iter_digits-voc-96x96'
           '.py'))


def _demo_cfg(rel: str, work_dir: str, iters: Optional[int]):
    from mmengine.config import Config
    cfg = Config.fromfile(config_path(rel))
    n = iters or cfg.train_cfg.max_iters
    cfg.train_cfg.max_iters = n
    cfg.train_cfg.val_interval = n
    cfg.param_scheduler[0].end = n
    cfg.default_hooks.checkpoint.interval = n
    cfg.log_level = 'WARNING'  # the log file in the run's dir keeps all
    # The digits are generated under the work dir, not the cwd.
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = osp.join(work_dir, 'digits_voc')
    return cfg


def _run_model(task, needed=None) -> Dict:
    """One demo model in a worker process (module level: it pickles)."""
    import mmdynopool  # noqa: F401  (registrations)
    from mmdynopool.analysis.parallel import runtime_record
    name, rel, work_dir, iters, threads = task
    extra = dict(model=name, **runtime_record(threads))
    cfg = _demo_cfg(rel, work_dir, iters)
    extra.update(iters=cfg.train_cfg.max_iters, seed=cfg.randomness.seed)
    return run_experiment(
        cfg,
        osp.join(work_dir, name.lower()),
        tuple(cfg.crop_size),
        extra=extra)


def run_demo(work_dir: str = 'work_dirs/demo',
             iters: Optional[int] = None,
             jobs: int = 2) -> Dict:
    """Train both demo models (or read back finished runs), in ``jobs``
    processes of one torch thread each (the numbers depend on the thread
    count; one thread, recorded in each row, makes them the same on every
    machine of this kind).

    Args:
        work_dir (str): ``human/`` and ``dynopool/`` go below it, with
            ``demo.md`` (the table).
        iters (int, optional): Training iterations for both. Default: the
            configs' 600.
        jobs (int): Models trained at once. Default: 2.

    Returns:
        dict: ``rows`` (one :func:`run_experiment` result per model),
        ``table`` (markdown) and ``report`` (its file).
    """
    from mmdynopool.analysis.parallel import run_parallel
    from mmdynopool.datasets import build_digits_voc
    if iters is not None and (isinstance(iters, bool)
                              or not isinstance(iters, int) or iters < 1):
        raise ValueError(f'iters must be an integer >= 1, got {iters!r}')
    work_dir = osp.abspath(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    build_digits_voc(osp.join(work_dir, 'digits_voc'))  # once, before
    tasks = [(name, rel, work_dir, iters, 1) for name, rel in MODELS]
    names = ', '.join(n for n, _ in MODELS)
    print(
        f'training {len(tasks)} FCN-HRNets ({names}) on the digit mosaics;'
        f' logs in {work_dir}/<model>/',
        flush=True)
    rows = run_parallel(_run_model, tasks, jobs)
    table = format_demo(rows)
    report = osp.join(work_dir, 'demo.md')
    with open(report, 'w') as f:
        f.write(table + '\n')
    return dict(rows=rows, table=table, report=report)


def format_demo(rows) -> str:
    """The comparison table: mIoU, GMACs and the learned sizes.

    Args:
        rows (list[dict]): :func:`run_demo`'s rows.

    Returns:
        str: The markdown table.
    """
    lines = [
        '| model | mIoU (%) | GMACs per image | feature-map sizes '
        '(stem, streams 1-4) | seed, threads, DynOPool path |',
        '|---|---|---|---|---|'
    ]
    for r in rows:
        sizes = ' '.join(f'{h}x{w}' for h, w in r['resolutions'][1:])
        run = f'{r.get("seed", 0)}, {r.get("threads", "?")}, ' \
            f'{r.get("dynopool_path", "?")}'
        lines.append(f'| {r["model"]} | {r["value"]:.2f} | '
                     f'{r["gmacs"]:.4f} | {sizes} | {run} |')
    return '\n'.join(lines)
