import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmdynopool.models import (ShapeAdaptor, shape_adaptor,
                               shape_adaptor_init_alpha,
                               shape_adaptor_num_modules)


def sigmoid(v):
    return 1 / (1 + math.exp(-v))


def chain(modules, x):
    for m in modules:
        x = m(x)
    return x


class TestShapeAdaptor:

    @pytest.mark.parametrize('rounding', ['floor', 'round'])
    def test_forward_is_eq1_with_maxpool_and_identity(self, rounding,
                                                      layer_case):
        torch.manual_seed(0)
        sa = layer_case.to(ShapeAdaptor(init_alpha=0.4, rounding=rounding))
        a = sigmoid(0.4)
        s = 0.5 * a + 0.5  # s(a) = (r2 - r1) a + r1 = 0.7993
        # 21 x 15 -> 16.79 x 11.99: the authors' int(dim * s), or half up.
        x = layer_case.ref(torch.randn(2, 3, 21, 15))
        size = (16, 11) if rounding == 'floor' else (17, 12)
        expected = (1 - a) * F.interpolate(
            F.max_pool2d(x, 2), size, mode='bilinear',
            align_corners=True) + a * F.interpolate(
                x, size, mode='bilinear', align_corners=True)
        out = sa(layer_case.to(x))
        assert sa.scale == pytest.approx(s)
        assert out.shape[-2:] == size == sa.output_size((21, 15))
        layer_case.assert_close(out, expected)

    def test_alpha_gradient_flows_through_mixing_weights_only(
            self, layer_case):
        torch.manual_seed(0)
        sa = layer_case.to(ShapeAdaptor(init_alpha=-0.3))
        sa.penalty = 0.9
        x = layer_case.ref(torch.randn(1, 2, 16, 16))
        out = sa(layer_case.to(x))
        g = layer_case.ref(torch.randn(out.shape))
        out.backward(layer_case.to(g))
        size = out.shape[-2:]
        y1 = F.interpolate(
            F.max_pool2d(x, 2), size, mode='bilinear', align_corners=True)
        y2 = F.interpolate(x, size, mode='bilinear', align_corners=True)
        a = sigmoid(-0.3)
        # d/d alpha of (1 - a_rho) y1 + a_rho y2, a_rho = a rho + const.
        expected = a * (1 - a) * 0.9 * (g * (y2 - y1)).sum()
        layer_case.assert_close(sa.alpha.grad, expected)

    def test_residual_doubles_weights(self, layer_case):
        torch.manual_seed(0)
        conv_s2 = layer_case.ref(nn.Conv2d(4, 4, 1, stride=2))
        body = layer_case.ref(nn.Conv2d(4, 4, 3, padding=1))
        sa = ShapeAdaptor(
            layer_case.to(copy.deepcopy(conv_s2)),
            layer_case.to(copy.deepcopy(body)),
            init_alpha=0.0,
            residual=True,
            device=layer_case.device,
            dtype=layer_case.dtype)
        x = layer_case.ref(torch.randn(1, 4, 16, 16))
        size = (12, 12)
        expected = (
            F.interpolate(
                conv_s2(x), size, mode='bilinear', align_corners=True) +
            F.interpolate(body(x), size, mode='bilinear', align_corners=True))
        layer_case.assert_close(sa(layer_case.to(x)), expected)

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

    # The authors' int(log2(D / 2)) against the printed ceiling of Eq. (3).
    @pytest.mark.parametrize('d_in,d_last,floor,ceil', [(32, 2, 4, 4),
                                                        (224, 2, 6, 7),
                                                        (32, 8, 2, 2),
                                                        (30, 2, 3, 4),
                                                        (448, 2, 7, 8)])
    def test_num_modules_eq3(self, d_in, d_last, floor, ceil):
        assert shape_adaptor_num_modules(d_in, d_last) == floor
        assert shape_adaptor_num_modules(d_in, d_last, rounding='ceil') == ceil
        # Table 3's 0.58 at 224 px is (8 / 224) ** (1 / 6).
        if d_in == 224:
            alpha = shape_adaptor_init_alpha(224, 8, floor)
            assert 0.5 + 0.5 * sigmoid(alpha) == pytest.approx(0.574, abs=1e-3)

    @pytest.mark.parametrize('rounding,sizes', [('floor', [22, 15, 10, 7]),
                                                ('round', [23, 16, 11, 8])])
    def test_chain_sizes_hand_table(self, rounding, sizes):
        # VGG-16 on CIFAR: 4 adaptors from 32 px to 8, s = 0.25 ** (1 / 4)
        # = 0.7071; the authors' chain is 32 -> int(22.6) = 22 -> int(15.6)
        # -> int(10.6) -> int(7.07).
        alpha = shape_adaptor_init_alpha(32, 8, 4)
        x = torch.zeros(1, 1, 32, 32)
        got = []
        for _ in range(4):
            x = ShapeAdaptor(init_alpha=alpha, rounding=rounding)(x)
            got.append(x.shape[-1])
        assert got == sizes

    @pytest.mark.parametrize('d_in,d_out', [(32, 8), (224, 8), (64, 20)])
    def test_init_eq5_reaches_d_out(self, d_in, d_out):
        n = shape_adaptor_num_modules(d_in, 2)
        alpha = shape_adaptor_init_alpha(d_in, d_out, n)
        s = 0.5 + 0.5 * sigmoid(alpha)
        assert d_in * s**n == pytest.approx(d_out, rel=1e-3)
        # The integer sizes of a real chain floor at every module: each
        # loses less than one pixel against the continuous product.
        modules = [ShapeAdaptor(init_alpha=alpha) for _ in range(n)]
        out = chain(modules, torch.zeros(1, 1, d_in, d_in))
        assert d_out - n <= out.shape[-1] <= d_out

    def test_init_eq5_unreachable_small_gives_ln_eps(self):
        # 32 * 0.5 ** 2 = 8 > 4: the smallest shape is used.
        assert shape_adaptor_init_alpha(32, 4,
                                        2) == pytest.approx(math.log(1e-4))
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
        assert d_limit - n <= out.shape[-1] <= d_limit

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
        with pytest.raises(ValueError, match="rounding.*'nearest'"):
            ShapeAdaptor(rounding='nearest')
        with pytest.raises(ValueError, match="rounding.*'round'"):
            shape_adaptor_num_modules(32, 2, rounding='round')

    def test_registry(self):
        from mmseg.registry import MODELS
        sa = MODELS.build(dict(type='ShapeAdaptor', init_alpha=1.0))
        assert isinstance(sa, ShapeAdaptor)
        assert list(sa.state_dict()) == ['alpha']


