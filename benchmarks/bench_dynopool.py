"""DynOPool2d cost next to the layer it replaces, per path, and of the models.

Prints, measured side by side in one run (medians, forward + backward):

1. layer level: DynOPool through the fused CPU kernel and through the
   device-generic PyTorch backend (what CUDA runs), against ``F.max_pool2d``
   and the paper's grid_sample formulation (the reference), for several
   shapes and scales, down and up: milliseconds, and the peak memory the
   call allocates above its input (profiler, ``profile_memory``) as a
   multiple of the input's size;
2. model level: seconds per GMAC of DynOPool ResNet-50 and HRNet-W48 vs
   their human versions at the initial shape (GMACs by FlopCounterMode),
   and the bytes autograd saves for backward.

Not a test: nothing is asserted.

    python benchmarks/bench_dynopool.py [--threads 2] [--repeat 20] [--quick]
        [--part all|layers|models]
"""
import argparse
import contextlib
import os
import sys
import time

import torch
import torch.nn.functional as F
from mmpretrain.models.backbones import ResNet
from mmseg.models.backbones import HRNet

from mmdynopool.analysis import count_macs
from mmdynopool.models import DynOPoolHRNet, DynOPoolResNet
from mmdynopool.models.backbones.hrnet import hrnet_extra
from mmdynopool.models.layers.dynopool import dynopool2d
from mmdynopool.ops import kernel

# (N, C, H, W, scale); the first is the memory case (a 118 MB
# input), the second the speed target's shape.
SHAPES = [
    (8, 64, 240, 240, 0.5),
    (8, 64, 112, 112, 0.5),
    (8, 64, 112, 112, 0.37),
    (8, 64, 56, 56, 1.6),
    (16, 128, 28, 20, (0.7, 0.45)),
    (1, 256, 14, 14, 0.5),
]
W48 = hrnet_extra(48)


def reference(x, alpha, mode='max'):
    """The paper's formulation: four grid_sample calls on the 2x query grid
    (one call here: the queries are that grid's centres)."""
    h, w = (int(round(max(d / float(a), 1.5) + 1e-9))
            for d, a in zip(x.shape[-2:], alpha.detach()))
    size = torch.stack([x.shape[-2] / alpha[0], x.shape[-1] / alpha[1]])
    size = torch.tensor([h, w], dtype=size.dtype) + (size - size.detach())
    k_h = torch.arange(2 * h, dtype=x.dtype)
    k_w = torch.arange(2 * w, dtype=x.dtype)
    ys = -1 + (2 * k_h + 1) / (2 * size[0])
    xs = -1 + (2 * k_w + 1) / (2 * size[1])
    grid = torch.stack(torch.broadcast_tensors(xs[None, :], ys[:, None]), -1)
    samples = F.grid_sample(
        x,
        grid.expand(x.shape[0], -1, -1, -1),
        mode='bilinear',
        padding_mode='border',
        align_corners=False)
    return F.max_pool2d(samples, 2)


@contextlib.contextmanager
def path(name):
    """``'fused'`` or ``'generic'``: which backend the op's CPU kernel
    takes."""
    saved = kernel._STATE.get('lib')
    if name == 'generic':
        kernel._STATE['lib'] = None
    try:
        yield
    finally:
        kernel._STATE['lib'] = saved


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


def peak_bytes(fn, *inputs):
    """Peak bytes allocated by forward + backward of ``fn(*inputs).sum()``
    above what existed before (the inputs), from the profiler's memory
    events."""
    from torch.profiler import ProfilerActivity, profile
    for t in inputs:
        t.grad = None
    with open(os.devnull, 'w') as null, contextlib.redirect_stderr(null):
        with profile(
                activities=[ProfilerActivity.CPU],
                profile_memory=True) as prof:
            fn(*inputs).sum().backward()
    events = sorted((e for e in prof.profiler.kineto_results.events()
                     if e.name() == '[memory]'),
                    key=lambda e: e.start_ns())
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return peak


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
    print('\n1. Layer: forward + backward (input and alpha), fp32; ms, and '
          'peak memory above the input / the input size')
    print(f'{"input (N,C,H,W)":<20}{"scale":<13}'
          f'{"fused":>8}{"generic":>9}{"max_pool":>10}{"ref":>9}'
          f'{"fused/mp":>10}{"gen/mp":>8}'
          f'{"mem fused":>11}{"gen central":>13}{"gen 1-sided":>13}'
          f'{"max_pool":>10}')
    have_kernel = kernel.fused_kernel() is not None
    for n, c, h, w, scale in SHAPES:
        r = (scale, scale) if isinstance(scale, float) else scale
        alpha = torch.tensor([1 / r[0], 1 / r[1]], requires_grad=True)
        x = torch.randn(n, c, h, w, requires_grad=True)
        size = x.numel() * x.element_size()
        big = h >= 240
        reps = max(repeat // 5, 3) if big else repeat

        def pool(v, a, conv='central'):
            return dynopool2d(v, a, position_grad=conv)

        def mp(v, a):
            return F.max_pool2d(v, 2)

        times = {}
        with path('fused'):
            times['fused'] = bench(pool, (x, alpha), reps) \
                if have_kernel else float('nan')
            mem_fused = peak_bytes(pool, x, alpha) / size \
                if have_kernel else float('nan')
        with path('generic'):
            times['generic'] = bench(pool, (x, alpha), reps)
            mem_c = peak_bytes(pool, x, alpha) / size
            mem_o = peak_bytes(lambda v, a: pool(v, a, 'one_sided'), x,
                               alpha) / size
        times['max_pool'] = bench(mp, (x, alpha), reps)
        mem_mp = peak_bytes(mp, x, alpha) / size
        times['ref'] = float('nan') if big else bench(reference,
                                                      (x, alpha), reps)
        print(f'{str((n, c, h, w)):<20}{str(scale):<13}'
              f'{times["fused"] * 1e3:8.2f}{times["generic"] * 1e3:9.2f}'
              f'{times["max_pool"] * 1e3:10.2f}{times["ref"] * 1e3:9.2f}'
              f'{times["fused"] / times["max_pool"]:10.2f}'
              f'{times["generic"] / times["max_pool"]:8.2f}'
              f'{mem_fused:10.2f}x{mem_c:12.2f}x{mem_o:12.2f}x'
              f'{mem_mp:9.2f}x')


def models(repeat, quick):
    print('\n2. Models at the initial shape: forward + backward, fp32, '
          'batch 2')
    print(f'{"model":<28}{"GMACs":>8}{"s/iter":>9}{"s/GMAC":>9}'
          f'{"ratio":>8}{"saved MB":>10}')
    cases = [
        ('ResNet-50 224', ResNet, DynOPoolResNet, dict(depth=50), (224, 224)),
        ('HRNet-W48 256' if quick else 'HRNet-W48 512', HRNet, DynOPoolHRNet,
         dict(extra=W48), (256, 256) if quick else (512, 512))
    ]
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
    parser.add_argument(
        '--quick',
        action='store_true',
        help='HRNet-W48 at 256x256 instead of 512x512')
    parser.add_argument(
        '--part', choices=('all', 'layers', 'models'), default='all')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f'torch {torch.__version__}, {args.threads} threads, median of '
          f'{args.repeat}, fused kernel '
          f'{"loaded" if kernel.fused_kernel() else "unavailable"}, '
          f'python {sys.version.split()[0]}')
    if args.part in ('all', 'layers'):
        layers(args.repeat)
    if args.part in ('all', 'models'):
        models(args.repeat, args.quick)


if __name__ == '__main__':
    main()
