"""ShapeLoggingHook (mmdynopool/engine/hooks/shape_hooks.py) in mmengine
runs: what it logs against the model's own scales and hand-counted sizes."""
import json
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, MODELS
from mmengine.testing import RunnerTestCase
from torch import nn
from torch.utils.data import Dataset

from mmdynopool.engine.hooks import ShapeLoggingHook
from mmdynopool.models import DynOPoolResNet_CIFAR
from .tiny import train_only

SIZE = 32
#: 32 * 0.6 = 19.2 -> 19, 19 * 0.55 = 10.45 -> 10, 10 * 0.5 = 5: no size
#: sits on a rounding boundary, so a small step of alpha keeps the count.
TRAIN_SCALES = (0.6, 0.55, 0.5)


class ShapeNet(BaseModel):
    """A CIFAR DynOPool ResNet-18 at 4-8-16-32 channels and a linear head,
    seeded: the same weights in every run."""

    def __init__(self, init_scales=TRAIN_SCALES, out_indices=(0, 1, 2, 3)):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.backbone = DynOPoolResNet_CIFAR(
                18,
                stem_channels=4,
                base_channels=4,
                init_scales=list(init_scales),
                out_indices=out_indices)
            self.head = nn.Linear(32, 2)

    def forward(self, inputs, labels=None, mode='tensor'):
        x = torch.stack(inputs) if isinstance(inputs, list) else inputs
        out = self.head(self.backbone(x)[-1].mean((2, 3)))
        if mode == 'loss':
            return dict(loss=F.cross_entropy(out, torch.as_tensor(labels)))
        return out


class ShapeImages(Dataset):
    """Eight fixed 3 x 32 x 32 images of two classes."""
    metainfo = dict()

    def __len__(self):
        return 8

    def __getitem__(self, index):
        g = torch.Generator().manual_seed(index)
        return dict(
            inputs=torch.randn(3, SIZE, SIZE, generator=g), labels=index % 2)


def hand_sizes(scales, size=SIZE):
    """Every pool's output (DynOPool, Eq. 3): round half up of
    ``H_in * r``, at least 1.5 before rounding, chained through the
    stages (the CIFAR stem and layer1 keep 32 x 32)."""
    h = w = size
    sizes = []
    for r_h, r_w in scales:
        h = math.floor(max(h * r_h, 1.5) + 0.5)
        w = math.floor(max(w * r_w, 1.5) + 0.5)
        sizes.append((h, w))
    return sizes


class Recorder(Hook):
    """After every iteration (after ShapeLoggingHook, priority LOW), reads
    the step and the scales straight from the model's pools."""
    priority = 'LOWEST'

    def __init__(self):
        self.steps, self.scales = [], []

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        self.steps.append(runner.iter + 1)
        self.scales.append([p.scale for p in runner.model.backbone.dynopools])


