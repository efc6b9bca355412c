"""Evaluate a checkpoint (mmseg or mmpretrain config).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]
        [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]

The checkpoint named here is loaded strictly: ``weights_only`` kept on
(mmengine's checkpoint classes allow-listed), every key of the model present
in it with the same shape and none left over, alpha included
(``mmdynopool.utils.load_strict``). A checkpoint of another architecture is
an error, not a randomly initialised evaluation. The GMACs loss only acts
while training and is left out (``mmdynopool.engine.runner.test``).
"""
import argparse
import os

from mmengine.config import DictAction

from mmdynopool.engine.runner import test


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and results')
    parser.add_argument(
        '--out', help='dump the metrics to this pickle/json file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    metrics = test(args.config, args.checkpoint, args.work_dir,
                   args.cfg_options, args.launcher)
    if args.out:
        from mmengine.fileio import dump
        dump(metrics, args.out)


if __name__ == '__main__':
    main()
