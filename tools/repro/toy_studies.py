"""Reproduce the DynOPool paper's Sec. 3 toy studies at CPU scale.

    python tools/repro/toy_studies.py [--work-dir work_dirs/toy_studies]
        [--seeds 0 1 2] [--datasets stretch-v tile large plain]
        [--epochs 5] [--num-train 3000] [--num-val 1000] [--jobs 2]
        [--cfg-options k=v ...]

Trains the slim VGG-11 configs of ``configs/toy/`` (human vs DynOPool on
digits-stretch-V / tile / large, human vs DynOPool vs Shape Adaptor on the
plain digits), one run per seed, with mmengine's Runner, and writes
``toy_studies.md`` (the table: top-1 mean +- std over seeds, MMACs at the
learned shape, learned feature-map sizes per seed), ``toy_studies.json``
(every run) and ``toy_shapes.png`` (seed 0's shapes) to the work dir.
Resumable: finished runs (``result.json`` in their work dir) are read back,
interrupted ones resume from their latest checkpoint.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'toy', 'vgg11-slim_{}_digits-{}.py')
# dataset -> (input size, models), in the paper's order.
STUDIES = {
    'stretch-v': (32, ('human', 'dynopool')),
    'tile': (64, ('human', 'dynopool')),
    'large': (64, ('human', 'dynopool')),
    'plain': (32, ('human', 'dynopool', 'shape-adaptor')),
}
NAMES = {'human': 'human', 'dynopool': 'DynOPool',
         'shape-adaptor': 'Shape Adaptor'}


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--work-dir', default='work_dirs/toy_studies')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--datasets', nargs='+', default=list(STUDIES),
                   choices=list(STUDIES))
    p.add_argument('--epochs', type=int, default=5)
    p.add_argument('--num-train', type=int, default=3000)
    p.add_argument('--num-val', type=int, default=1000)
    p.add_argument('--jobs', type=int, default=1,
                   help='runs in parallel (separate processes)')
    p.add_argument('--threads', type=int, default=None,
                   help='torch threads per run (default: cores / jobs)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override settings of every config, key=value')
    args = p.parse_args(argv)
    for name in ('epochs', 'num_train', 'num_val', 'jobs'):
        if getattr(args, name) < 1:
            p.error(f'--{name.replace("_", "-")} must be >= 1, got '
                    f'{getattr(args, name)}')
    return args


def build_cfg(dataset, model, seed, args):
    from mmengine.config import Config
    cfg = Config.fromfile(CONFIG.format(model, dataset))
    e = args.epochs
    cfg.merge_from_dict({
        'train_cfg.max_epochs': e, 'train_cfg.val_interval': e,
        'param_scheduler.T_max': e, 'randomness': dict(seed=seed),
        **{f'{loader}_dataloader.dataset.{k}': v
           for loader in ('train', 'val', 'test')
           for k, v in (('num_train', args.num_train),
                        ('num_val', args.num_val))}
    })
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def run_one(task):
    """One (dataset, model, seed) run; top level so a worker can pickle it."""
    import torch

    import mmdynopool  # noqa: F401  (registrations)
    from mmdynopool.analysis import run_experiment
    dataset, model, seed, args = task
    if args.threads:
        torch.set_num_threads(args.threads)
    size = STUDIES[dataset][0]
    cfg = build_cfg(dataset, model, seed, args)
    work_dir = osp.join(args.work_dir, dataset, model, f'seed{seed}')
    return run_experiment(cfg, work_dir, (size, size),
                          extra=dict(dataset=dataset, model=model, seed=seed))


def sizes_text(resolutions):
    return ' '.join(f'{h}x{w}' for h, w in resolutions[1:])


def summarise(results, args):
    """Markdown table: one row per (dataset, model)."""
    lines = [
        '| dataset | model | top-1 (%) | vs human | MMACs | learned '
        'feature-map sizes (per seed) |', '|---|---|---|---|---|---|'
    ]
    summary = []
    for dataset in (d for d in STUDIES if d in args.datasets):
        base = None
        for model in STUDIES[dataset][1]:
            runs = sorted((r for r in results if r['dataset'] == dataset
                           and r['model'] == model), key=lambda r: r['seed'])
            if not runs:
                continue
            acc = [r['value'] for r in runs]
            macs = [r['gmacs'] * 1e3 for r in runs]
            sd = statistics.stdev if len(runs) > 1 else lambda v: 0.0
            row = dict(dataset=dataset, model=model, seeds=len(runs),
                       top1_mean=statistics.mean(acc), top1_std=sd(acc),
                       mmacs_mean=statistics.mean(macs), mmacs_std=sd(macs),
                       sizes=[r['resolutions'] for r in runs])
            summary.append(row)
            base = row['top1_mean'] if model == 'human' else base
            delta = '' if model == 'human' or base is None else \
                f'{row["top1_mean"] - base:+.2f}'
            shapes = '<br>'.join(sizes_text(r['resolutions']) for r in runs)
            lines.append(
                f'| {dataset} {STUDIES[dataset][0]}px | {NAMES[model]} | '
                f'{row["top1_mean"]:.2f} ± {row["top1_std"]:.2f} | {delta} | '
                f'{row["mmacs_mean"]:.2f} ± {row["mmacs_std"]:.2f} | '
                f'{shapes} |')
    return '\n'.join(lines), summary


def plot(results, out_file):
    from mmdynopool.analysis import plot_shapes
    if not results:
        return None
    seed = min(r['seed'] for r in results)
    first = [r for r in results if r['seed'] == seed]
    return plot_shapes(
        [r['resolutions'] for r in first],
        [f'{r["dataset"]} / {NAMES[r["model"]]}' for r in first],
        out_file, [f'{r["gmacs"] * 1e3:.2f} MMACs, top-1 {r["value"]:.1f}'
                   for r in first])


def main(argv=None):
    args = parse_args(argv)
    args.work_dir = osp.abspath(args.work_dir)
    os.makedirs(args.work_dir, exist_ok=True)
    if args.threads is None:
        args.threads = max(1, (os.cpu_count() or 1) // args.jobs)
    tasks = [(d, m, s, args) for d in args.datasets
             for m in STUDIES[d][1] for s in args.seeds]
    start = time.time()
    if args.jobs == 1:
        results = [run_one(t) for t in tasks]
    else:
        import multiprocessing as mp
        with ProcessPoolExecutor(args.jobs,
                                 mp_context=mp.get_context('spawn')) as pool:
            results = list(pool.map(run_one, tasks))
    table, summary = summarise(results, args)
    settings = dict(seeds=args.seeds, epochs=args.epochs,
                    num_train=args.num_train, num_val=args.num_val,
                    cfg_options=args.cfg_options or {},
                    wall_seconds=round(time.time() - start, 1),
                    train_seconds=round(sum(r['train_seconds']
                                            for r in results), 1))
    out = osp.join(args.work_dir, 'toy_studies')
    with open(out + '.json', 'w') as f:
        json.dump(dict(settings=settings, summary=summary, runs=results), f,
                  indent=1)
    note = (f'\n\n{args.num_train} training / {args.num_val} validation '
            f'digits, {args.epochs} epochs, seeds {args.seeds}; '
            f'{settings["wall_seconds"]:.0f} s wall clock for what ran now '
            f'(finished runs are read back).\n')
    with open(out + '.md', 'w') as f:
        f.write(table + note)
    plot(results, osp.join(args.work_dir, 'toy_shapes.png'))
    print(table + note)
    return out + '.md'


if __name__ == '__main__':
    main()