def test_fixed_is_a_final_shape_not_a_frozen_alpha():
    sa = ShapeAdaptor(init_alpha=0.3)
    assert not sa.fixed and sa.alpha.requires_grad
    sa.fixed = True  # set later, as at construction
    assert sa.fixed and not sa.alpha.requires_grad
    frozen = ShapeAdaptor(init_alpha=0.3)
    frozen.alpha.requires_grad_(False)  # what frozen_stages does
    assert not frozen.fixed
    with pytest.raises(TypeError, match='fixed must be a bool'):
        sa.fixed = 1


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(penalty=5), ValueError, r'penalty.*\(0, 1\].*5'),
    (dict(penalty=1.5), ValueError, r'penalty.*\(0, 1\]'),
    (dict(penalty=0), ValueError, 'penalty'),
    (dict(penalty='a'), TypeError, r"penalty.*'a'"),
    (dict(penalty=None), TypeError, 'penalty'),
    (dict(penalty=True), TypeError, 'penalty'),
    (dict(residual='no'), TypeError, r"residual must be a bool.*'no'"),
    (dict(residual=1), TypeError, 'residual'),
    (dict(r1='a'), TypeError, r"r1.*'a'"),
    (dict(r2=None), TypeError, 'r2.*None'),
    (dict(r1=True), TypeError, 'r1'),
    (dict(init_alpha='x'), TypeError, r"init_alpha.*'x'"),
    (dict(init_alpha=None), TypeError, 'init_alpha.*None'),
    (dict(init_alpha=True), TypeError, 'init_alpha'),
])
def test_arguments_are_checked_by_name(kwargs, error, match):
    """rho <= 1 (Eq. 8 only ever shrinks); a penalty of 5 used to turn 16x16
    into 60x60, ``residual='no'`` doubled the output, and junk numbers ended
    in ``must be real number, not str``."""
    with pytest.raises(error, match=match):
        ShapeAdaptor(**kwargs)


def test_setters_are_checked_and_the_functional_residual_too():
    sa = ShapeAdaptor()
    with pytest.raises(ValueError, match='penalty'):
        sa.penalty = 2.0
    with pytest.raises(TypeError, match='residual'):
        sa.residual = 'yes'
    sa.residual = True  # what the ResNet cell sets after construction
    assert sa.residual is True
    x = torch.rand(1, 1, 8, 8)
    with pytest.raises(TypeError, match='residual'):
        shape_adaptor(x, x, torch.tensor(0.), (8, 8), residual='no')
    with pytest.raises(ValueError, match='penalty'):
        shape_adaptor(x, x, torch.tensor(0.), (8, 8), penalty=5)


