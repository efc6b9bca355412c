import pytest
import torch
from mmengine.runner import Runner

from mmdynopool.engine import GMACsLossHook
from mmdynopool.models import DynOPool2d
from mmdynopool.utils import allow_mmengine_checkpoints


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
        (dict(loss_weight=1, input_size=(8, 8), in_channels=0),
         'in_channels'),
        (dict(loss_weight=1, input_size=(8, 8), count='mmacs'), 'count'),
        (dict(loss_weight=1, input_size=(8, 8), loss_name='gmacs'),
         'loss_name'),
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
    straight = Runner.from_cfg(
        demo_cfg(tmp_path / 'straight', iters=4))
    straight.train()
    log_straight = straight.message_hub.get_scalar('train/loss').data[0]

    first = Runner.from_cfg(
        demo_cfg(tmp_path / 'resumed', iters=4))
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
        assert torch.equal(sd[k]['momentum_buffer'],
                           sr[k]['momentum_buffer'])


def test_shape_logging_hook_writes_to_logger_and_visualizer():
    from types import SimpleNamespace

    from mmdynopool.engine.hooks import ShapeLoggingHook
    from mmdynopool.models import DynOPoolResNet_CIFAR

    class Recorder:

        def __init__(self):
            self.calls, self.lines = [], []

        def add_scalars(self, scalars, step):
            self.calls.append((scalars, step))

        def info(self, line):
            self.lines.append(line)

    model = torch.nn.Module()
    model.backbone = DynOPoolResNet_CIFAR(18, init_scales=[0.6, 0.5, 0.5],
                                          out_indices=(0, 1, 2, 3))
    rec = Recorder()
    runner = SimpleNamespace(model=model, iter=9, visualizer=rec, logger=rec)
    hook = ShapeLoggingHook(interval=5, input_size=(32, 32))
    hook.after_train_iter(runner, 9)
    scalars, step = rec.calls[0]
    assert step == 10
    assert scalars['scale/backbone.layer2.0.dynopool/h'] == pytest.approx(0.6)
    # One size per resizing layer (hand count: 32*0.6 = 19.2 -> 19, then
    # halves rounded up), not only the backbone's returned maps.
    assert (scalars['size/layer2.0.dynopool/h'],
            scalars['size/layer2.0.dynopool/w']) == (19, 19)
    assert scalars['size/layer4.0.dynopool/h'] == 5
    assert 'sizes=19x19 10x10 5x5' in rec.lines[0]
    # A classifier backbone returning only its last map logs every layer.
    model.backbone = DynOPoolResNet_CIFAR(18, init_scales=[0.6, 0.5, 0.5])
    hook.after_train_iter(runner, 9)
    assert sum(k.startswith('size/') for k in rec.calls[-1][0]) == 6
    rec.calls, rec.lines = rec.calls[:1], rec.lines[:1]
    runner.iter = 10
    hook.after_train_iter(runner, 10)  # not a multiple of the interval
    assert len(rec.calls) == 1


def test_shape_logging_hook_to_tensorboard(tmp_path):
    """The shapes reach TensorBoard (the `tensorboard` extra), read back
    with TensorBoard's own event reader."""
    from types import SimpleNamespace

    from mmengine.visualization import Visualizer
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator

    from mmdynopool.engine.hooks import ShapeLoggingHook
    from mmdynopool.models import DynOPoolVGG

    model = torch.nn.Module()
    model.backbone = DynOPoolVGG(11, init_scales=0.6, out_indices=(4, ))
    vis = Visualizer(name='tb_test', save_dir=str(tmp_path),
                     vis_backends=[dict(type='TensorboardVisBackend')])
    runner = SimpleNamespace(model=model, iter=0, visualizer=vis,
                             logger=SimpleNamespace(info=lambda line: None))
    ShapeLoggingHook(interval=1, input_size=(32, 32)).after_train_iter(
        runner, 0)
    vis.close()
    events = EventAccumulator(str(tmp_path / 'vis_data'))
    events.Reload()
    tags = events.Tags()['scalars']
    # 32 * 0.6 = 19.2 -> 19 after the first pool (hand count).
    first = next(t for t in tags if t.startswith('size/') and t.endswith('/h'))
    assert events.Scalars(first)[0].value == 19
    assert sum(t.startswith('scale/') for t in tags) == 2 * 5


