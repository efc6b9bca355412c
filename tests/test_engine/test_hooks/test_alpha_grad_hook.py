"""AlphaGradHook: the gradient factor against plain autograd, and one SGD
step of an mmengine run against a run without the hook."""
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.testing import RunnerTestCase

from mmdynopool.engine.hooks import AlphaGradHook
from .tiny import ConvPoolConv, FixedImages, register, train_only, unregister


class TestAlphaGradHook:
    """The gradient reaching the optimizer is the plain one times
    ``(alpha / alpha_0) ** k``, so SGD steps ``log r`` (k=2) or ``r`` (k=4)
    at the initial step size."""

    @staticmethod
    def _model():
        from mmdynopool.models import DynOPoolVGG
        torch.manual_seed(0)
        model = torch.nn.Module()
        model.backbone = DynOPoolVGG(
            11, init_scales=[0.5, 0.6, 0.5, 0.5, 0.5], out_indices=(4, ))
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
        torch.testing.assert_close(
            dlogr, -1e-4 * dl_dlogr / 4.0, rtol=1e-3, atol=0)

    def test_shared_alpha_scaled_once(self):
        # HRNet's stream pools are each used on several paths: one alpha,
        # one factor.
        from types import SimpleNamespace

        from mmdynopool.models import DynOPoolHRNet
        from mmdynopool.models.backbones.hrnet import hrnet_extra
        extra = hrnet_extra(
            8, blocks=1, modules=(1, 1, 1, 1), stage1_channels=8)
        torch.manual_seed(0)
        model = DynOPoolHRNet(extra=extra)
        pool = model.dynopools[2]  # stream 1
        with torch.no_grad():
            pool.alpha.copy_(torch.tensor([3.0, 1.0]))
        x = torch.rand(1, 3, 64, 64)

        def grad():
            model.zero_grad()
            sum(o.square().sum() for o in model(x)).backward()
            return pool.alpha.grad.clone()

        plain = grad()
        AlphaGradHook('log').before_train(SimpleNamespace(model=model))
        torch.testing.assert_close(grad(), plain * torch.tensor([1.5, 0.5])**2)

    def test_bad_space(self):
        with pytest.raises(ValueError, match="space.*'logr'"):
            AlphaGradHook(space='logr')


LR, SIZE = 0.1, 12
INIT_SCALE = (0.5, 0.6)
#: Away from the initial alpha (2, 1 / 0.6): a factor (alpha / alpha_0)^k
#: of (1.5^k, 0.75^k).
START = (3.0, 1.25)


def alpha_net():
    """conv -> DynOPool2d -> conv on 12 x 12 images, seeded: the same
    weights in every run."""
    return ConvPoolConv(mid=4, out=2, init_scale=INIT_SCALE, seed=0)


ALPHA_NET = dict(
    type='ConvPoolConv', mid=4, out=2, init_scale=INIT_SCALE, seed=0)
ALPHA_IMAGES = dict(type='FixedImages', num=4, size=SIZE)


class StartAt(Hook):
    """Moves alpha to :data:`START` before training."""

    def before_train(self, runner):
        with torch.no_grad():
            runner.model.pool.alpha.copy_(torch.tensor(START))


def plain_grad(model):
    """dL/d alpha of the first batch (images 0 and 1), plain autograd."""
    data = FixedImages(4, SIZE)
    x = torch.stack([data[0]['inputs'], data[1]['inputs']])
    loss = model(x, mode='loss')['loss']
    return torch.autograd.grad(loss, model.pool.alpha)[0]


class TestAlphaGradHookRunner(RunnerTestCase):
    """One iteration of plain SGD with the hook against the same seeded
    model without it, and the hook gone after training."""

    def setUp(self):
        super().setUp()
        register()
        cfg = self.iter_based_cfg
        train_only(cfg, ALPHA_NET, ALPHA_IMAGES, batch_size=2)
        cfg.train_cfg = dict(by_epoch=False, max_iters=1)
        cfg.optim_wrapper = dict(optimizer=dict(type='SGD', lr=LR))
        cfg.default_hooks = dict(checkpoint=None)

    def tearDown(self):
        unregister()
        super().tearDown()

    def train(self, space=None, iters=1):
        cfg = self.iter_based_cfg.copy()
        cfg.train_cfg.max_iters = iters
        if space is not None:
            cfg.custom_hooks = [dict(type='AlphaGradHook', space=space)]
        runner = self.build_runner(cfg)
        runner.register_hook(StartAt())
        runner.train()
        return runner

    def test_one_sgd_step_with_the_rescaled_gradient(self):
        plain = self.train().model
        start = torch.tensor(START)
        alpha0 = torch.tensor([1 / r for r in INIT_SCALE])
        # The run without the hook took plain SGD's step, -lr dL/d alpha.
        model = alpha_net()
        with torch.no_grad():
            model.pool.alpha.copy_(start)
        grad = plain_grad(model)
        assert (grad != 0).all()
        step = plain.pool.alpha.detach() - start
        torch.testing.assert_close(step, -LR * grad)
        for space, k in [('alpha', 0), ('log', 2), ('scale', 4)]:
            with self.subTest(space=space):
                runner = self.train(space)
                hooked = runner.model
                factor = (start / alpha0)**k
                torch.testing.assert_close(
                    hooked.pool.alpha.detach() - start,
                    step * factor,
                    rtol=1e-5,
                    atol=1e-7)
                if k:
                    assert not torch.allclose(factor, torch.ones(2))
                # Only alpha's gradient was rescaled: the weights took the
                # same step.
                for (name, p), q in zip(hooked.named_parameters(),
                                        plain.parameters()):
                    if name != 'pool.alpha':
                        assert torch.equal(p, q), name

    def test_the_hook_removes_itself_after_training(self):
        runner = self.train('log', iters=2)
        hook = next(h for h in runner.hooks if isinstance(h, AlphaGradHook))
        assert hook._handles == []
        # The trained model's gradient is plain again: the same as that of
        # a fresh copy of its weights, though alpha sits far from alpha_0
        # (where the factor would be (1.5^2, 0.75^2)).
        trained = runner.model
        assert not torch.allclose(
            trained.pool.alpha.detach(),
            torch.tensor([2.0, 1 / 0.6]),
            atol=0.1)
        copy = alpha_net()
        copy.load_state_dict(trained.state_dict())
        torch.testing.assert_close(plain_grad(trained), plain_grad(copy))
