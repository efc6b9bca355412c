"""Accuracy vs GMACs of DynOPool over lambda, against the human model over
input resolutions (the DynOPool paper's Fig. 5).

    python tools/analysis/lambda_sweep.py DYNOPOOL_CONFIG \
        --lambdas 0 0.01 0.03 [--human-config HUMAN_CONFIG \
        --resolutions 24 32 40] [--input-size H W] [--metric accuracy/top1] \
        [--work-dir work_dirs/lambda_sweep] [--cfg-options k=v ...]

One training run per lambda (the ``loss_weight`` of the config's
``GMACsLossHook``) in ``WORK_DIR/lambda_<value>``, and, as in the paper, the
human-designed model *trained* at each input resolution (an mmcv ``Resize``
before the final ``Pack*`` transform of its train and val pipelines) in
``WORK_DIR/human_<res>``. Each run is measured by its final validation
(mmpretrain ``Accuracy`` top-1 or mmseg ``mIoU``) and by the GMACs at its
learned shape. ``--cfg-options`` applies to every run. Resumable: finished
runs are read back from their ``result.json``.

Writes ``WORK_DIR/sweep.json``, ``sweep.csv`` and ``sweep.png``.
"""
import argparse

from mmengine.config import DictAction

from mmdynopool.analysis import format_sweep_rows, run_lambda_sweep


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='DynOPool lambda sweep')
    p.add_argument('config', help='DynOPool config with a GMACsLossHook')
    p.add_argument('--lambdas', type=float, nargs='+', required=True)
    p.add_argument('--human-config', help='human-designed model config')
    p.add_argument('--resolutions', type=int, nargs='*', default=[],
                   help='square input sizes for the human model')
    p.add_argument('--input-size', type=int, nargs=2, metavar=('H', 'W'),
                   help="DynOPool runs' input size (default: the "
                   "GMACsLossHook's)")
    p.add_argument('--metric', help='val metric key (default: '
                   'accuracy/top1, else mIoU)')
    p.add_argument('--work-dir', default='work_dirs/lambda_sweep')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override settings of every run, key=value')
    args = p.parse_args(argv)
    if args.resolutions and not args.human_config:
        p.error('--resolutions needs --human-config')
    return args


def main(argv=None):
    args = parse_args(argv)
    out = run_lambda_sweep(args.config, args.lambdas, args.work_dir,
                           args.human_config, args.resolutions,
                           args.input_size, args.metric, args.cfg_options)
    print(format_sweep_rows(out['rows']))
    print('\n'.join(out['files']))


if __name__ == '__main__':
    main()
