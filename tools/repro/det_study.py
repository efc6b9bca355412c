"""The detection study of issue 25: the CPU-scale RetinaNet of
``configs/digits_det/`` on the embedded digits-COCO set, the human ResNet-18
design against DynOPool asked for the human model's cost, over seeds.

    python tools/repro/det_study.py [--work-dir work_dirs/det_study]
        [--out-dir docs/studies] [--seeds 5] [--jobs 2] [--threads 1]
        [--iters N] [--cfg-options k=v ...]

Per seed (``randomness.seed``: the same data order and, since the DynOPool
conversion draws no random numbers, the same initial weights), the human
RetinaNet and the DynOPool one with ``GMACsLossHook(target_gmacs=X)``, ``X``
the human model's exact conv + linear GMACs at 128x128 (backbone, FPN and
head), each trained with mmengine's ``Runner`` and scored with mmdet's
``CocoMetric`` (bbox mAP) on the 150 validation canvases. Writes
``detection.md`` and ``detection_runs.json`` (every run's result;
:func:`recompute_report` rebuilds the tables from it alone) to the out dir.
Resumable like the other studies; each run records its threads, DynOPool
backend and torch version.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

CONFIG = ('digits_det/retinanet_r18-slim_{kind}_1xb8-1200iter_'
          'digits-coco-128x128.py')
CONDITIONS = ('human', 'dynopool_target')
INPUT_SIZE = (128, 128)
METRIC = 'coco/bbox_mAP'
REPORT = 'detection.md'
RUNS = 'detection_runs.json'


def det_plan(seeds: int) -> List[Dict]:
    """Every run over seeds ``0 ... seeds - 1`` (DynOPool first: the longer
    runs start early).

    Example:
        >>> [(s['condition'], s['seed']) for s in det_plan(1)]
        [('dynopool_target', 0), ('human', 0)]
    """
    return [
        dict(condition=c, seed=s) for c in CONDITIONS[::-1]
        for s in range(seeds)
    ]


def build_det_cfg(spec: Dict,
                  data_root: str,
                  target_gmacs: Optional[float] = None,
                  iters: Optional[int] = None,
                  cfg_options: Optional[Dict] = None):
    """The config of one run: the shipped config, the study's seed, data
    root and (for smoke tests) iterations; DynOPool's target set to
    ``target_gmacs``; ``cfg_options`` merged last."""
    from mmengine.config import Config

    from mmdynopool.engine import gmacs_loss_hook
    from mmdynopool.utils import config_path
    kind = 'human' if spec['condition'] == 'human' else 'dynopool'
    cfg = Config.fromfile(config_path(CONFIG.format(kind=kind)))
    cfg.randomness = dict(seed=int(spec['seed']))
    root = data_root.rstrip('/') + '/'
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[name].dataset.data_root = root
    for name in ('val_evaluator', 'test_evaluator'):
        cfg[name].ann_file = root + 'annotations/instances_val.json'
    if iters is not None:
        cfg.train_cfg.max_iters = iters
        cfg.train_cfg.val_interval = iters
        cfg.param_scheduler[0].end = min(100, iters)
        cfg.param_scheduler[1].T_max = iters
        cfg.param_scheduler[1].end = iters
        cfg.default_hooks.checkpoint.interval = iters
    if kind == 'dynopool':
        if target_gmacs is None:
            raise ValueError('a dynopool_target run needs target_gmacs')
        gmacs_loss_hook(cfg)['target_gmacs'] = float(target_gmacs)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.log_level = 'WARNING'
    return cfg


def human_cost() -> float:
    """Exact conv + linear GMACs of the human RetinaNet on one 128x128
    image (backbone, neck and head)."""
    from mmdynopool.analysis.complexity import exact_config_gmacs
    cfg = build_det_cfg(dict(condition='human', seed=0), 'unused')
    return exact_config_gmacs(cfg, INPUT_SIZE, 'mmdet')


def _run_one(task, needed=None) -> Dict:
    """One run in a worker process (module level, so it pickles)."""
    import mmdynopool  # noqa: F401  (registrations)
    from mmdynopool.analysis.experiments import run_experiment
    from mmdynopool.analysis.parallel import runtime_record
    spec, work_dir, root, target, iters, threads, cfg_options = task
    extra = dict(spec, **runtime_record(threads))
    if spec['condition'] != 'human':
        extra['target_gmacs'] = target
    cfg = build_det_cfg(spec, root, target, iters, cfg_options)
    extra['iters'] = cfg.train_cfg.max_iters
    out_dir = osp.join(work_dir, spec['condition'], f'seed{spec["seed"]}')
    return run_experiment(cfg, out_dir, INPUT_SIZE, metric=METRIC, extra=extra)


def format_report(data: Dict) -> str:
    """The report's markdown from the runs JSON's content."""
    from mmdynopool.analysis.stats import (cost_within, format_paired,
                                           mean_std, paired_difference)
    settings, runs = data['settings'], data['runs']
    target = settings['target_gmacs']
    by = {(r['condition'], r['seed']): r for r in runs}
    seeds = sorted({r['seed'] for r in runs})
    lines = [
        '# Detection study: DynOPool at the human cost (digits-COCO '
        'RetinaNet)', '',
        f'Generated by `python tools/repro/det_study.py --seeds '
        f'{settings["seeds"]} --jobs {settings["jobs"]} --threads '
        f'{settings["threads"]}` (per-run results: `{RUNS}`; '
        '`det_study.recompute_report` rebuilds this page from it). '
        f'Configs: `configs/{CONFIG.format(kind="human")}` and its DynOPool '
        f'child; {settings["iters"] or 1200} iterations, batch 8, '
        f'{settings["threads"]} torch thread(s) per run, seeds '
        f'{seeds[0]}-{seeds[-1]}; bbox mAP (mmdet CocoMetric, '
        'percent) on 150 validation canvases; GMACs: conv + linear of '
        'backbone, FPN and head at 128x128, target '
        f'{target:.4f} (the human model\'s).' +
        (f' Config overrides: `{settings["cfg_options"]}`.'
         if settings.get('cfg_options') else ''), '',
        '| condition | runs | bbox mAP | mAP@50 | GMACs / human | within '
        '5 % of the target |', '|---|---|---|---|---|---|'
    ]
    for c in CONDITIONS:
        rs = [by[(c, s)] for s in seeds if (c, s) in by]
        if not rs:
            continue
        m, sd = mean_std([100 * r['value'] for r in rs])
        m50, sd50 = mean_std(
            [100 * r['metrics'].get('coco/bbox_mAP_50', 0.0) for r in rs])
        ratio = [r['gmacs'] / target for r in rs]
        within = sum(cost_within(r['gmacs'], target) for r in rs)
        lines.append(f'| {c} | {len(rs)} | {m:.2f} ± {sd:.2f} | {m50:.2f} ± '
                     f'{sd50:.2f} | {min(ratio):.3f}-{max(ratio):.3f} | '
                     f'{within}/{len(rs)} |')
    paired = [s for s in seeds if all((c, s) in by for c in CONDITIONS)]
    lines += ['', '## Paired by seed', '']
    if len(paired) >= 2:
        d = paired_difference(
            [100 * by[('dynopool_target', s)]['value'] for s in paired],
            [100 * by[('human', s)]['value'] for s in paired])
        lines.append(f'DynOPool - human, bbox mAP over {len(paired)} seeds: '
                     f'{format_paired(d)} (mean difference, 95 % interval, '
                     'two-sided paired t-test).')
    else:
        lines.append('Fewer than two paired seeds: no test.')
    lines += [
        '', '## Per run', '',
        '| seed | human mAP | DynOPool mAP | DynOPool GMACs | learned '
        'scales (stem, stages) |', '|---|---|---|---|---|'
    ]
    for s in seeds:
        h, d = by.get(('human', s)), by.get(('dynopool_target', s))
        scales = ', '.join(f'{a:.3f}x{b:.3f}'
                           for a, b in d['scales']) if d else '-'
        lines.append(
            f'| {s} | {100 * h["value"]:.2f} | ' if h else f'| {s} | - | ')
        lines[-1] += (f'{100 * d["value"]:.2f} | {d["gmacs"]:.4f} | '
                      f'{scales} |' if d else '- | - | - |')
    return '\n'.join(lines) + '\n'


def recompute_report(runs_json: str) -> str:
    """The report's markdown from a ``detection_runs.json`` alone."""
    with open(runs_json) as f:
        return format_report(json.load(f))


