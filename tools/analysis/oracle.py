"""Oracle evaluation of an inference-time dynamic model (Untapped Potential).

    python tools/analysis/oracle.py CONFIG CHECKPOINT --attributes stride
        [--layers ABCD] [--options stride=1,2,3,4 kernel_size=1,3]
        [--budget 625 --ranked stride=DIR kernel_size=DIR]
        [--efficiency static|best] [--max-samples N] [--work-dir DIR]
        [--device cuda]

Makes the ABCD layers of the config's model dynamic (the checkpoint loads
unchanged), runs every sample of its test dataloader through every option
permutation and writes to the work dir: ``results.npz`` (resumable partial
results), ``summary.json`` (static / best / median / worst, per-layer
preferences, unique predictions, greedy curve, efficiency), ``greedy.csv``,
``permutations.csv`` and ``oracle.png``. Classification (mmpretrain) and
segmentation (mmseg; quality = per-image mIoU) configs both work.

``--ranked`` combines attributes under a permutation budget (Eq. 2): each
attribute keeps its ``floor(budget ** (1 / m))`` first greedy permutations
from an earlier single-attribute run's work dir.

A config may carry its study's settings as ``oracle = dict(attributes=...,
options=..., efficiency=..., layers=..., shortcut=...,
follow_at_trained_stride=...)`` (e.g.
``configs/untapped/resnet50_untapped-efficiency_8xb32-100e_in1k.py``,
Sec. 4.6); the command line overrides them. :func:`run_oracle_study` is
the study; the measuring is the library's (``mmdynopool.analysis``:
``run_oracle``, ``oracle_summary``, ``greedy_accumulation``,
``efficiency_summary``, ``plot_oracle``).

Ties: where several permutations reach a sample's best (or worst) quality,
the first in permutation order is the one counted, in ``summary.json``,
``permutations.csv`` and the efficiency targets alike
(``mmdynopool.analysis.oracle.ranked_permutations``).
"""
import argparse
import csv
import json
import os
import os.path as osp
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
from mmengine.config import DictAction

from mmdynopool.analysis import (combine_permutations, efficiency_summary,
                                 greedy_accumulation, oracle_summary,
                                 permutation_macs, plot_oracle,
                                 ranked_permutations, run_oracle)
from mmdynopool.models.dynamic import (convert_to_dynamic, parse_option_text,
                                       parse_permutation_key, permutation_key)

#: Keys of a config's ``oracle`` dict.
PRESET_KEYS = ('attributes', 'options', 'efficiency', 'layers', 'shortcut',
               'follow_at_trained_stride')


def _permutation_rows(perms: Sequence, alone: np.ndarray, q: np.ndarray,
                      macs: Optional[np.ndarray]) -> List[list]:
    """``permutations.csv``: each permutation, its own score, how many
    samples it is the best permutation of (ties: the first, as everywhere)
    and its GMACs."""
    best = np.bincount(ranked_permutations(q)['best'], minlength=len(perms))
    return [[
        permutation_key(p), f'{alone[j]:.3f}',
        int(best[j]), '' if macs is None else f'{macs[j] / 1e9:.5f}'
    ] for j, p in enumerate(perms)]


def _settings(cfg,
              attributes,
              options,
              efficiency,
              layers,
              shortcut,
              follow_at_trained_stride=None):
    preset = dict(cfg.get('oracle') or {})
    unknown = set(preset) - set(PRESET_KEYS)
    if unknown:
        raise ValueError(f"the config's oracle dict has unknown keys "
                         f'{sorted(unknown)}')
    merged = {k: tuple(v) for k, v in (preset.get('options') or {}).items()}
    merged.update({k: tuple(v) for k, v in (options or {}).items()})
    return dict(
        attributes=tuple(
            attributes or preset.get('attributes') or ('stride', )),
        options=merged,
        efficiency=efficiency or preset.get('efficiency'),
        layers=layers or preset.get('layers', 'ABCD'),
        shortcut=shortcut or preset.get('shortcut', 'avgpool'),
        follow_at_trained_stride=preset.get('follow_at_trained_stride', False)
        if follow_at_trained_stride is None else follow_at_trained_stride)


