"""RandomOptionHook (ROF) in mmengine runs on the shipped digits."""
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.testing import RunnerTestCase

from mmdynopool.engine.hooks import RandomOptionHook
from mmdynopool.models.dynamic import DynamicLayers

ATTRIBUTES = ('stride', 'kernel_size')
#: Layers A-D of the CIFAR ResNet-18 as (stride, kernel_size): not the
#: trained ((1, 3), (2, 3), (2, 3), (2, 3)).
EVAL_PERMUTATION = ((2, 5), (1, 3), (1, 1), (2, 3))


class Recorder(Hook):
    """The dynamic layers' options before every train, val and test
    iteration, as ``(stride, kernel_size)`` per layer."""
    priority = 'LOW'  # after RandomOptionHook (NORMAL)

    def __init__(self):
        self.train, self.val, self.test = [], [], []

    def _options(self, runner):
        dyn = DynamicLayers.from_model(runner.model)
        return tuple((o[0], o[2])
                     for o in (dyn.modules[n][0].option for n in dyn.names))

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.train.append(self._options(runner))

    def before_val_iter(self, runner, batch_idx, data_batch=None):
        self.val.append(self._options(runner))

    def before_test_iter(self, runner, batch_idx, data_batch=None):
        self.test.append(self._options(runner))


def rof_cfg(work_dir, iters=4, val_interval=2, **hook):
    """A CIFAR ResNet-18 at 4-8-16-32 channels for the 10 digit classes,
    ``iters`` iterations of batch 4, validation every ``val_interval``
    (4 images) and a test loop, with the hook."""
    model = dict(
        type='ImageClassifier',
        data_preprocessor=dict(
            num_classes=10, mean=[33.3] * 3, std=[78.6] * 3),
        backbone=dict(
            type='ResNet_CIFAR', depth=18, stem_channels=4, base_channels=4),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=32))
    loader = dict(
        batch_size=4,
        num_workers=0,
        dataset=dict(
            type='ToyDigits',
            split='train',
            num_train=100,
            num_val=20,
            indices=24,
            pipeline=[dict(type='PackInputs')],
            serialize_data=False),  # its gc.collect() costs 0.3 s
        sampler=dict(type='DefaultSampler', shuffle=True))
    val_loader = dict(
        loader,
        dataset=dict(loader['dataset'], split='val', indices=4),
        sampler=dict(type='DefaultSampler', shuffle=False))
    return Config(
        dict(
            default_scope='mmpretrain',
            work_dir=str(work_dir),
            model=model,
            train_dataloader=loader,
            val_dataloader=val_loader,
            test_dataloader=val_loader,
            val_evaluator=dict(type='Accuracy'),
            test_evaluator=dict(type='Accuracy'),
            train_cfg=dict(
                by_epoch=False, max_iters=iters, val_interval=val_interval),
            val_cfg=dict(),
            test_cfg=dict(),
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
            default_hooks=dict(
                logger=dict(type='LoggerHook', interval=1), checkpoint=None),
            custom_hooks=[dict(type='RandomOptionHook', **hook)],
            log_level='WARNING'))


class TestRandomOptionHook(RunnerTestCase):
    """A permutation per training iteration from the documented generator;
    validation and test at the trained configuration or
    ``eval_permutation``."""

    def run_with(self, **hook):
        runner = self.build_runner(rof_cfg(self.temp_dir.name, **hook))
        recorder = Recorder()
        runner.register_hook(recorder)
        runner.train()
        runner.test()
        return runner, recorder

    def test_draws_a_permutation_per_iteration(self):
        runner, recorder = self.run_with(attributes=ATTRIBUTES, seed=3)
        # The hook converted the plain ResNet_CIFAR: layers A-D are dynamic.
        dyn = DynamicLayers.from_model(runner.model)
        assert dyn.names == ['A', 'B', 'C', 'D']
        space = dyn.permutations(ATTRIBUTES)
        # The same draws as the documented generator, layer by layer, also
        # after the validation at iteration 2.
        expected = [
            space[int(np.random.default_rng((3, i)).integers(len(space)))]
            for i in range(4)
        ]
        assert recorder.train == expected
        assert len(set(recorder.train)) > 1  # it changes between iterations
        default = dyn.default(ATTRIBUTES)
        assert default == ((1, 3), (2, 3), (2, 3), (2, 3))
        # Two validations (iterations 2 and 4) and a test, one batch each,
        # all at the trained configuration.
        assert recorder.val == [default] * 2
        assert recorder.test == [default]
        assert recorder._options(runner) == default

    def test_eval_permutation(self):
        runner, recorder = self.run_with(
            attributes=ATTRIBUTES,
            seed=0,
            eval_permutation=[list(p) for p in EVAL_PERMUTATION])
        dyn = DynamicLayers.from_model(runner.model)
        space = dyn.permutations(ATTRIBUTES)
        assert recorder.train == [
            space[int(np.random.default_rng((0, i)).integers(len(space)))]
            for i in range(4)
        ]
        assert recorder.val == [EVAL_PERMUTATION] * 2
        assert recorder.test == [EVAL_PERMUTATION]
        # ... and the model leaves testing at its trained configuration.
        assert recorder._options(runner) == dyn.default(ATTRIBUTES)


def test_rof_bad_attributes():
    with pytest.raises(ValueError, match='attributes must be distinct names'):
        RandomOptionHook(attributes=('padding', ))


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(seed=1.7), TypeError, r'seed must be an integer >= 0, got 1\.7'),
    (dict(seed='a'), TypeError, "seed must be an integer >= 0, got 'a'"),
    (dict(seed=True), TypeError, 'seed'),
    (dict(seed=-1), ValueError, 'seed must be an integer >= 0, got -1'),
    (dict(layers='AE'), ValueError, "layers must be letters from 'ABCD'"),
    (dict(arch='vgg'), ValueError, 'arch must be one of'),
    (dict(follow_at_trained_stride=1), TypeError, 'follow_at_trained_stride'),
])
def test_rof_arguments_are_checked_where_they_enter(kwargs, error, match):
    """``seed=1.7`` used to draw with seed 1 without a word."""
    with pytest.raises(error, match=match):
        RandomOptionHook(**kwargs)


def test_rof_passes_the_trained_stride_shortcut_on():
    from types import SimpleNamespace

    from mmpretrain.models.backbones import ResNet_CIFAR
    model = ResNet_CIFAR(18, stem_channels=4, base_channels=4)
    hook = RandomOptionHook(follow_at_trained_stride=True)
    hook.before_run(
        SimpleNamespace(model=model, logger=SimpleNamespace(info=print)))
    assert model.layer2[0].downsample[0].follow_at_trained_stride is True