def test_a_non_finite_alpha_is_named():
    """A NaN alpha used to end in ``cannot convert float NaN to integer``."""
    sa = ShapeAdaptor()
    with torch.no_grad():
        sa.alpha.fill_(float('nan'))
    with pytest.raises(ValueError, match='alpha.*nan.*finite'):
        sa(torch.rand(1, 1, 8, 8))


@pytest.mark.parametrize('args,error,match', [
    (('32', 2), TypeError, "d_in must be a real number, got '32'"),
    ((32, '2'), TypeError, 'd_last'),
    ((float('inf'), 2), ValueError, 'd_in'),
])
def test_num_modules_arguments_are_named(args, error, match):
    with pytest.raises(error, match=match):
        shape_adaptor_num_modules(*args)


@pytest.mark.parametrize('args,error,match', [
    ((32, 8, 2.5), TypeError, 'num_modules must be an integer >= 1, got 2.5'),
    ((32, 8, '4'), TypeError, 'num_modules'),
    (('32', 8, 4), TypeError, 'd_in'),
    ((32, None, 4), TypeError, 'd_out'),
])
def test_init_alpha_arguments_are_named(args, error, match):
    with pytest.raises(error, match=match):
        shape_adaptor_init_alpha(*args)


class TestShapeAdaptorPaths:
    """The treatment DynOPool's op gets, where it applies: one host read a
    call, no recompilation per learned size, a plain-ATen deployment form
    whose size follows the input size."""

    def test_one_host_read_per_call(self, count_host_reads):
        sa = ShapeAdaptor(init_alpha=0.3)
        x = torch.rand(2, 4, 30, 30, requires_grad=True)
        with count_host_reads() as reads:
            y = sa(x)
            assert len(reads) == 1
            reads.clear()
            y.sum().backward()
            assert reads == []

    def test_compile_without_recompiling_per_size(self):
        from torch._dynamo.testing import CompileCounterWithBackend
        torch._dynamo.reset()
        torch.manual_seed(0)
        net = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), ShapeAdaptor(), nn.Conv2d(4, 2, 1))
        counter = CompileCounterWithBackend('aot_eager')
        compiled = torch.compile(net, backend=counter)
        x = torch.rand(2, 3, 40, 40)
        frames = []
        for alpha in (-2.0, -1.0, 0.0, 0.5, 1.0, 2.0):
            with torch.no_grad():
                net[1].alpha.fill_(alpha)
            out = compiled(x)
            torch.testing.assert_close(out, net(x))
            frames.append(counter.frame_count)
        assert len({tuple(net(x).shape) for _ in (0, )}) == 1
        assert frames[-1] <= frames[0] + 2, frames

    @pytest.mark.parametrize('rounding', ['floor', 'round'])
    def test_deploy_form(self, rounding):
        torch.manual_seed(0)
        sa = ShapeAdaptor(init_alpha=0.7, rounding=rounding, penalty=0.9)
        sizes = ((30, 30), (17, 41))
        ref = {s: sa(torch.ones(1, 2, *s)) for s in sizes}
        sa.switch_to_deploy()
        assert sa.deploy and sa.fixed
        for s in sizes:
            torch.testing.assert_close(sa(torch.ones(1, 2, *s)), ref[s])
        with pytest.raises(RuntimeError, match='deployed'):
            sa.fixed = False
        h = torch.export.Dim('h', min=4, max=256)
        w = torch.export.Dim('w', min=4, max=256)
        x = torch.rand(1, 2, 30, 30)
        program = torch.export.export(
            sa, (x, ), dynamic_shapes={'x': {
                2: h,
                3: w
            }})
        for s in sizes:
            x = torch.rand(1, 2, *s)
            torch.testing.assert_close(program.module()(x), sa(x))

    def test_exact_sizes(self):
        # floor(D * s) in integer arithmetic: s = 0.75 on 4k + 1 pixels.
        from mmdynopool.models.layers.shape_adaptor import _scaled_size
        assert _scaled_size((17, 1), 0.75) == (12, 1)
        assert _scaled_size((17, 1), 0.75, 'round') == (13, 1)
        assert _scaled_size((1, 2), 0.1) == (1, 1)
