"""RandomOptionHook (ROF) in a real mmengine Runner on the shipped digits."""
import numpy as np
import pytest
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmdynopool.engine.hooks import RandomOptionHook
from mmdynopool.models.dynamic import DynamicLayers


class Recorder(Hook):
    priority = 'LOW'  # after RandomOptionHook (NORMAL)

    def __init__(self):
        self.train, self.val = [], []

    def _options(self, runner):
        dyn = DynamicLayers.from_model(runner.model)
        return tuple(dyn.modules[n][0].option for n in dyn.names)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.train.append(self._options(runner))

    def before_val_iter(self, runner, batch_idx, data_batch=None):
        self.val.append(self._options(runner))


def rof_cfg(work_dir, model, iters=6):
    loader = dict(
        batch_size=4, num_workers=0,
        dataset=dict(type='ToyDigits', split='train', num_train=100,
                     num_val=20, indices=24,
                     pipeline=[dict(type='PackInputs')]),
        sampler=dict(type='DefaultSampler', shuffle=True))
    val_loader = dict(loader, dataset=dict(loader['dataset'], split='val',
                                           indices=4),
                      sampler=dict(type='DefaultSampler', shuffle=False))
    return dict(
        default_scope='mmpretrain', work_dir=str(work_dir),
        model=model,
        train_dataloader=loader, val_dataloader=val_loader,
        val_evaluator=dict(type='Accuracy'),
        train_cfg=dict(by_epoch=False, max_iters=iters, val_interval=iters),
        val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1)),
        log_level='WARNING')


def test_rof_draws_a_permutation_per_iteration(tmp_path,
                                               tiny_classifier_cfg):
    recorder = Recorder()
    hook = RandomOptionHook(attributes=('stride', 'kernel_size'), seed=3)
    cfg = rof_cfg(tmp_path, tiny_classifier_cfg)
    runner = Runner.from_cfg(cfg)
    runner.register_hook(hook)
    runner.register_hook(recorder)
    runner.train()
    dyn = DynamicLayers.from_model(runner.model)
    space = dyn.permutations(('stride', 'kernel_size'))
    # The same draws as the documented generator, layer by layer.
    expected = [space[int(np.random.default_rng((3, i)).integers(
        len(space)))] for i in range(6)]
    got = [tuple((o[0], o[2]) for o in opts) for opts in recorder.train]
    assert got == expected
    assert len(set(got)) > 1  # the permutation changes between iterations
    default = tuple(dyn.modules[n][0].default for n in dyn.names)
    assert recorder.val and all(v == default for v in recorder.val)
    assert tuple(dyn.modules[n][0].option for n in dyn.names) == default


def test_rof_bad_attributes():
    with pytest.raises(ValueError, match='attributes must be distinct names'):
        RandomOptionHook(attributes=('padding', ))
