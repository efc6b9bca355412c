"""GMACs, parameters and feature-map sizes of a model at its current shape.

    python tools/analysis/get_flops.py CONFIG [CHECKPOINT] --shape H W

With a checkpoint, the learned alpha (hence the learned shape) is used.
Prints the conv + linear GMACs of one image (FlopCounterMode), the cost of
the resizing layers themselves (the DynOPool paper's Table C; counting
convention in ``mmdynopool/analysis/complexity.py``), the parameters, and the
per-stage feature-map sizes (the paper's Table 1 column).
"""
import argparse

from mmdynopool.analysis import config_complexity, format_complexity_report


def main():
    parser = argparse.ArgumentParser(description='Get a model\'s GMACs')
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', default=None)
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        required=True,
        metavar=('H', 'W'),
        help='input size')
    args = parser.parse_args()
    if min(args.shape) < 1:
        parser.error(f'--shape must be two integers >= 1, got {args.shape}')
    report = config_complexity(args.config, args.shape, args.checkpoint)
    print(
        format_complexity_report(
            report, f'{args.config} at {args.shape[0]}x{args.shape[1]}'))


if __name__ == '__main__':
    main()