def _ranked_permutations(ranked: Mapping[str, str], attributes: Sequence[str],
                         budget: int) -> List:
    if sorted(ranked) != sorted(attributes):
        raise ValueError(f'--ranked must name every attribute of '
                         f'--attributes {tuple(attributes)}, got '
                         f'{sorted(ranked)}')
    lists = []
    for a in attributes:
        with open(osp.join(ranked[a], 'summary.json')) as f:
            lists.append([
                parse_permutation_key(k)
                for k in json.load(f)['greedy']['order']
            ])
    return combine_permutations(lists, budget)


def _write_csv(path: str, header: Sequence[str], rows) -> str:
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run_oracle_study(config: str,
                     checkpoint: Optional[str] = None,
                     attributes: Optional[Sequence[str]] = None,
                     options: Optional[Mapping[str, Sequence]] = None,
                     layers: Optional[str] = None,
                     arch: Optional[str] = None,
                     shortcut: Optional[str] = None,
                     budget: int = 625,
                     ranked: Optional[Mapping[str, str]] = None,
                     efficiency: Optional[str] = None,
                     input_size: Optional[Sequence[int]] = None,
                     max_samples: Optional[int] = None,
                     batch_size: Optional[int] = None,
                     work_dir: Optional[str] = None,
                     device: str = 'cpu',
                     progress: bool = True,
                     cfg_options: Optional[dict] = None,
                     follow_at_trained_stride: Optional[bool] = None) -> Dict:
    """Oracle-evaluate ``config``'s model and write the study's files.

    Args:
        config (str): Config file (mmpretrain or mmseg).
        checkpoint (str, optional): Its trained weights.
        attributes (Sequence[str], optional): Of ``stride``, ``dilation``,
            ``kernel_size``. Default: the config's ``oracle.attributes``,
            else ``('stride', )``.
        options (Mapping, optional): Allowed values per attribute.
        layers (str, optional): Dynamic layers. Default: ``'ABCD'``.
        arch (str, optional): ``resnet``, ``mobilenet_v2`` or ``densenet``.
            Default: detected.
        shortcut (str, optional): How a ResNet shortcut follows a changed
            stride. Default: ``'avgpool'``.
        budget (int): Most permutations when combining (Eq. 2).
            Default: 625.
        ranked (Mapping[str, str], optional): Per attribute, the work dir of
            an earlier single-attribute study to combine (Eq. 2).
        efficiency (str, optional): ``'static'`` or ``'best'`` (Sec. 4.6).
        input_size (Sequence[int], optional): ``(H, W)`` for the MACs
            counts. Default: the first test batch's (classification).
        max_samples (int, optional): Test samples to use. Default: all.
        batch_size (int, optional): Default: the config's.
        work_dir (str, optional): Default:
            ``work_dirs/oracle/<config name>/<attributes>``.
        device (str): Default: ``'cpu'``.
        progress (bool): Show a progress bar. Default: True.
        cfg_options (dict, optional): Merged into the config.
        follow_at_trained_stride (bool, optional): The shortcut rule at a
            block's trained stride too (see :func:`convert_to_dynamic`).
            Default: the config's ``oracle`` value, else False.

    Returns:
        dict: ``summary`` (what ``summary.json`` holds), ``work_dir`` and
        ``files`` (written).
    """
    from mmengine.runner import Runner

    from mmdynopool.utils import build_model_from_cfg
    cfg, model = build_model_from_cfg(config, checkpoint, cfg_options)
    model.to(device)
    s = _settings(cfg, attributes, options, efficiency, layers, shortcut,
                  follow_at_trained_stride)
    attributes = s['attributes']
    dyn = convert_to_dynamic(
        getattr(model, 'backbone', model), arch, s['layers'], s['options'],
        s['shortcut'], s['follow_at_trained_stride'])
    default = dyn.default(attributes)
    perms = (
        _ranked_permutations(ranked, attributes, budget)
        if ranked else dyn.permutations(attributes))
    if default not in perms:  # the static model is always evaluated
        perms.append(default)
    default_index = perms.index(default)

    name = osp.splitext(osp.basename(config))[0]
    work_dir = work_dir or osp.join('work_dirs', 'oracle', name,
                                    '+'.join(attributes))
    os.makedirs(work_dir, exist_ok=True)
    loader_cfg = cfg.test_dataloader.copy()
    if max_samples:
        loader_cfg.dataset.indices = max_samples
    if batch_size:
        loader_cfg.batch_size = batch_size
    loader = Runner.build_dataloader(loader_cfg)
    if progress:
        print(f'{len(perms)} permutations of {attributes} over layers '
              f'{dyn.names}, {len(loader.dataset)} samples -> {work_dir}')
    res = run_oracle(
        model,
        loader,
        perms,
        attributes,
        osp.join(work_dir, 'results.npz'),
        progress=progress)

    classification = 'pred' in res
    summary = oracle_summary(res['q'], perms, default_index, dyn.names,
                             res.get('pred'), res.get('labels'))
    summary.update(
        config=config,
        checkpoint=checkpoint,
        attributes=list(attributes),
        default=permutation_key(default))
    if classification:
        correct = res['pred'] == res['labels'][:, None]
        greedy = greedy_accumulation(correct)
        alone = correct.mean(0) * 100
    else:
        greedy = None
        with np.errstate(invalid='ignore', divide='ignore'):
            # Dataset mIoU of each permutation.
            alone = np.nanmean(res['intersect'] / res['union'], axis=1) * 100
        summary['static_dataset_miou'] = float(alone[default_index])
    macs = None
    if s['efficiency'] or input_size:
        if s['efficiency'] and not classification:
            raise ValueError('--efficiency needs class predictions '
                             '(a classification config)')
        if input_size is None:
            if not classification:
                raise ValueError('segmentation: pass --input-size for MACs')
            batch = model.data_preprocessor(next(iter(loader)), False)
            input_size = tuple(batch['inputs'].shape[-2:])
        macs = permutation_macs(model, dyn, perms, attributes, input_size)
        summary['static_gmacs'] = float(macs[default_index] / 1e9)
    if s['efficiency']:
        summary['efficiency'] = efficiency_summary(res, macs, default_index,
                                                   s['efficiency'])
    files = []
    if greedy is not None:
        summary['greedy'] = dict(
            order=[permutation_key(perms[j]) for j in greedy['order']],
            accuracy=greedy['accuracy'])
        files.append(
            _write_csv(
                osp.join(work_dir,
                         'greedy.csv'), ['k', 'permutation', 'best_case_top1'],
                [[k + 1, permutation_key(perms[j]), f'{a:.3f}'] for k, (
                    j,
                    a) in enumerate(zip(greedy['order'], greedy['accuracy']))
                 ]))
    files.append(
        _write_csv(
            osp.join(work_dir, 'permutations.csv'), [
                'permutation', 'top1' if classification else 'miou',
                'preferred_by', 'gmacs'
            ], _permutation_rows(perms, alone, res['q'], macs)))
    path = osp.join(work_dir, 'summary.json')
    with open(path, 'w') as f:
        json.dump(summary, f, indent=2)
    files.append(path)
    files.append(
        plot_oracle(
            osp.join(work_dir, 'oracle.png'), greedy, summary,
            f'{name}: dynamic {"+".join(attributes)}'))
    return dict(summary=summary, work_dir=work_dir, files=files)


