"""DynOPool2d cost next to the layers it replaces and its reference path.

Prints, measured side by side in one run (medians, forward + backward):

1. layer level: DynOPool2d (the fast path ``dynopool2d`` uses) vs
   ``F.max_pool2d(2)`` and vs the grid_sample formulation (the reference) for
   several shapes and scales, down and up;
2. model level: seconds per GMAC of DynOPool ResNet-50 and HRNet-W48 vs
   their human versions at the initial shape (GMACs by FlopCounterMode);
3. memory: bytes saved for backward (the activation memory autograd keeps),
   layer and model level.

Not a test: nothing is asserted.

    python benchmarks/bench_dynopool.py [--threads 2] [--repeat 20] [--quick]
"""
import argparse
import time

import torch
import torch.nn.functional as F
from mmpretrain.models.backbones import ResNet
from mmseg.models.backbones import HRNet

from mmdynopool.analysis import count_macs
from mmdynopool.models import DynOPoolHRNet, DynOPoolResNet
from mmdynopool.models.layers.dynopool import (_dynopool2d_sized, dynopool2d,
                                               dynopool_output_size)

# (N, C, H, W, scale); the first is the issue's target shape.
SHAPES = [
    (8, 64, 112, 112, 0.5),
    (8, 64, 112, 112, 0.37),
    (8, 64, 56, 56, 1.6),
    (16, 128, 28, 20, (0.7, 0.45)),
    (1, 256, 14, 14, 0.5),
]
W48 = dict(
    stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK',
                num_blocks=(4, ), num_channels=(64, )),
    stage2=dict(num_modules=1, num_branches=2, block='BASIC',
                num_blocks=(4, 4), num_channels=(48, 96)),
    stage3=dict(num_modules=4, num_branches=3, block='BASIC',
                num_blocks=(4, 4, 4), num_channels=(48, 96, 192)),
    stage4=dict(num_modules=3, num_branches=4, block='BASIC',
                num_blocks=(4, 4, 4, 4), num_channels=(48, 96, 192, 384)))


def reference(x, alpha, mode='max'):
    """The grid_sample formulation (one grid_sample on the 2x query grid)."""
    size = dynopool_output_size(x.shape[-2:], alpha)
    h, w = (int(v) for v in size.detach().tolist())
    return _dynopool2d_sized(x, size, (h, w), mode)


def bench(fn, inputs, repeat):
    """Median seconds of forward + backward of ``fn(*inputs).sum()``."""
    times = []
    for i in range(repeat + 2):
        for t in inputs:
            t.grad = None
        t0 = time.perf_counter()
        fn(*inputs).sum().backward()
        if i >= 2:  # two warm-up runs
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def bench_alternating(fns, inputs, repeat):
    """Median seconds of each of ``fns``, their repetitions interleaved
    (a, b, a, b, ...) so that both see the same machine state; measured
    one after the other, the second model of a pair ran up to 25 % slower
    here for reasons of allocator and cache state alone."""
    times = [[] for _ in fns]
    for i in range(repeat + 1):
        for k, fn in enumerate(fns):
            for t in inputs:
                t.grad = None
            t0 = time.perf_counter()
            fn(*inputs).sum().backward()
            if i >= 1:  # one warm-up round
                times[k].append(time.perf_counter() - t0)
    return [sorted(t)[len(t) // 2] for t in times]


def saved_bytes(fn, *inputs):
    """Bytes of the tensors autograd saves for backward in ``fn(*inputs)``."""
    total, seen = 0, set()

    def pack(t):
        nonlocal total
        key = (t.data_ptr(), t.dtype, tuple(t.shape))
        if key not in seen:
            seen.add(key)
            total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(*inputs)
    return total


def layers(repeat):
    print('\n1. Layer: forward + backward (input and alpha), fp32, ms')
    print(f'{"input (N,C,H,W)":<20}{"scale":<13}{"out":<10}{"fast":>8}'
          f'{"max_pool":>10}{"ref":>9}{"fast/max_pool":>15}{"ref/fast":>10}'
          f'{"saved MB fast/ref":>19}')
    for n, c, h, w, scale in SHAPES:
        r = (scale, scale) if isinstance(scale, float) else scale
        alpha = torch.tensor([1 / r[0], 1 / r[1]], requires_grad=True)
        x = torch.randn(n, c, h, w, requires_grad=True)
        out = tuple(int(v) for v in dynopool_output_size((h, w), alpha))
        t_fast = bench(dynopool2d, (x, alpha), repeat)
        t_max = bench(lambda v: F.max_pool2d(v, 2), (x, ), repeat)
        t_ref = bench(reference, (x, alpha), repeat)
        m_fast = saved_bytes(dynopool2d, x, alpha) / 2**20
        m_ref = saved_bytes(reference, x, alpha) / 2**20
        print(f'{str((n, c, h, w)):<20}{str(scale):<13}{str(out):<10}'
              f'{t_fast * 1e3:8.2f}{t_max * 1e3:10.2f}{t_ref * 1e3:9.2f}'
              f'{t_fast / t_max:15.2f}{t_ref / t_fast:10.2f}'
              f'{m_fast:10.1f}/{m_ref:<8.1f}')


def models(repeat, quick):
    print('\n2. Models at the initial shape: forward + backward, fp32, '
          'batch 2')
    print(f'{"model":<28}{"GMACs":>8}{"s/iter":>9}{"s/GMAC":>9}'
          f'{"ratio":>8}{"saved MB":>10}')
    cases = [('ResNet-50 224', ResNet, DynOPoolResNet, dict(depth=50),
              (224, 224)),
             ('HRNet-W48 256' if quick else 'HRNet-W48 512', HRNet,
              DynOPoolHRNet, dict(extra=W48),
              (256, 256) if quick else (512, 512))]
    for name, human_cls, dyno_cls, kwargs, size in cases:
        x = torch.randn(2, 3, *size)
        rows = []
        for tag, cls in (('human', human_cls), ('DynOPool', dyno_cls)):
            model = cls(**kwargs)
            model.train()  # mmpretrain's ResNet.train() returns None
            gmacs = sum(count_macs(model, x).values()) / 1e9

            def run(v, model=model):
                out = model(v)
                return sum(o.float().mean() for o in out)

            rows.append((tag, gmacs, run, saved_bytes(run, x) / 2**20))
        secs = bench_alternating([r[2] for r in rows], (x, ),
                                 max(repeat // 4, 3))
        base = secs[0] / rows[0][1]
        for (tag, gmacs, _, mem), sec in zip(rows, secs):
            per = sec / gmacs
            print(f'{name + " " + tag:<28}{gmacs:8.2f}{sec:9.3f}'
                  f'{per:9.4f}{per / base:8.2f}{mem:10.0f}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=20)
    parser.add_argument('--quick', action='store_true',
                        help='HRNet-W48 at 256x256 instead of 512x512')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f'torch {torch.__version__}, {args.threads} threads, median of '
          f'{args.repeat}')
    layers(args.repeat)
    models(args.repeat, args.quick)


if __name__ == '__main__':
    main()
