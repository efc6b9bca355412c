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
import os
import os.path as osp

from mmengine.config import Config, DictAction

from mmdynopool.analysis import lambda_sweep, plot_tradeoff, write_rows


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


def load(path, options):
    cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(options)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    human = load(args.human_config, args.cfg_options) \
        if args.human_config else None
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    sweep = lambda_sweep(
        load(args.config, args.cfg_options), args.lambdas, work_dir,
        input_size=args.input_size, human_cfg=human,
        resolutions=args.resolutions, metric=args.metric)
    rows = sweep['dynopool'] + sweep['human']
    files = write_rows(rows, osp.join(work_dir, 'sweep'))
    files.append(plot_tradeoff(
        sweep, osp.join(work_dir, 'sweep.png'),
        osp.splitext(osp.basename(args.config))[0]))
    print(f'{"run":<14}{rows[0]["metric"]:>14}{"GMACs":>12}  sizes')
    for r in rows:
        name = (f'lambda {r["lambda"]:g}' if r['kind'] == 'dynopool' else
                f'human {r["resolution"]}px')
        sizes = ' '.join(f'{h}x{w}' for h, w in r['resolutions'])
        print(f'{name:<14}{r["value"]:>14.2f}{r["gmacs"]:>12.5f}  {sizes}')
    print('\n'.join(files))


if __name__ == '__main__':
    main()
