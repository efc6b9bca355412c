"""DynOPool2d forward+backward cost next to the layers it replaces.

Prints, measured side by side in one run, the time of DynOPool2d and of the
human resizing layers (``F.max_pool2d(2)``, a bilinear ``F.interpolate``) for
several shapes and scales, and the ratios. Not a test: no timing is asserted.

    python benchmarks/bench_dynopool.py [--threads 2] [--repeat 20]
"""
import argparse
import time

import torch
import torch.nn.functional as F

from mmdynopool.models import DynOPool2d

# (N, C, H, W, scale)
SHAPES = [
    (8, 64, 112, 112, 0.5),
    (8, 64, 112, 112, 0.37),
    (8, 64, 56, 56, 1.6),
    (16, 128, 28, 20, (0.7, 0.45)),
    (1, 256, 14, 14, 0.5),
]


def bench(fn, x, repeat):
    """Median seconds of forward + backward of ``fn(x).sum()``."""
    times = []
    for i in range(repeat + 2):
        x.grad = None
        t0 = time.perf_counter()
        fn(x).sum().backward()
        if i >= 2:  # two warm-up runs
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    print(f'torch {torch.__version__}, {args.threads} threads, fp32, '
          f'median of {args.repeat}, forward+backward')
    print(f'{"input (N,C,H,W)":<20}{"scale":<14}{"output":<10}'
          f'{"dynopool ms":>12}{"max_pool ms":>12}{"interp ms":>11}'
          f'{"/max_pool":>10}{"/interp":>9}')
    for n, c, h, w, scale in SHAPES:
        x = torch.randn(n, c, h, w, requires_grad=True)
        pool = DynOPool2d(init_scale=scale)
        size = pool.output_size((h, w))
        t_dyn = bench(pool, x, args.repeat)
        t_max = bench(lambda v: F.max_pool2d(v, 2), x, args.repeat)
        t_int = bench(
            lambda v: F.interpolate(
                v, size=size, mode='bilinear', align_corners=False), x,
            args.repeat)
        print(f'{str((n, c, h, w)):<20}{str(scale):<14}{str(size):<10}'
              f'{t_dyn * 1e3:12.2f}{t_max * 1e3:12.2f}{t_int * 1e3:11.2f}'
              f'{t_dyn / t_max:10.2f}{t_dyn / t_int:9.2f}')


if __name__ == '__main__':
    main()
