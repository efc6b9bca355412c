"""GMACsLossHook: its loss on the demo model, and on a model small enough to
count its MACs by hand (DynOPool paper, Eq. 7-8) in an mmengine run."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmengine.testing import RunnerTestCase

from mmdynopool.engine import (GMACsLossHook, gmacs_loss_hook,
                               set_gmacs_loss_weight)
from mmdynopool.models import DynOPool2d
from mmdynopool.utils import allow_mmengine_checkpoints
from .tiny import register, train_only, unregister


def alphas(model):
    return {
        n: p.detach().clone()
        for n, p in model.named_parameters() if n.endswith('alpha')
    }


class TestGMACsLossHook:

    @pytest.mark.parametrize('count', ['batch', 'image'])
    def test_loss_added_with_weight(self, demo_cfg, tmp_path, count):
        cfg = demo_cfg(tmp_path, gmacs=0.25)
        cfg.custom_hooks[0]['count'] = count
        cfg.train_dataloader.batch_size = 3
        runner = Runner.from_cfg(cfg)
        runner.call_hook('before_run')
        hook = next(h for h in runner.hooks if isinstance(h, GMACsLossHook))
        model = runner.model
        data = next(iter(runner.build_dataloader(cfg.train_dataloader)))
        data = model.data_preprocessor(data, True)
        assert len(data['inputs']) == 3
        losses = model(**data, mode='loss')
        # At init every size is the reference: lambda * total GMACs, of the
        # 3-image batch or of one image.
        images = 3 if count == 'batch' else 1
        assert float(losses['loss_gmacs']) == pytest.approx(
            0.25 * hook.counter.initial_gmacs * images, rel=1e-6)
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        for p in model.backbone.dynopools:
            assert (p.alpha.grad != 0).all()
        # No loss outside mode='loss'.
        assert isinstance(model(data['inputs'], mode='tensor'), torch.Tensor)
        runner.call_hook('after_run')
        assert 'loss_gmacs' not in model(**data, mode='loss')

    def test_zero_weight_costs_nothing(self, demo_cfg, tmp_path):
        cfg = demo_cfg(tmp_path, gmacs=0.0)
        runner = Runner.from_cfg(cfg)
        runner.call_hook('before_run')
        hook = next(h for h in runner.hooks if isinstance(h, GMACsLossHook))
        assert hook.counter is None
        assert not runner.model._forward_hooks
        assert all(not p._forward_pre_hooks
                   for p in runner.model.backbone.dynopools)

    @pytest.mark.parametrize('kwargs,match', [
        (dict(loss_weight=-1, input_size=(8, 8)), 'loss_weight'),
        (dict(loss_weight=float('inf'), input_size=(8, 8)), 'loss_weight'),
        (dict(loss_weight=float('nan'), input_size=(8, 8)), 'loss_weight'),
        (dict(loss_weight=1, input_size=(8, )), 'input_size'),
        (dict(loss_weight=1, input_size=32), 'input_size'),
        (dict(loss_weight=1, input_size=(32.5, 32)), 'input_size'),
        (dict(loss_weight=1, input_size=(0, 32)), 'input_size'),
        (dict(loss_weight=1, input_size=(8, 8), in_channels=0), 'in_channels'),
        (dict(loss_weight=1, input_size=(8, 8), count='mmacs'), 'count'),
        (dict(loss_weight=1, input_size=(8, 8),
              loss_name='gmacs'), 'loss_name'),
    ])
    def test_bad_arguments(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            GMACsLossHook(**kwargs)
        if match == 'loss_weight':
            with pytest.raises(TypeError, match='loss_weight'):
                GMACsLossHook(loss_weight='0.1', input_size=(8, 8))


def test_alpha_param_group(demo_cfg, tmp_path):
    cfg = demo_cfg(tmp_path)
    runner = Runner.from_cfg(cfg)
    optim = runner.build_optim_wrapper(cfg.optim_wrapper).optimizer
    alpha_ids = {
        id(m.alpha)
        for m in runner.model.modules() if isinstance(m, DynOPool2d)
    }
    assert len(alpha_ids) == 5
    for group in optim.param_groups:
        if any(id(p) in alpha_ids for p in group['params']):
            assert group['lr'] == pytest.approx(0.1 * 0.5)
            assert group['weight_decay'] == 0
        else:
            assert group['lr'] == pytest.approx(0.1)


@pytest.mark.slow
def test_resume_reproduces_the_run_exactly(demo_cfg, tmp_path):
    allow_mmengine_checkpoints()
    straight = Runner.from_cfg(demo_cfg(tmp_path / 'straight', iters=4))
    straight.train()
    log_straight = straight.message_hub.get_scalar('train/loss').data[0]

    first = Runner.from_cfg(demo_cfg(tmp_path / 'resumed', iters=4))
    first.train_loop._max_iters = 2  # stop after the iter-2 checkpoint
    first.train()
    cfg = demo_cfg(tmp_path / 'resumed', iters=4)
    cfg.resume = True
    resumed = Runner.from_cfg(cfg)
    resumed.train()
    assert resumed.iter == straight.iter == 4
    a, b = alphas(straight.model), alphas(resumed.model)
    assert a.keys() == b.keys() and len(a) == 5
    for k in a:
        assert torch.equal(a[k], b[k]), k
    for (k, v), w in zip(straight.model.state_dict().items(),
                         resumed.model.state_dict().values()):
        assert torch.equal(v, w), k
    losses_resumed = resumed.message_hub.get_scalar('train/loss').data[0]
    # The resumed hub holds iterations 1-4 too (restored from iteration 2).
    assert list(losses_resumed) == list(log_straight)
    sd = straight.optim_wrapper.optimizer.state_dict()['state']
    sr = resumed.optim_wrapper.optimizer.state_dict()['state']
    for k in sd:
        assert torch.equal(sd[k]['momentum_buffer'], sr[k]['momentum_buffer'])


# The hand-count model: conv (1 -> 2, 3x3, pad 1) on 8x8, DynOPool2d at
# r = 0.5, conv (2 -> 3, 3x3, pad 1). MACs of a conv: Cout Cin k k Hout Wout.
SIZE, BATCH, LAMBDA = 8, 3, 1e5
CONV1_MACS = 2 * 1 * 3 * 3 * SIZE * SIZE  # 1152, whatever alpha
CONV2_MACS_0 = 3 * 2 * 3 * 3 * 4 * 4  # 864 at the initial 4 x 4

HAND_NET = dict(type='ConvPoolConv', mid=2, out=3, init_scale=0.5)
HAND_IMAGES = dict(type='FixedImages', num=6, size=SIZE)


def hand_sizes(alpha):
    """DynOPool's output size (Eq. 3): round half up of 8 / alpha, >= 1.5."""
    return [math.floor(max(SIZE / float(a), 1.5) + 0.5) for a in alpha]