class TestShapeLoggingHook(RunnerTestCase):
    """The scalars of a short training run, on the runner's visualizer (a
    JSON file and TensorBoard) and in its log."""

    def setUp(self):
        super().setUp()
        MODELS.register_module(module=ShapeNet, force=True)
        DATASETS.register_module(module=ShapeImages, force=True)
        cfg = self.iter_based_cfg
        # init_weights re-draws the convs: seed 0 makes them the same.
        train_only(
            cfg, dict(type='ShapeNet'), dict(type='ShapeImages'), batch_size=2)
        cfg.train_cfg = dict(by_epoch=False, max_iters=4)
        cfg.default_hooks = dict(logger=dict(type='LoggerHook', interval=1))
        cfg.custom_hooks = [
            dict(type='ShapeLoggingHook', interval=2, input_size=(SIZE, SIZE))
        ]

    def tearDown(self):
        MODELS.module_dict.pop('ShapeNet', None)
        DATASETS.module_dict.pop('ShapeImages', None)
        super().tearDown()

    def test_logs_the_current_scales_and_sizes_at_its_interval(self):
        from tensorboard.backend.event_processing.event_accumulator import \
            EventAccumulator
        cfg = self.iter_based_cfg.copy()
        cfg.visualizer = dict(
            type='Visualizer',
            vis_backends=[
                dict(type='LocalVisBackend'),
                dict(type='TensorboardVisBackend')
            ])
        runner = self.build_runner(cfg)
        rec = Recorder()
        runner.register_hook(rec)
        with self.assertLogs(runner.logger, 'INFO') as logs:
            runner.train()
        # The model's scales when the hook logged them (iterations 2, 4).
        want = {}
        for step, scales in zip(rec.steps, rec.scales):
            if step % 2:
                continue
            row = {}
            for i, ((r_h, r_w),
                    (h, w)) in enumerate(zip(scales, hand_sizes(scales))):
                row.update({
                    f'scale/backbone.dynopools.{i}/h': r_h,
                    f'scale/backbone.dynopools.{i}/w': r_w,
                    f'size/backbone.dynopools.{i}/h': h,
                    f'size/backbone.dynopools.{i}/w': w
                })
            want[step] = row
        assert list(want) == [2, 4]
        # The scalars are the current ones: alpha moved during the run.
        assert rec.scales[1] != rec.scales[3]
        assert rec.scales[1][0] != pytest.approx((0.6, 0.6), abs=1e-6)
        assert hand_sizes(rec.scales[1]) != hand_sizes(rec.scales[3])

        # Local backend: one line per log, step = iteration + 1.
        with open(osp.join(runner.log_dir, 'vis_data', 'scalars.json')) as f:
            lines = [json.loads(line) for line in f]
        got = {
            d.pop('step'): d
            for d in lines if any(k.startswith('scale/') for k in d)
        }
        assert list(got) == [2, 4]
        for step in want:
            assert got[step].keys() == want[step].keys()
            for k, v in want[step].items():
                assert got[step][k] == pytest.approx(v, rel=1e-12), k
                if k.startswith('size/'):
                    assert isinstance(got[step][k], int), k

        # TensorBoard, read back with its own event reader.
        events = EventAccumulator(osp.join(runner.log_dir, 'vis_data'))
        events.Reload()
        tags = [
            t for t in events.Tags()['scalars']
            if t.startswith(('scale/', 'size/'))
        ]
        assert sorted(tags) == sorted(want[4])
        assert sum(t.startswith('scale/') for t in tags) == 2 * 3
        for tag in tags:
            assert [e.step for e in events.Scalars(tag)] == [2, 4]
            for e in events.Scalars(tag):
                assert e.value == pytest.approx(
                    want[e.step][tag], rel=1e-6), tag

        # The log line of every log, with the hand-counted sizes.
        lines = [
            r.getMessage() for r in logs.records
            if r.getMessage().startswith('shapes: ')
        ]
        assert len(lines) == 2
        for line, step in zip(lines, want):
            sizes = ' '.join(f'{want[step][f"size/backbone.dynopools.{i}/h"]}x'
                             f'{want[step][f"size/backbone.dynopools.{i}/w"]}'
                             for i in range(3))
            assert line.endswith(f'sizes={sizes}')
            assert line.startswith('shapes: backbone.dynopools.0=(')

    def test_hand_count_at_the_initial_scales(self):
        from tensorboard.backend.event_processing.event_accumulator import \
            EventAccumulator
        cfg = self.iter_based_cfg.copy()
        cfg.model = dict(type='ShapeNet', init_scales=(0.6, 0.5, 0.5))
        cfg.visualizer = dict(
            type='Visualizer',
            vis_backends=[dict(type='TensorboardVisBackend')])
        runner = self.build_runner(cfg)
        hook = next(h for h in runner.hooks if isinstance(h, ShapeLoggingHook))
        with self.assertLogs(runner.logger, 'INFO') as logs:
            scalars = hook.log_shapes(runner, step=10)
        assert scalars['scale/backbone.dynopools.0/h'] == pytest.approx(0.6)
        # One size per resizing layer (hand count: 32*0.6 = 19.2 -> 19, then
        # halves rounded up), not only the backbone's returned maps.
        assert (scalars['size/backbone.dynopools.0/h'],
                scalars['size/backbone.dynopools.0/w']) == (19, 19)
        assert scalars['size/backbone.dynopools.2/h'] == 5
        assert 'sizes=19x19 10x10 5x5' in logs.records[0].getMessage()
        runner.visualizer.close()
        events = EventAccumulator(osp.join(runner.log_dir, 'vis_data'))
        events.Reload()
        tags = events.Tags()['scalars']
        assert sorted(tags) == sorted(scalars)
        first = next(
            t for t in tags if t.startswith('size/') and t.endswith('/h'))
        assert events.Scalars(first)[0].value == 19
        assert events.Scalars(first)[0].step == 10
        assert sum(t.startswith('scale/') for t in tags) == 2 * 3
        # A classifier backbone returning only its last map logs every layer.
        runner.model.backbone = DynOPoolResNet_CIFAR(
            18, stem_channels=4, base_channels=4, init_scales=[0.6, 0.5, 0.5])
        with self.assertLogs(runner.logger, 'INFO'):
            scalars = hook.log_shapes(runner, step=10)
        runner.visualizer.close()  # it reopened TensorBoard's writer
        assert sum(k.startswith('size/') for k in scalars) == 6


@pytest.mark.parametrize('kwargs', [
    dict(interval=0),
    dict(interval=2.0),
    dict(interval=True),
    dict(input_size=(32, )),
    dict(input_size=32),
    dict(input_size=(0, 32)),
    dict(input_size=(32.0, 32))
])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ShapeLoggingHook(**kwargs)
