import os.path as osp

import pytest
from hypothesis import settings
from mmengine.config import Config

# Property tests draw the same examples on every run, so CI cannot flake on
# a rare draw; explore new ones locally with --hypothesis-profile=explore.
settings.register_profile('repro', derandomize=True, deadline=None)
settings.register_profile('explore', deadline=None, max_examples=200)
settings.load_profile('repro')

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CONFIG = osp.join(ROOT, 'configs', 'demo', 'hrnet_dynopool_digits.py')


@pytest.fixture(scope='session')
def digits_root(tmp_path_factory):
    """A small digit-mosaic data set, generated once per test session."""
    from mmdynopool.datasets import build_digits_voc
    root = str(tmp_path_factory.mktemp('data') / 'digits_voc')
    return build_digits_voc(root, num_train=24, num_val=4)


@pytest.fixture
def demo_cfg(digits_root):
    """``demo_cfg(work_dir, iters=4, gmacs=0.1)``: the demo config,
    shortened to a few iterations on the small data set."""

    def make(work_dir, iters=4, gmacs=0.1):
        return tiny_demo_config(digits_root, work_dir, iters, gmacs)

    return make


def tiny_demo_config(data_root, work_dir, iters=4, gmacs=0.1):
    cfg = Config.fromfile(DEMO_CONFIG)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = data_root
    cfg.train_dataloader.batch_size = 2
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.param_scheduler[0].end = iters
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 2
    cfg.custom_hooks = [
        dict(type='GMACsLossHook', loss_weight=gmacs,
             input_size=(96, 96)),
        dict(type='ShapeLoggingHook', interval=2, input_size=(96, 96)),
    ]
    cfg.log_level = 'WARNING'
    return cfg


@pytest.fixture
def tiny_classifier_cfg():
    """An mmpretrain classifier small enough for brute-force checks: a CIFAR
    ResNet-18 at 4-8-16-32 channels for the 10 digit classes (inputs as
    ``ToyDigits`` gives them)."""
    return dict(
        type='ImageClassifier',
        data_preprocessor=dict(num_classes=10, mean=[33.3] * 3,
                               std=[78.6] * 3),
        backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=4,
                      base_channels=4),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=32))


@pytest.fixture(autouse=True)
def isolated_default_scope():
    """Runners and configs set mmengine's global default scope; restore it
    after every test so registry look-ups do not depend on test order."""
    from mmengine.registry import DefaultScope
    saved = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)
