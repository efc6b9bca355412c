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

The sweep is :func:`run_lambda_sweep` (:func:`lambda_sweep`,
:func:`write_rows`, ``mmdynopool.analysis.plot_tradeoff``); every run is
``mmdynopool.analysis.experiments.run_experiment``.
"""
import argparse
import csv
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config, DictAction

from mmdynopool.analysis import plot_tradeoff
from mmdynopool.analysis.experiments import run_experiment
from mmdynopool.engine import (gmacs_loss_hook, set_gmacs_loss_weight,
                               set_input_resolution)


def lambda_sweep(cfg: Config,
                 lambdas: Sequence[float],
                 work_dir: str,
                 input_size: Optional[Sequence[int]] = None,
                 human_cfg: Optional[Config] = None,
                 resolutions: Sequence[int] = (),
                 metric: Optional[str] = None) -> Dict[str, List[Dict]]:
    """Train one run per lambda, and the human model per input resolution.

    Args:
        cfg (Config): A DynOPool config with one ``GMACsLossHook``.
        lambdas (Sequence[float]): ``loss_weight`` values (>= 0).
        work_dir (str): Runs go to ``lambda_<value>/`` and
            ``human_<res>/`` below it.
        input_size (Sequence[int], optional): ``(H, W)`` of the DynOPool
            runs' inputs, where GMACs are counted. Default: the hook's
            ``input_size``.
        human_cfg (Config, optional): The human-designed model's config,
            trained once per resolution (square ``res x res`` inputs).
        resolutions (Sequence[int]): Input sizes for ``human_cfg``.
        metric (str, optional): See :func:`run_experiment`.

    Returns:
        dict: ``dynopool`` and ``human``: lists of :func:`run_experiment`
        results (with ``lambda`` / ``resolution`` added).
    """
    if not lambdas:
        raise ValueError('lambdas must hold at least one value, got '
                         f'{lambdas!r}')
    if resolutions and human_cfg is None:
        raise ValueError('resolutions need human_cfg (the human-designed '
                         'model to train at each resolution)')
    if input_size is None:
        try:
            input_size = gmacs_loss_hook(cfg)['input_size']
        except ValueError as e:
            raise ValueError(f'input_size is needed: {e}') from None
    out = dict(dynopool=[], human=[])
    for lam in lambdas:
        out['dynopool'].append(
            run_experiment(
                set_gmacs_loss_weight(cfg, lam),
                osp.join(work_dir, f'lambda_{lam:g}'),
                input_size,
                metric,
                extra=dict(kind='dynopool', **{'lambda': float(lam)})))
    for res in resolutions:
        if not int(res) >= 1:
            raise ValueError(f'resolutions must be >= 1, got {res!r}')
        out['human'].append(
            run_experiment(
                set_input_resolution(human_cfg, (res, res)),
                osp.join(work_dir, f'human_{res}'), (res, res),
                metric,
                extra=dict(kind='human', resolution=int(res))))
    return out


def write_rows(rows: Sequence[Dict], prefix: str) -> List[str]:
    """``rows`` as ``prefix.json`` and ``prefix.csv`` (scalar columns).

    Args:
        rows (Sequence[dict]): Run results.
        prefix (str): Path without the extension.

    Returns:
        list[str]: The two files.
    """
    with open(prefix + '.json', 'w') as f:
        json.dump(list(rows), f, indent=1)
    cols = []
    for r in rows:
        cols += [
            k for k, v in r.items()
            if not isinstance(v, (dict, list)) and k not in cols
        ]
    with open(prefix + '.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, cols, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    return [prefix + '.json', prefix + '.csv']


def run_lambda_sweep(config: str,
                     lambdas: Sequence[float],
                     work_dir: str,
                     human_config: Optional[str] = None,
                     resolutions: Sequence[int] = (),
                     input_size: Optional[Sequence[int]] = None,
                     metric: Optional[str] = None,
                     cfg_options: Optional[dict] = None) -> Dict:
    """:func:`lambda_sweep` from config files (``cfg_options`` merged into
    both), its rows written by :func:`write_rows` to ``work_dir/sweep.*``
    and drawn to ``work_dir/sweep.png``.

    Args:
        config (str): The DynOPool config (one ``GMACsLossHook``).
        lambdas (Sequence[float]): ``loss_weight`` values.
        work_dir (str): Runs and the files go below it.
        human_config (str, optional): The human model's config.
        resolutions (Sequence[int]): Its square input sizes.
        input_size (Sequence[int], optional): ``(H, W)`` of the DynOPool runs.
            Default: the hook's.
        metric (str, optional): Val metric key.
        cfg_options (dict, optional): Merged into both configs.

    Returns:
        dict: ``rows`` (the DynOPool runs, then the human ones) and
        ``files`` (written).
    """

    def load(path):
        cfg = Config.fromfile(path)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        return cfg

    work_dir = osp.abspath(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    sweep = lambda_sweep(
        load(config),
        lambdas,
        work_dir,
        input_size=input_size,
        human_cfg=load(human_config) if human_config else None,
        resolutions=resolutions,
        metric=metric)
    rows = sweep['dynopool'] + sweep['human']
    files = write_rows(rows, osp.join(work_dir, 'sweep'))
    files.append(
        plot_tradeoff(sweep, osp.join(work_dir, 'sweep.png'),
                      osp.splitext(osp.basename(config))[0]))
    return dict(rows=rows, files=files)


def format_sweep_rows(rows: Sequence[Dict]) -> str:
    """One line per run: name, metric, GMACs and feature-map sizes.

    Args:
        rows (Sequence[dict]): :func:`run_lambda_sweep`'s rows.

    Returns:
        str: The text.
    """
    lines = [f'{"run":<14}{rows[0]["metric"]:>14}{"GMACs":>12}  sizes']
    for r in rows:
        name = (f'lambda {r["lambda"]:g}'
                if r['kind'] == 'dynopool' else f'human {r["resolution"]}px')
        sizes = ' '.join(f'{h}x{w}' for h, w in r['resolutions'])
        lines.append(f'{name:<14}{r["value"]:>14.2f}{r["gmacs"]:>12.5f}  '
                     f'{sizes}')
    return '\n'.join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='DynOPool lambda sweep')
    p.add_argument('config', help='DynOPool config with a GMACsLossHook')
    p.add_argument('--lambdas', type=float, nargs='+', required=True)
    p.add_argument('--human-config', help='human-designed model config')
    p.add_argument(
        '--resolutions',
        type=int,
        nargs='*',
        default=[],
        help='square input sizes for the human model')
    p.add_argument(
        '--input-size',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help="DynOPool runs' input size (default: the "
        "GMACsLossHook's)")
    p.add_argument(
        '--metric',
        help='val metric key (default: '
        'accuracy/top1, else mIoU)')
    p.add_argument('--work-dir', default='work_dirs/lambda_sweep')
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
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
