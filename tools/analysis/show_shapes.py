"""Draw learned network shapes side by side (the DynOPool paper's Fig. 4).

    python tools/analysis/show_shapes.py --shape H W --out shapes.png \
        CONFIG[:CHECKPOINT] [CONFIG[:CHECKPOINT] ...]

Each model becomes one row of rectangles, one per backbone stage, with
height and width to scale, labelled with its size and GMACs.
"""
import argparse
import os.path as osp

from mmdynopool.analysis import complexity_report, plot_shapes
from mmdynopool.utils import build_model_from_cfg


def main():
    parser = argparse.ArgumentParser(description='Plot network shapes')
    parser.add_argument('models', nargs='+',
                        help='CONFIG or CONFIG:CHECKPOINT')
    parser.add_argument('--shape', type=int, nargs=2, required=True,
                        metavar=('H', 'W'))
    parser.add_argument('--out', default='shapes.png')
    args = parser.parse_args()
    sizes, labels, notes = [], [], []
    for spec in args.models:
        config, _, ckpt = spec.partition(':')
        _, model = build_model_from_cfg(config, ckpt or None)
        r = complexity_report(model, args.shape,
                              forward=lambda t, m=model: m(t, mode='tensor'))
        sizes.append(r['resolutions'])
        labels.append(osp.splitext(osp.basename(config))[0] +
                      (f' ({osp.basename(ckpt)})' if ckpt else ''))
        notes.append(f'{r["gmacs"]:.3f} GMACs')
    print(plot_shapes(sizes, labels, args.out, notes))


if __name__ == '__main__':
    main()