def run_det_study(work_dir: str,
                  out_dir: str,
                  seeds: int = 5,
                  jobs: int = 1,
                  iters: Optional[int] = None,
                  threads: int = 1,
                  cfg_options: Optional[Dict] = None) -> Dict:
    """Run (or read back) every run of :func:`det_plan`, then write
    ``detection.md`` and ``detection_runs.json`` to ``out_dir``.

    Returns:
        dict: ``report`` (the markdown file) and ``runs``.
    """
    from mmdynopool.analysis.parallel import run_parallel
    from mmdynopool.datasets import build_digits_coco
    for name, v in (('seeds', seeds), ('jobs', jobs), ('threads', threads)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f'{name} must be an integer >= 1, got {v!r}')
    if iters is not None and (isinstance(iters, bool)
                              or not isinstance(iters, int) or iters < 1):
        raise ValueError(f'iters must be an integer >= 1, got {iters!r}')
    work_dir = osp.abspath(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    start = time.time()
    root = build_digits_coco(osp.join(work_dir, 'digits_coco'))
    target = human_cost()
    plan = det_plan(seeds)
    runs = run_parallel(
        _run_one, [(s, work_dir, root, target, iters, threads, cfg_options)
                   for s in plan], jobs)
    data = dict(
        settings=dict(
            seeds=seeds,
            iters=iters,
            threads=threads,
            jobs=jobs,
            target_gmacs=target,
            cfg_options=cfg_options or {},
            configs=[CONFIG.format(kind=k) for k in ('human', 'dynopool')],
            wall_seconds=round(time.time() - start, 1)),
        runs=runs)
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, RUNS), 'w') as f:
        json.dump(data, f, indent=1)
    report = osp.join(out_dir, REPORT)
    with open(report, 'w') as f:
        f.write(format_report(data))
    return dict(report=report, runs=runs)


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--work-dir', default='work_dirs/det_study')
    p.add_argument('--out-dir', default='docs/studies')
    p.add_argument('--seeds', type=int, default=5)
    p.add_argument('--jobs', type=int, default=1)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument(
        '--iters',
        type=int,
        default=None,
        help="override the configs' 1200 iterations (smoke tests)")
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of every config, key=value')
    args = p.parse_args(argv)
    for name in ('seeds', 'jobs', 'threads', 'iters'):
        v = getattr(args, name)
        if v is not None and v < 1:
            p.error(f'--{name} must be >= 1, got {v}')
    return args


def main(argv=None):
    args = parse_args(argv)
    out = run_det_study(args.work_dir, args.out_dir, args.seeds, args.jobs,
                        args.iters, args.threads, args.cfg_options)
    with open(out['report']) as f:
        print(f.read())
    return out['report']


if __name__ == '__main__':
    main()