class TestAlphaGradHook:
    """The gradient reaching the optimizer is the plain one times
    ``(alpha / alpha_0) ** k``, so SGD steps ``log r`` (k=2) or ``r`` (k=4)
    at the initial step size."""

    @staticmethod
    def _model():
        from mmdynopool.models import DynOPoolVGG
        torch.manual_seed(0)
        model = torch.nn.Module()
        model.backbone = DynOPoolVGG(11, init_scales=[0.5, 0.6, 0.5, 0.5,
                                                      0.5], out_indices=(4, ))
        return model

    @staticmethod
    def _grads(model, x):
        for p in model.parameters():
            p.grad = None
        model.backbone(x)[-1].square().sum().backward()
        return [p.alpha.grad.clone() for p in model.backbone.dynopools]

    @pytest.mark.parametrize('space,k', [('alpha', 0), ('log', 2),
                                         ('scale', 4)])
    def test_gradient_factor(self, space, k):
        from types import SimpleNamespace

        from mmdynopool.engine.hooks import AlphaGradHook
        model = self._model()
        pools = model.backbone.dynopools
        with torch.no_grad():  # move away from the initial scales
            pools[0].alpha.copy_(torch.tensor([1.5, 2.5]))
            pools[1].alpha.copy_(torch.tensor([1 / 0.6, 3.0]))
        x = torch.rand(2, 3, 32, 32)
        plain = self._grads(model, x)
        hook = AlphaGradHook(space=space)
        hook.before_train(SimpleNamespace(model=model))
        got = self._grads(model, x)
        alpha0 = [torch.tensor([2.0, 2.0]), torch.tensor([1 / 0.6] * 2)]
        alpha0 += [torch.tensor([2.0, 2.0])] * 3
        for g, p, pool, a0 in zip(got, plain, pools, alpha0):
            factor = (pool.alpha.detach() / a0)**k
            torch.testing.assert_close(g, p * factor)
        # Pool 1's h axis sits at its initial scale: the paper's gradient.
        torch.testing.assert_close(got[1][0], plain[1][0])
        hook.after_train(SimpleNamespace(model=model))
        for g, p in zip(self._grads(model, x), plain):
            torch.testing.assert_close(g, p)

    def test_log_space_sgd_step(self):
        # One SGD step moves log r by lr * dL/d(log r) / alpha_0 ** 2,
        # whatever alpha is (first order): d(log r) = -d(alpha) / alpha.
        from types import SimpleNamespace

        from mmdynopool.engine.hooks import AlphaGradHook
        model = self._model()
        pool = model.backbone.dynopools[0]
        with torch.no_grad():
            pool.alpha.copy_(torch.tensor([0.8, 4.0]))
        x = torch.rand(2, 3, 32, 32)
        plain = self._grads(model, x)[0]
        dl_dlogr = -pool.alpha.detach() * plain  # dL/d log r = -alpha dL/da
        AlphaGradHook('log').before_train(SimpleNamespace(model=model))
        opt = torch.optim.SGD([pool.alpha], lr=1e-4)
        self._grads(model, x)
        before = pool.alpha.detach().clone()
        opt.step()
        dlogr = -(pool.alpha.detach().log() - before.log())
        torch.testing.assert_close(dlogr, -1e-4 * dl_dlogr / 4.0, rtol=1e-3,
                                   atol=0)

    def test_shared_alpha_scaled_once(self):
        # HRNet's stream pools are each used on several paths: one alpha,
        # one factor.
        from types import SimpleNamespace

        from mmdynopool.engine.hooks import AlphaGradHook
        from mmdynopool.models import DynOPoolHRNet
        extra = dict(
            stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK',
                        num_blocks=(1, ), num_channels=(8, )),
            stage2=dict(num_modules=1, num_branches=2, block='BASIC',
                        num_blocks=(1, 1), num_channels=(8, 16)),
            stage3=dict(num_modules=1, num_branches=3, block='BASIC',
                        num_blocks=(1, 1, 1), num_channels=(8, 16, 32)),
            stage4=dict(num_modules=1, num_branches=4, block='BASIC',
                        num_blocks=(1, 1, 1, 1),
                        num_channels=(8, 16, 32, 64)))
        torch.manual_seed(0)
        model = DynOPoolHRNet(extra=extra)
        pool = model.stream_pools[1]
        with torch.no_grad():
            pool.alpha.copy_(torch.tensor([3.0, 1.0]))
        x = torch.rand(1, 3, 64, 64)

        def grad():
            model.zero_grad()
            sum(o.square().sum() for o in model(x)).backward()
            return pool.alpha.grad.clone()

        plain = grad()
        AlphaGradHook('log').before_train(SimpleNamespace(model=model))
        torch.testing.assert_close(
            grad(), plain * torch.tensor([1.5, 0.5])**2)

    def test_bad_space(self):
        from mmdynopool.engine.hooks import AlphaGradHook
        with pytest.raises(ValueError, match="space.*'logr'"):
            AlphaGradHook(space='logr')