def hand_loss(alpha):
    """lambda * L_GMACs of Eq. (7)-(8) for the batch: the conv after the
    pool weighted by (H_t W_t) / (H_0 W_0), the first conv by 1."""
    h, w = hand_sizes(alpha)
    gmacs = (CONV1_MACS + h * w / (4 * 4) * CONV2_MACS_0) / 1e9
    return LAMBDA * BATCH * gmacs


class Recorder(Hook):
    """Moves alpha away from its initial value when a run starts afresh,
    records alpha before every iteration and the loss the hook added."""
    priority = 'LOWEST'

    def __init__(self, start_alpha=None):
        self.start_alpha = start_alpha
        self.alphas, self.losses = [], []

    def before_train(self, runner):
        if self.start_alpha is not None and runner.iter == 0:
            with torch.no_grad():
                runner.model.pool.alpha.copy_(torch.tensor(self.start_alpha))

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.alphas.append(runner.model.pool.alpha.detach().clone())

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        self.losses.append(float(outputs['loss_gmacs']))


class TestGMACsLossHookRunner(RunnerTestCase):
    """The hook in a short run, against a hand count, and across a resume."""

    #: 8 / 5.3 and 8 / 2.6: outputs of 5 x 3 (5.3 -> 5, 2.6 -> 3).
    START = (8 / 5.3, 8 / 2.6)

    def setUp(self):
        super().setUp()
        register()
        cfg = self.epoch_based_cfg
        train_only(cfg, HAND_NET, HAND_IMAGES, batch_size=BATCH)
        cfg.train_cfg = dict(by_epoch=True, max_epochs=2)  # 2 iters each
        cfg.custom_hooks = [
            dict(
                type='GMACsLossHook',
                loss_weight=LAMBDA,
                input_size=(SIZE, SIZE),
                in_channels=1)
        ]

    def tearDown(self):
        unregister()
        super().tearDown()

    def run_with(self, work_dir, resume=False, max_epochs=2):
        cfg = self.epoch_based_cfg.copy()
        cfg.work_dir = osp.join(self.temp_dir.name, work_dir)
        cfg.resume = resume
        runner = self.build_runner(cfg)
        recorder = Recorder(self.START)
        runner.register_hook(recorder)
        runner.train_loop._max_epochs = max_epochs
        runner.train()
        return runner, recorder

    def test_loss_is_the_hand_count(self):
        runner, rec = self.run_with('train')
        hook = next(h for h in runner.hooks if isinstance(h, GMACsLossHook))
        # Measured at before_run, at the initial r = 0.5: 1152 + 864 MACs.
        assert hook.counter.initial_gmacs == pytest.approx(2016e-9)
        assert len(rec.losses) == 4
        # Iteration 1 at the start alpha: 5 x 3 after the pool, so
        # 1e5 * 3 * (1152 + 15 / 16 * 864) * 1e-9 = 1e5 * 3 * 1962e-9.
        assert hand_sizes(rec.alphas[0]) == [5, 3]
        assert rec.losses[0] == pytest.approx(
            LAMBDA * BATCH * 1962e-9, rel=1e-6)
        for alpha, loss in zip(rec.alphas, rec.losses):
            assert loss == pytest.approx(hand_loss(alpha), rel=1e-6)
        # The loss pushed alpha up (smaller maps) during the run.
        assert (rec.alphas[-1] > rec.alphas[0]).all()

    def test_gradient_has_the_papers_sign(self):
        runner = self.build_runner(self.epoch_based_cfg.copy())
        runner.call_hook('before_run')
        model = runner.model
        with torch.no_grad():
            model.pool.alpha.copy_(torch.tensor(self.START))
        data = next(
            iter(
                runner.build_dataloader(
                    self.epoch_based_cfg.train_dataloader)))
        data = model.data_preprocessor(data, True)
        loss = model(**data, mode='loss')['loss_gmacs']
        assert float(loss.detach()) == pytest.approx(
            hand_loss(self.START), rel=1e-6)
        grad, = torch.autograd.grad(loss, model.pool.alpha)
        # Straight through: the value counts 5 x 3, the gradient follows
        # the continuous size 8 / alpha, d/d alpha = -8 / alpha^2, times
        # the other axis's integer size.
        a_h, a_w = self.START
        per_pixel = LAMBDA * BATCH * CONV2_MACS_0 / 16 / 1e9
        expected = [
            per_pixel * 3 * -SIZE / a_h**2, per_pixel * 5 * -SIZE / a_w**2
        ]
        torch.testing.assert_close(grad, torch.tensor(expected))
        # A larger scale (smaller alpha) costs more MACs: dL/d alpha < 0.
        assert (grad < 0).all()
        runner.call_hook('after_run')

    def test_resume_keeps_the_initial_gmacs_and_continues_exactly(self):
        allow_mmengine_checkpoints()
        straight, rec_straight = self.run_with('straight')
        self.run_with('resumed', max_epochs=1)  # stops at epoch_1.pth
        resumed, rec = self.run_with('resumed', resume=True)
        hooks = [
            next(h for h in r.hooks if isinstance(h, GMACsLossHook))
            for r in (straight, resumed)
        ]
        # The reference stays the config's initial scales (before_run runs
        # before the checkpoint is loaded), not the resumed alpha.
        assert hooks[1].counter.initial_gmacs == pytest.approx(2016e-9)
        for hook in hooks:  # keyed by the pool's id
            assert list(hook.counter.out0.values()) == [(4, 4)]
        assert len(rec.losses) == 2  # iterations 3 and 4
        for alpha, loss in zip(rec.alphas, rec.losses):
            assert loss == pytest.approx(hand_loss(alpha), rel=1e-6)
        assert rec.losses == rec_straight.losses[2:]
        for a, b in zip(rec.alphas, rec_straight.alphas[2:]):
            assert torch.equal(a, b)


