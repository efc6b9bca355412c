"""Train a model (mmseg or mmpretrain) with mmdynopool's layers and hooks.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]

Same arguments as mmseg's and mmpretrain's tools/train.py. Also works for
multi-process training on CPU-only machines (gloo), see
``mmdynopool.utils.setup_distributed``. The work is
``mmdynopool.engine.runner.train``.
"""
import argparse
import os

from mmengine.config import DictAction

from mmdynopool.engine.runner import train
from mmdynopool.utils import close_distributed


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or from the latest one in '
        'the work dir if no path is given')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
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
    train(args.config, args.work_dir, args.cfg_options, args.launcher,
          args.resume, args.amp)
    close_distributed()


if __name__ == '__main__':
    main()