def format_oracle_summary(summary: Dict) -> str:
    """The study's headline numbers as text.

    Args:
        summary (dict): :func:`run_oracle_study`'s ``summary``.

    Returns:
        str: The text.
    """
    metric = 'top-1' if 'unique_predictions' in summary else \
        'mean per-image mIoU'
    lines = [
        f'{metric} (%)  static {summary["static"]:.2f}  best '
        f'{summary["best"]:.2f}  median {summary["median"]:.2f}  worst '
        f'{summary["worst"]:.2f}  ({summary["num_samples"]} samples, '
        f'{summary["num_permutations"]} permutations)'
    ]
    for layer, prefs in summary['preferences'].items():
        lines.append(f'  preferred options in {layer}: ' +
                     ', '.join(f'{k}: {v:.1f}%' for k, v in prefs.items()))
    if 'efficiency' in summary:
        e = summary['efficiency']
        lines.append(
            f'efficiency: emulating the {e["target"]} model '
            f'({e["accuracy"]:.2f}% top-1, {e["target_gmacs"]:.4f} GMACs)'
            f' costs {e["mean_gmacs"]:.4f} GMACs per sample on average '
            f'({e["reduction"]:.2f}x less)')
    return '\n'.join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Oracle evaluation of dynamic '
                                'stride / dilation / kernel size')
    p.add_argument('config')
    p.add_argument('checkpoint', nargs='?', default=None)
    p.add_argument(
        '--attributes',
        nargs='+',
        default=None,
        choices=['stride', 'dilation', 'kernel_size'],
        help="default: the config's oracle.attributes, else "
        'stride')
    p.add_argument('--layers', default=None, help='default: ABCD')
    p.add_argument(
        '--arch', default=None, choices=['resnet', 'mobilenet_v2', 'densenet'])
    p.add_argument(
        '--options',
        nargs='+',
        default=[],
        metavar='ATTR=V1,V2',
        help='allowed values per attribute; '
        'an anisotropic stride as HxW, e.g. stride=1,1x2,2x1,2')
    p.add_argument(
        '--shortcut',
        default=None,
        choices=['avgpool', 'subsample'],
        help='how a ResNet shortcut follows a changed stride '
        '(default: avgpool, the first author\'s)')
    p.add_argument(
        '--follow-at-trained-stride',
        action='store_true',
        default=None,
        help='the shortcut rule at a block\'s trained stride '
        'too (the first author\'s code); default: the config\'s '
        'oracle.follow_at_trained_stride, else the pretrained '
        'strided 1x1 there')
    p.add_argument('--budget', type=int, default=625)
    p.add_argument(
        '--ranked',
        nargs='+',
        default=[],
        metavar='ATTR=DIR',
        help='single-attribute work dirs to combine (Eq. 2)')
    p.add_argument(
        '--efficiency',
        choices=['static', 'best'],
        default=None,
        help='cheapest permutation with the same prediction as '
        'the static or the best-case model (Sec. 4.6)')
    p.add_argument(
        '--input-size',
        type=int,
        nargs=2,
        default=None,
        metavar=('H', 'W'),
        help='input size for MACs counts')
    p.add_argument('--max-samples', type=int, default=None)
    p.add_argument('--batch-size', type=int, default=None)
    p.add_argument('--work-dir', default=None)
    p.add_argument(
        '--device', default='cpu', help="e.g. 'cuda' on a GPU machine")
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    options = {}
    for item in args.options:
        key, _, values = item.partition('=')
        options[key] = tuple(parse_option_text(v) for v in values.split(','))
    ranked = dict(item.split('=', 1) for item in args.ranked)
    out = run_oracle_study(args.config, args.checkpoint, args.attributes,
                           options, args.layers, args.arch, args.shortcut,
                           args.budget, ranked, args.efficiency,
                           args.input_size, args.max_samples, args.batch_size,
                           args.work_dir, args.device, not args.no_progress,
                           args.cfg_options, args.follow_at_trained_stride)
    print('\n' + format_oracle_summary(out['summary']))
    print('wrote ' + ', '.join(out['files']))
    return out['summary']


if __name__ == '__main__':
    main()