class TestGMACsTargetRunner(RunnerTestCase):
    """``GMACsLossHook(target_gmacs=...)`` in a run: lambda adapts, the
    sizes settle at ``settle`` of the run, a resume continues exactly
    (before and after the settle), the gap is logged."""

    # 3 x 3 after the pool: the hand count of the target.
    TARGET = (CONV1_MACS + 9 / 16 * CONV2_MACS_0) / 1e9

    def setUp(self):
        super().setUp()
        register()
        cfg = self.epoch_based_cfg
        train_only(cfg, HAND_NET, HAND_IMAGES, batch_size=BATCH)
        cfg.train_cfg = dict(by_epoch=True, max_epochs=5)  # 10 iterations
        cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
        cfg.custom_hooks = [
            dict(
                type='GMACsLossHook',
                loss_weight=LAMBDA,
                input_size=(SIZE, SIZE),
                in_channels=1,
                target_gmacs=self.TARGET,
                settle=0.8)
        ]

    def tearDown(self):
        unregister()
        super().tearDown()

    def run_with(self, work_dir, resume=False, max_epochs=5):
        cfg = self.epoch_based_cfg.copy()
        cfg.work_dir = osp.join(self.temp_dir.name, work_dir)
        cfg.resume = resume
        runner = self.build_runner(cfg)
        runner.train_loop._max_epochs = max_epochs
        runner.train()
        hook = next(h for h in runner.hooks if isinstance(h, GMACsLossHook))
        return runner, hook

    def test_settles_on_the_target_and_logs_the_gap(self):
        from mmdynopool.engine.cost_target import exact_gmacs
        runner, hook = self.run_with('train')
        assert hook.target.settle_iter == 8
        assert hook.target.settled is not None
        pool = runner.model.pool
        assert pool.fixed
        final = exact_gmacs(runner.model, (SIZE, SIZE), 1,
                            lambda x: runner.model(x, mode='tensor'))
        assert final == pytest.approx(self.TARGET)  # 3 x 3 is reachable
        assert hand_sizes(pool.alpha.detach()) == [3, 3]
        gaps = runner.message_hub.get_scalar('train/gmacs_gap').data[0]
        assert len(gaps) == 10
        assert gaps[-1] == pytest.approx(0, abs=1e-6)
        lam = runner.message_hub.get_scalar('train/gmacs_lambda').data[0]
        # Above the target (4 x 4 at the start), lambda grows.
        assert lam[1] > lam[0] > 0

    def test_resume_continues_exactly(self):
        allow_mmengine_checkpoints()
        straight, hook = self.run_with('straight')
        for stop in (2, 4):  # before and after the settle (iteration 8)
            name = f'resumed{stop}'
            self.run_with(name, max_epochs=stop)
            resumed, hook2 = self.run_with(name, resume=True)
            assert torch.equal(resumed.model.pool.alpha,
                               straight.model.pool.alpha)
            assert resumed.model.pool.fixed
            assert float(hook2.target.m) == float(hook.target.m)
            assert hook2.target.settled == hook.target.settled
            for a, b in zip(straight.model.parameters(),
                            resumed.model.parameters()):
                assert torch.equal(a, b)

    def test_bad_target_arguments(self):
        for kwargs, name in ((dict(target_gmacs=0), 'target_gmacs'),
                             (dict(target_gmacs=True), 'target_gmacs'),
                             (dict(target_gmacs=1.0,
                                   loss_weight=0), 'loss_weight'),
                             (dict(target_gmacs=1.0, settle=0), 'settle'),
                             (dict(target_gmacs=1.0, gain=2),
                              'gain'), (dict(log_interval=0), 'log_interval')):
            args = dict(loss_weight=1.0, input_size=(8, 8))
            args.update(kwargs)
            with pytest.raises(ValueError, match=name):
                GMACsLossHook(**args)


