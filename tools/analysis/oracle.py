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
options=..., efficiency=..., layers=..., shortcut=...)`` (e.g.
``configs/untapped/resnet50_efficiency_imagenet.py``, Sec. 4.6); the
command line overrides them.
"""
import argparse
import csv
import json
import os
import os.path as osp

import numpy as np
import torch
from mmengine.config import DictAction

from mmdynopool.analysis import count_macs
from mmdynopool.analysis.oracle import (combine_permutations,
                                        efficiency_search,
                                        greedy_accumulation, oracle_summary,
                                        plot_oracle, run_oracle, save_json)
from mmdynopool.models.dynamic import (convert_to_dynamic,
                                       parse_option_text,
                                       parse_permutation_key,
                                       permutation_key)
from mmdynopool.utils import build_model_from_cfg


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Oracle evaluation of dynamic '
                                'stride / dilation / kernel size')
    p.add_argument('config')
    p.add_argument('checkpoint', nargs='?', default=None)
    p.add_argument('--attributes', nargs='+', default=None,
                   choices=['stride', 'dilation', 'kernel_size'],
                   help="default: the config's oracle.attributes, else "
                   'stride')
    p.add_argument('--layers', default=None, help='default: ABCD')
    p.add_argument('--arch', default=None,
                   choices=['resnet', 'mobilenet_v2', 'densenet'])
    p.add_argument('--options', nargs='+', default=[],
                   metavar='ATTR=V1,V2', help='allowed values per attribute; '
                   'an anisotropic stride as HxW, e.g. stride=1,1x2,2x1,2')
    p.add_argument('--shortcut', default=None,
                   choices=['avgpool', 'subsample'],
                   help='how a ResNet shortcut follows a changed stride '
                   '(default: avgpool, the first author\'s)')
    p.add_argument('--budget', type=int, default=625)
    p.add_argument('--ranked', nargs='+', default=[], metavar='ATTR=DIR',
                   help='single-attribute work dirs to combine (Eq. 2)')
    p.add_argument('--efficiency', choices=['static', 'best'], default=None,
                   help='cheapest permutation with the same prediction as '
                   'the static or the best-case model (Sec. 4.6)')
    p.add_argument('--input-size', type=int, nargs=2, default=None,
                   metavar=('H', 'W'), help='input size for MACs counts')
    p.add_argument('--max-samples', type=int, default=None)
    p.add_argument('--batch-size', type=int, default=None)
    p.add_argument('--work-dir', default=None)
    p.add_argument('--device', default='cpu',
                   help="e.g. 'cuda' on a GPU machine")
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmengine.runner import Runner
    cfg, model = build_model_from_cfg(args.config, args.checkpoint,
                                      args.cfg_options)
    model.to(args.device)
    preset = dict(cfg.get('oracle') or {})
    unknown = set(preset) - {'attributes', 'options', 'efficiency', 'layers',
                             'shortcut'}
    if unknown:
        raise ValueError(f"the config's oracle dict has unknown keys "
                         f'{sorted(unknown)}')
    attributes = tuple(args.attributes or preset.get('attributes')
                       or ('stride', ))
    args.efficiency = args.efficiency or preset.get('efficiency')
    options = {k: tuple(v) for k, v in (preset.get('options') or {}).items()}
    for item in args.options:
        key, _, values = item.partition('=')
        options[key] = tuple(parse_option_text(v) for v in values.split(','))
    dyn = convert_to_dynamic(getattr(model, 'backbone', model), args.arch,
                             args.layers or preset.get('layers', 'ABCD'),
                             options, args.shortcut
                             or preset.get('shortcut', 'avgpool'))
    default = dyn.default(attributes)
    if args.ranked:
        ranked = dict(item.split('=', 1) for item in args.ranked)
        if sorted(ranked) != sorted(attributes):
            raise ValueError(f'--ranked must name every attribute of '
                             f'--attributes {attributes}, got '
                             f'{sorted(ranked)}')
        lists = []
        for a in attributes:
            with open(osp.join(ranked[a], 'summary.json')) as f:
                lists.append([parse_permutation_key(k)
                              for k in json.load(f)['greedy']['order']])
        perms = combine_permutations(lists, args.budget)
    else:
        perms = dyn.permutations(attributes)
    if default not in perms:  # the static model is always evaluated
        perms.append(default)
    default_index = perms.index(default)

    name = osp.splitext(osp.basename(args.config))[0]
    work_dir = args.work_dir or osp.join('work_dirs', 'oracle', name,
                                         '+'.join(attributes))
    os.makedirs(work_dir, exist_ok=True)
    loader_cfg = cfg.test_dataloader.copy()
    if args.max_samples:
        loader_cfg.dataset.indices = args.max_samples
    if args.batch_size:
        loader_cfg.batch_size = args.batch_size
    loader = Runner.build_dataloader(loader_cfg)
    print(f'{len(perms)} permutations of {attributes} over layers '
          f'{dyn.names}, {len(loader.dataset)} samples -> {work_dir}')
    res = run_oracle(model, loader, perms, attributes,
                     osp.join(work_dir, 'results.npz'),
                     progress=not args.no_progress)

    classification = 'pred' in res
    summary = oracle_summary(res['q'], perms, default_index, dyn.names,
                             res.get('pred'), res.get('labels'))
    summary.update(config=args.config, checkpoint=args.checkpoint,
                   attributes=list(attributes),
                   default=permutation_key(default))
    if classification:
        correct = res['pred'] == res['labels'][:, None]
        greedy = greedy_accumulation(correct)
        alone = correct.mean(0) * 100
    else:
        greedy = None
        inter, union = res['intersect'], res['union']
        with np.errstate(invalid='ignore', divide='ignore'):
            alone = np.nanmean(inter / union, axis=1) * 100  # dataset mIoU
        summary['static_dataset_miou'] = float(alone[default_index])
    macs = None
    if args.efficiency or args.input_size:
        size = args.input_size
        if size is None:
            if not classification:
                raise ValueError('segmentation: pass --input-size for MACs')
            batch = model.data_preprocessor(next(iter(loader)), False)
            size = tuple(batch['inputs'].shape[-2:])
        x = torch.zeros(1, 3, *size, device=args.device)
        macs = []
        for p in perms:
            dyn.apply(p, attributes)
            macs.append(sum(count_macs(
                model, x, lambda t: model(t, mode='tensor')).values()))
        dyn.reset()
        macs = np.array(macs)
        summary['static_gmacs'] = float(macs[default_index] / 1e9)
    if args.efficiency:
        if not classification:
            raise ValueError('--efficiency needs class predictions '
                             '(a classification config)')
        rows = np.arange(len(res['labels']))
        target = (res['pred'][:, default_index] if args.efficiency ==
                  'static' else res['pred'][rows, res['q'].argmax(1)])
        eff = efficiency_search(res['pred'], macs, target)
        target_macs = (macs[default_index] if args.efficiency == 'static'
                       else macs[res['q'].argmax(1)].mean()) / 1e9
        summary['efficiency'] = dict(
            target=args.efficiency,
            accuracy=float((target == res['labels']).mean() * 100),
            target_gmacs=float(target_macs),
            mean_gmacs=eff['mean_gmacs'],
            reduction=float(target_macs / eff['mean_gmacs']))
    if greedy is not None:
        summary['greedy'] = dict(
            order=[permutation_key(perms[j]) for j in greedy['order']],
            accuracy=greedy['accuracy'])
        with open(osp.join(work_dir, 'greedy.csv'), 'w', newline='') as f:
            w = csv.writer(f)
            w.writerow(['k', 'permutation', 'best_case_top1'])
            for k, (j, a) in enumerate(zip(greedy['order'],
                                           greedy['accuracy'])):
                w.writerow([k + 1, permutation_key(perms[j]), f'{a:.3f}'])
    best = np.bincount(res['q'].argmax(1), minlength=len(perms))
    with open(osp.join(work_dir, 'permutations.csv'), 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['permutation', 'top1' if classification else 'miou',
                    'preferred_by', 'gmacs'])
        for j, p in enumerate(perms):
            w.writerow([permutation_key(p), f'{alone[j]:.3f}', int(best[j]),
                        '' if macs is None else f'{macs[j] / 1e9:.5f}'])
    save_json(summary, osp.join(work_dir, 'summary.json'))
    plot_oracle(osp.join(work_dir, 'oracle.png'), greedy, summary,
                f'{name}: dynamic {"+".join(attributes)}')

    metric = 'top-1' if classification else 'mean per-image mIoU'
    print(f'\n{metric} (%)  static {summary["static"]:.2f}  best '
          f'{summary["best"]:.2f}  median {summary["median"]:.2f}  worst '
          f'{summary["worst"]:.2f}  ({summary["num_samples"]} samples, '
          f'{len(perms)} permutations)')
    for layer, prefs in summary['preferences'].items():
        print(f'  preferred options in {layer}: ' + ', '.join(
            f'{k}: {v:.1f}%' for k, v in prefs.items()))
    if 'efficiency' in summary:
        e = summary['efficiency']
        print(f'efficiency: emulating the {e["target"]} model '
              f'({e["accuracy"]:.2f}% top-1, {e["target_gmacs"]:.4f} GMACs)'
              f' costs {e["mean_gmacs"]:.4f} GMACs per sample on average '
              f'({e["reduction"]:.2f}x less)')
    print(f'wrote {work_dir}/summary.json, greedy.csv, permutations.csv, '
          'oracle.png')
    return summary


if __name__ == '__main__':
    main()
