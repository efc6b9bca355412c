"""AlphaGradHook: the gradient factor against plain autograd."""
import pytest
import torch


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
        torch.testing.assert_close(
            grad(), plain * torch.tensor([1.5, 0.5])**2)

    def test_bad_space(self):
        from mmdynopool.engine.hooks import AlphaGradHook
        with pytest.raises(ValueError, match="space.*'logr'"):
            AlphaGradHook(space='logr')