# The config side of the hook: gmacs_loss_hook / set_gmacs_loss_weight.
TOY = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))),
    'configs', 'toy', 'vgg11-slim_{}_1xb64-20e_digits-{}.py')


def test_gmacs_loss_hook_is_the_one_hook():
    cfg = Config.fromfile(TOY.format('dynopool', 'tile'))
    hook = gmacs_loss_hook(cfg)
    assert hook['type'] == 'GMACsLossHook'
    assert tuple(hook['input_size']) == (64, 64)  # the tile variant's
    with pytest.raises(ValueError, match='exactly one GMACsLossHook.*found 0'):
        gmacs_loss_hook(Config.fromfile(TOY.format('human', 'tile')))
    cfg.custom_hooks = [hook, dict(hook)]
    with pytest.raises(ValueError, match='exactly one GMACsLossHook.*found 2'):
        gmacs_loss_hook(cfg)


def test_set_gmacs_loss_weight():
    cfg = Config.fromfile(TOY.format('dynopool', 'tile'))
    new = set_gmacs_loss_weight(cfg, 0.5)
    assert new.custom_hooks[0].loss_weight == 0.5
    # Not modified, and the toy rule: the paper's CIFAR-tile lambda x 242.6.
    assert cfg.custom_hooks[0].loss_weight == pytest.approx(
        7.21e-5 * 242.6, abs=1e-4)
    with pytest.raises(ValueError, match=r'lambda .* >= 0, got -1'):
        set_gmacs_loss_weight(cfg, -1)
    with pytest.raises(ValueError, match='exactly one GMACsLossHook.*found 0'):
        set_gmacs_loss_weight(Config.fromfile(TOY.format('human', 'tile')), 1)
