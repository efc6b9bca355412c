"""Draw learned network shapes side by side (the DynOPool paper's Fig. 4).

    python tools/analysis/show_shapes.py --shape H W --out shapes.png \
        CONFIG[:CHECKPOINT] [CONFIG[:CHECKPOINT] ...]

Each model becomes one row of rectangles, one per backbone stage, with
height and width to scale, labelled with its size and GMACs.
"""
import argparse

from mmdynopool.analysis import plot_learned_shapes


def main():
    parser = argparse.ArgumentParser(description='Plot network shapes')
    parser.add_argument(
        'models', nargs='+', help='CONFIG or CONFIG:CHECKPOINT')
    parser.add_argument(
        '--shape', type=int, nargs=2, required=True, metavar=('H', 'W'))
    parser.add_argument('--out', default='shapes.png')
    args = parser.parse_args()
    models = [(config, ckpt or None)
              for config, _, ckpt in (spec.partition(':')
                                      for spec in args.models)]
    print(plot_learned_shapes(models, args.shape, args.out))


if __name__ == '__main__':
    main()
