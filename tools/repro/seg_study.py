"""The segmentation study of issue 21: DynOPool at the human cost against
the human family, the paper's lambda, Fix (Final) and a transposition
control, on the demo-scale FCN-HRNet and digits-VOC, over seeds.

    python tools/repro/seg_study.py [--work-dir work_dirs/seg_study]
        [--out-dir docs/studies] [--seeds 8] [--jobs 2] [--threads 1]
        [--iters N] [--cfg-options k=v ...]

Trains, per seed, the human model at 96x96 and at 88, 104, 80x116 and
116x80 px, DynOPool with ``target_gmacs`` = the human model's exact cost
(computed) and at the demo's lambda, a Fix (Final) retrain of each learned
target shape, and DynOPool at the target on digits-VOC stretched vertically
and on its exact transpose (10 runs per seed; ``seg_study_runs.py``). Then
writes ``segmentation.md``, ``segmentation.png`` and
``segmentation_runs.json`` (every run's result: the tables can be
recomputed from it alone, ``seg_study_report.recompute_report``) to the
out dir. Resumable: finished runs are read back, interrupted ones resume
from their latest checkpoint; a run whose alpha diverges is recorded, not
fatal. Each run is pinned to ``--threads`` torch threads and records them,
the DynOPool backend (``fused-cpu`` / ``generic``), ``MMDYNOPOOL_NO_EXT``
and the torch version.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument(
        '--work-dir',
        default='work_dirs/seg_study',
        help='runs and generated data go here')
    p.add_argument(
        '--out-dir',
        default='docs/studies',
        help='where the report, figure and runs JSON go')
    p.add_argument(
        '--seeds', type=int, default=8, help='seeds per condition (0 ... N-1)')
    p.add_argument(
        '--jobs',
        type=int,
        default=1,
        help='runs in parallel (separate processes)')
    p.add_argument(
        '--threads',
        type=int,
        default=1,
        help='torch threads per run (recorded in each result)')
    p.add_argument(
        '--iters',
        type=int,
        default=None,
        help="override the configs' 600 iterations (smoke tests)")
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
    from seg_study_runs import run_seg_study
    args = parse_args(argv)
    out = run_seg_study(args.work_dir, args.out_dir, args.seeds, args.jobs,
                        args.iters, args.threads, args.cfg_options)
    with open(out['report']) as f:
        print(f.read())
    return out['report']


if __name__ == '__main__':
    main()
