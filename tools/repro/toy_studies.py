"""Regenerate the toy-study tables and figures of ``docs/studies/``.

    python tools/repro/toy_studies.py [--work-dir work_dirs/toy_studies]
        [--studies control sweep dynopool_s target] [--seeds 5]
        [--sweep-seeds 5] [--target-seeds 10] [--jobs 2] [--threads 1]
        [--epochs N] [--s-lambda L] [--report-dir DIR]
        [--cfg-options k=v ...]

Trains the slim VGG-11 toy configs of ``configs/toy/``: the stretch-V /
stretch-H control with both alpha-derivative conventions, the lambda sweep on
digits-pairs against the human model at several input resolutions, and
DynOPool-S at the human model's cost (``run_toy_studies`` of ``toy_study.py``
beside this file). Writes ``toy_studies.md``, ``toy_studies.json``,
``toy_trajectories.png`` and ``toy_sweep.png`` to the work dir (the committed
copies are in ``docs/studies/``). Resumable: finished runs are read back,
interrupted ones resume from their latest checkpoint. The first three studies
(110 runs of 20 epochs) take about 60 minutes with ``--jobs 2`` on 2 idle
cores.

``--studies target`` (issue 21: DynOPool asked for the human cost, the
human family at non-square inputs of that cost, Fix (Final) retrains, the
transposition control; seeds 0-9) writes ``toy_target.md`` and
``toy_target_runs.json`` to ``--report-dir`` (default: the work dir):

    python tools/repro/toy_studies.py --studies target --jobs 2 \
        --work-dir work_dirs/toy_target --report-dir docs/studies
"""
import argparse
import os.path as osp
import sys

# The harness modules beside this file; the worker processes import them by
# name, so this folder goes on sys.path (they inherit it).
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    from mmengine.config import DictAction
    from toy_study import ALL_STUDIES, STUDIES
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--work-dir', default='work_dirs/toy_studies')
    p.add_argument(
        '--studies',
        nargs='+',
        default=list(STUDIES),
        choices=list(ALL_STUDIES),
        help='default: control, sweep and dynopool_s (not target)')
    p.add_argument(
        '--seeds',
        type=int,
        default=5,
        help='seeds of the control and DynOPool-S studies')
    p.add_argument(
        '--sweep-seeds',
        type=int,
        default=5,
        help='seeds per point of the lambda sweep')
    p.add_argument(
        '--target-seeds',
        type=int,
        default=10,
        help='seeds of the target study (0 ... N-1)')
    p.add_argument(
        '--threads',
        type=int,
        default=1,
        help='torch threads per run (recorded in each result)')
    p.add_argument(
        '--report-dir',
        default=None,
        help="where the target study's report goes (default: "
        'the work dir)')
    p.add_argument(
        '--epochs',
        type=int,
        default=None,
        help="override the configs' 20 epochs (quick checks)")
    p.add_argument(
        '--jobs',
        type=int,
        default=1,
        help='runs in parallel (separate processes)')
    p.add_argument(
        '--s-lambda',
        type=float,
        default=None,
        help="DynOPool-S's lambda (default: from the sweep)")
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of every config, key=value')
    args = p.parse_args(argv)
    for name in ('seeds', 'sweep_seeds', 'target_seeds', 'threads', 'jobs',
                 'epochs'):
        v = getattr(args, name)
        if v is not None and v < 1:
            p.error(f'--{name.replace("_", "-")} must be >= 1, got {v}')
    if args.s_lambda is not None and not args.s_lambda >= 0:
        p.error(f'--s-lambda must be >= 0, got {args.s_lambda}')
    return args


def main(argv=None):
    from toy_study import run_toy_studies
    args = parse_args(argv)
    out = run_toy_studies(args.work_dir, args.studies, args.seeds,
                          args.sweep_seeds, args.epochs, args.jobs,
                          args.s_lambda, args.cfg_options, args.target_seeds,
                          args.threads, args.report_dir)
    with open(out['report']) as f:
        print(f.read())
    return out['report']


if __name__ == '__main__':
    main()
