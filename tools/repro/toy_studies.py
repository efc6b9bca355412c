"""Regenerate the README's toy-study evidence (tables and figures).

    python tools/repro/toy_studies.py [--work-dir work_dirs/toy_studies]
        [--studies control sweep dynopool_s] [--seeds 5] [--sweep-seeds 5]
        [--jobs 2] [--epochs N] [--s-lambda L] [--cfg-options k=v ...]

Trains the slim VGG-11 toy configs of ``configs/toy/``: the stretch-V /
stretch-H control with both alpha-derivative conventions, the lambda sweep
on digits-pairs against the human model at several input resolutions, and
DynOPool-S at the human model's cost
(:func:`mmdynopool.analysis.run_toy_studies`). Writes ``toy_studies.md``,
``toy_studies.json``, ``toy_trajectories.png`` and ``toy_sweep.png`` to the
work dir. Resumable: finished runs are read back, interrupted ones resume
from their latest checkpoint. All three studies (110 runs of 20 epochs) take
about 60 minutes with ``--jobs 2`` on 2 idle cores.
"""
import argparse


def parse_args(argv=None):
    from mmengine.config import DictAction

    from mmdynopool.analysis.toy_study import STUDIES
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--work-dir', default='work_dirs/toy_studies')
    p.add_argument('--studies', nargs='+', default=list(STUDIES),
                   choices=list(STUDIES))
    p.add_argument('--seeds', type=int, default=5,
                   help='seeds of the control and DynOPool-S studies')
    p.add_argument('--sweep-seeds', type=int, default=5,
                   help='seeds per point of the lambda sweep')
    p.add_argument('--epochs', type=int, default=None,
                   help="override the configs' 20 epochs (quick checks)")
    p.add_argument('--jobs', type=int, default=1,
                   help='runs in parallel (separate processes)')
    p.add_argument('--s-lambda', type=float, default=None,
                   help="DynOPool-S's lambda (default: from the sweep)")
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override settings of every config, key=value')
    args = p.parse_args(argv)
    for name in ('seeds', 'sweep_seeds', 'jobs', 'epochs'):
        v = getattr(args, name)
        if v is not None and v < 1:
            p.error(f'--{name.replace("_", "-")} must be >= 1, got {v}')
    if args.s_lambda is not None and not args.s_lambda >= 0:
        p.error(f'--s-lambda must be >= 0, got {args.s_lambda}')
    return args


def main(argv=None):
    from mmdynopool.analysis.toy_study import run_toy_studies
    args = parse_args(argv)
    out = run_toy_studies(args.work_dir, args.studies, args.seeds,
                          args.sweep_seeds, args.epochs, args.jobs,
                          args.s_lambda, args.cfg_options)
    with open(out['report']) as f:
        print(f.read())
    return out['report']


if __name__ == '__main__':
    main()
