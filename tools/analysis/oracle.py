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
Sec. 4.6); the command line overrides them. The study is
``mmdynopool.analysis.run_oracle_study``.
"""
import argparse

from mmengine.config import DictAction

from mmdynopool.analysis import format_oracle_summary, run_oracle_study
from mmdynopool.models.dynamic import parse_option_text


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
    p.add_argument('--follow-at-trained-stride', action='store_true',
                   default=None,
                   help='the shortcut rule at a block\'s trained stride '
                   'too (the first author\'s code); default: the config\'s '
                   'oracle.follow_at_trained_stride, else the pretrained '
                   'strided 1x1 there')
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
    options = {}
    for item in args.options:
        key, _, values = item.partition('=')
        options[key] = tuple(parse_option_text(v) for v in values.split(','))
    ranked = dict(item.split('=', 1) for item in args.ranked)
    out = run_oracle_study(
        args.config, args.checkpoint, args.attributes, options, args.layers,
        args.arch, args.shortcut, args.budget, ranked, args.efficiency,
        args.input_size, args.max_samples, args.batch_size, args.work_dir,
        args.device, not args.no_progress, args.cfg_options,
        args.follow_at_trained_stride)
    print('\n' + format_oracle_summary(out['summary']))
    print('wrote ' + ', '.join(out['files']))
    return out['summary']


if __name__ == '__main__':
    main()
