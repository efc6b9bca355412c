import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmdynopool.models import (ShapeAdaptor, shape_adaptor_init_alpha,
                               shape_adaptor_num_modules)


def sigmoid(v):
    return 1 / (1 + math.exp(-v))


def chain(modules, x):
    for m in modules:
        x = m(x)
    return x


class TestShapeAdaptor:

    def test_forward_is_eq1_with_maxpool_and_identity(self):
        torch.manual_seed(0)
        sa = ShapeAdaptor(init_alpha=0.4)
        x = torch.randn(2, 3, 20, 14)
        a = sigmoid(0.4)
        s = 0.5 * a + 0.5  # s(a) = (r2 - r1) a + r1
        size = (round(20 * s), round(14 * s))
        expected = (1 - a) * F.interpolate(
            F.max_pool2d(x, 2), size, mode='bilinear',
            align_corners=True) + a * F.interpolate(
                x, size, mode='bilinear', align_corners=True)
        out = sa(x)
        assert out.shape[-2:] == size == sa.output_size((20, 14))
        torch.testing.assert_close(out, expected)

    def test_alpha_gradient_flows_through_mixing_weights_only(self):
        torch.manual_seed(0)
        sa = ShapeAdaptor(init_alpha=-0.3)
        sa.penalty = 0.9
        x = torch.randn(1, 2, 16, 16)
        out = sa(x)
        g = torch.randn_like(out)
        out.backward(g)
        size = out.shape[-2:]
        y1 = F.interpolate(F.max_pool2d(x, 2), size, mode='bilinear',
                           align_corners=True)
        y2 = F.interpolate(x, size, mode='bilinear', align_corners=True)
        a = sigmoid(-0.3)
        # d/d alpha of (1 - a_rho) y1 + a_rho y2, a_rho = a rho + const.
        expected = a * (1 - a) * 0.9 * (g * (y2 - y1)).sum()
        torch.testing.assert_close(sa.alpha.grad, expected)

    def test_residual_doubles_weights(self):
        torch.manual_seed(0)
        conv_s2 = nn.Conv2d(4, 4, 1, stride=2)
        body = nn.Conv2d(4, 4, 3, padding=1)
        sa = ShapeAdaptor(conv_s2, body, init_alpha=0.0, residual=True)
        x = torch.randn(1, 4, 16, 16)
        size = (12, 12)
        expected = (F.interpolate(conv_s2(x), size, mode='bilinear',
                                  align_corners=True) +
                    F.interpolate(body(x), size, mode='bilinear',
                                  align_corners=True))
        torch.testing.assert_close(sa(x), expected)

    def test_branches_from_config(self):
        sa = ShapeAdaptor(
            branch1=dict(type=nn.AvgPool2d, kernel_size=2),
            branch2=dict(type=nn.Identity))
        assert isinstance(sa.branch1, nn.AvgPool2d)
        sa_registry = ShapeAdaptor(branch1=dict(type='DynOPool2d'))
        assert type(sa_registry.branch1).__name__ == 'DynOPool2d'

    def test_branch_at_target_size_is_not_resized(self, monkeypatch):
        calls = []
        real = F.interpolate

        def spy(t, *args, **kwargs):
            calls.append(tuple(t.shape[-2:]))
            return real(t, *args, **kwargs)

        monkeypatch.setattr(F, 'interpolate', spy)
        x = torch.randn(1, 2, 32, 32)
        out = ShapeAdaptor(init_alpha=30.0)(x)  # s = 1: identity branch
        assert out.shape[-2:] == (32, 32) and calls == [(16, 16)]

    def test_limits_of_search_space(self):
        x = torch.randn(1, 1, 32, 32)
        assert ShapeAdaptor(init_alpha=-30.0)(x).shape[-2:] == (16, 16)
        assert ShapeAdaptor(init_alpha=30.0)(x).shape[-2:] == (32, 32)
        torch.testing.assert_close(ShapeAdaptor(init_alpha=30.0)(x), x)

    @pytest.mark.parametrize('d_in,d_last,expected', [(32, 2, 4), (224, 2, 7),
                                                      (32, 8, 2), (30, 2, 4)])
    def test_num_modules_eq3(self, d_in, d_last, expected):
        assert shape_adaptor_num_modules(d_in, d_last) == expected

    @pytest.mark.parametrize('d_in,d_out', [(32, 8), (224, 8), (64, 20)])
    def test_init_eq5_reaches_d_out(self, d_in, d_out):
        n = shape_adaptor_num_modules(d_in, 2)
        alpha = shape_adaptor_init_alpha(d_in, d_out, n)
        s = 0.5 + 0.5 * sigmoid(alpha)
        assert d_in * s**n == pytest.approx(d_out, rel=1e-3)
        # The integer sizes of a real chain round at every module.
        modules = [ShapeAdaptor(init_alpha=alpha) for _ in range(n)]
        out = chain(modules, torch.zeros(1, 1, d_in, d_in))
        assert abs(out.shape[-1] - d_out) <= 1

    def test_init_eq5_unreachable_small_gives_ln_eps(self):
        # 32 * 0.5 ** 2 = 8 > 4: the smallest shape is used.
        assert shape_adaptor_init_alpha(32, 4, 2) == pytest.approx(
            math.log(1e-4))
        with pytest.raises(ValueError, match='out of reach'):
            shape_adaptor_init_alpha(32, 64, 2)

    def test_penalty_eq6_to_eq8(self):
        d_in, n = 32, 4
        alpha = shape_adaptor_init_alpha(d_in, 16, n)
        modules = [ShapeAdaptor(init_alpha=alpha) for _ in range(n)]
        s = modules[0].scale
        d_cout, d_limit = d_in * s**n, 10.0
        rho = (d_limit / d_cout)**(1 / n)  # Eq. (8)
        for m in modules:
            m.penalty = rho
        assert modules[0].scale == pytest.approx(s * rho)  # Eq. (7)
        assert d_in * modules[0].scale**n == pytest.approx(d_limit)
        out = chain(modules, torch.zeros(1, 1, d_in, d_in))
        assert abs(out.shape[-1] - d_limit) <= 1

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match='r1'):
            ShapeAdaptor(r1=1.0, r2=0.5)
        with pytest.raises(ValueError, match='init_alpha'):
            ShapeAdaptor(init_alpha=float('nan'))
        with pytest.raises(ValueError, match='penalty'):
            ShapeAdaptor().penalty = 0.0
        with pytest.raises(TypeError, match='branch'):
            ShapeAdaptor(branch1='maxpool')
        with pytest.raises(ValueError, match='4-D'):
            ShapeAdaptor()(torch.rand(2, 8, 8))
        with pytest.raises(ValueError, match='d_last'):
            shape_adaptor_num_modules(8, 16)

    def test_registry(self):
        from mmseg.registry import MODELS
        sa = MODELS.build(dict(type='ShapeAdaptor', init_alpha=1.0))
        assert isinstance(sa, ShapeAdaptor)
        assert list(sa.state_dict()) == ['alpha']
