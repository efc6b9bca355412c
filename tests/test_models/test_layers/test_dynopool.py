import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mmdynopool.models import DynOPool2d, dynopool2d

EPS = 1e-11  # a relative shift far above float64 rounding of coordinates


def reference_dynopool(x, alpha, mode='max', shift=(0.0, 0.0)):
    """DynOPool written straight from Eq. (1)-(4) of the paper.

    Four ``grid_sample`` calls, one per query point ``p +- delta``, then the
    aggregation. Sizes use the straight-through estimator of Eq. (3)-(4) with
    round-half-up and the 1.5 lower bound of Sec. 5.1. ``shift`` moves the
    query grid of each axis by a relative amount (the STE keeps it still
    otherwise): the size grows by ``shift`` without leaving its integer.
    """
    cont = torch.stack([x.shape[-2] / alpha[0], x.shape[-1] / alpha[1]])
    hard = torch.floor(torch.clamp(cont.detach(), min=1.5) + 0.5)
    shift = shift if isinstance(shift, torch.Tensor) else torch.tensor(
        shift, dtype=hard.dtype)
    moved = hard * (1 + shift)
    h_ste, w_ste = moved + (cont - cont.detach())
    h, w = int(hard[0]), int(hard[1])
    p_h = -1 + (2 * torch.arange(h, dtype=x.dtype) + 1) / h_ste  # cell centres
    p_w = -1 + (2 * torch.arange(w, dtype=x.dtype) + 1) / w_ste
    d_h, d_w = 0.25 * 2 / h_ste, 0.25 * 2 / w_ste  # Eq. (2)
    queries = []
    for sh in (-1, 1):
        for sw in (-1, 1):
            qy = (p_h + sh * d_h)[:, None].expand(h, w)
            qx = (p_w + sw * d_w)[None, :].expand(h, w)
            grid = torch.stack([qx, qy],
                               -1)[None].expand(x.shape[0], -1, -1, -1)
            queries.append(
                F.grid_sample(
                    x,
                    grid.to(x.dtype),
                    mode='bilinear',
                    padding_mode='border',
                    align_corners=False))
    q = torch.stack(queries)
    return q.max(0).values if mode == 'max' else q.mean(0)


def reference_alpha_grad(x, alpha, mode, g, shift):
    alpha = alpha.detach().clone().requires_grad_()
    reference_dynopool(x.detach(), alpha, mode, shift).backward(g)
    return alpha.grad


def one_sided_alpha_grads(x, alpha, mode, g, eps=EPS):
    """The reference's one-sided alpha gradients, per axis: ``(growing,
    shrinking)`` alpha. The query grid of one axis moves by ``-+eps`` (a
    smaller / larger size), so each query on a kink sees one side of it and
    the max picks, among tied candidates, the one that wins on that side:
    the one-sided partial derivatives of the aggregated output."""
    sides = []
    for sign in (-1, 1):
        sides.append(
            torch.stack([
                reference_alpha_grad(x, alpha, mode, g, (sign * eps, 0.0))[0],
                reference_alpha_grad(x, alpha, mode, g, (0.0, sign * eps))[1]
            ]))
    return sides


def central_alpha_grad(x, alpha, mode, g):
    """``'central'`` from the reference: the mean of both one-sided alpha
    gradients."""
    return sum(one_sided_alpha_grads(x, alpha, mode, g)) / 2


def one_sided_alpha_grad(x, alpha, mode, g):
    """``'one_sided'`` from the reference: the gradient as alpha grows."""
    return one_sided_alpha_grads(x, alpha, mode, g)[0]


def on_kink(x, alpha, mode, g):
    """Whether the two one-sided alpha gradients differ: some query sits
    exactly on a pixel centre (e.g. r = 0.5 on an even size), where bilinear
    sampling has no derivative w.r.t. position, or two candidates of a cell
    tie."""
    grow, shrink = one_sided_alpha_grads(x, alpha, mode, g, eps=1e-9)
    return not torch.allclose(grow, shrink, rtol=1e-5, atol=1e-6)


def naive_bilinear(img, y, x):
    """Bilinear value of ``img`` (H, W) at pixel coordinates, clamped to
    the border."""
    h, w = img.shape
    y = min(max(y, 0.0), h - 1.0)
    x = min(max(x, 0.0), w - 1.0)
    y0, x0 = int(math.floor(y)), int(math.floor(x))
    y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
    wy, wx = y - y0, x - x0
    return ((1 - wy) * (1 - wx) * img[y0, x0] + (1 - wy) * wx * img[y0, x1] +
            wy * (1 - wx) * img[y1, x0] + wy * wx * img[y1, x1])


def naive_dynopool(img, h_out, w_out):
    """Loops over cells and query points in pixel units (no torch)."""
    h, w = img.shape
    out = np.empty((h_out, w_out))
    for i in range(h_out):
        for j in range(w_out):
            vals = []
            for dy in (-0.25, 0.25):
                for dx in (-0.25, 0.25):
                    # Cell centre (i + 0.5) plus +-1/4 of a cell, mapped to
                    # input pixel units (pixel k's centre is at k).
                    y = (i + 0.5 + dy) * h / h_out - 0.5
                    x = (j + 0.5 + dx) * w / w_out - 0.5
                    vals.append(naive_bilinear(img, y, x))
            out[i, j] = max(vals)
    return out


# (H_in, W_in, init_scale, on_kink): down, up, non-integer and non-square
# scales. on_kink: r = 0.5 on an even size puts every query on a pixel centre
# ((2k + 1) H = 2 H_out (2m + 1) has solutions), where the alpha gradient is
# one-sided and set by rounding, so only the input gradient is compared there.
CASES = [
    (16, 16, 0.5, True),
    (224, 224, 0.5, True),
    (15, 9, (0.5, 0.5), False),
    (12, 20, (0.37, 0.81), False),
    (24, 18, (0.55, 0.47), False),
    (8, 6, (1.7, 2.3), False),
    (7, 11, (0.6, 1.4), False),
    (5, 5, 0.1, False),
]


class TestDynOPool2d:

    @pytest.mark.parametrize(
        'size,expected',
        [
            ((224, 224, 0.5), (112, 112)),
            ((7, 7, 0.1), (2, 2)),
            ((5, 5, 0.5), (3, 3)),  # 2.5 rounds half up, like 3x3/s2/p1 conv
            ((3, 3, 0.5), (2, 2)),  # 1.5 -> 2
            ((2, 2, 0.5), (2, 2)),  # 1.0 is lifted to the 1.5 floor -> 2
            ((1, 1, 0.5), (2, 2)),
            ((56, 56, 0.25), (14, 14)),
            ((32, 24, (0.6, 0.8)), (19, 19)),  # 19.2 -> 19, 19.2 -> 19
            ((10, 10, (1.26, 3.0)), (13, 30)),  # 12.6 -> 13
            ((512, 1024, 0.5), (256, 512)),
        ])
    def test_output_size_table(self, size, expected):
        h, w, scale = size
        pool = DynOPool2d(init_scale=scale)
        assert pool.output_size((h, w)) == expected
        out = pool(torch.rand(1, 2, h, w))
        assert tuple(out.shape[-2:]) == expected

    def test_continuous_size_is_straight_through(self):
        pool = DynOPool2d(init_scale=(0.3, 0.7))
        size = pool.continuous_output_size((10, 10))
        assert size.tolist() == [3.0, 7.0]
        size.sum().backward()
        # d(H_in / alpha) / d alpha = -H_in / alpha^2
        expected = [-10 / (1 / 0.3)**2, -10 / (1 / 0.7)**2]
        torch.testing.assert_close(pool.alpha.grad, torch.tensor(expected))

    def test_alpha_init_and_scale(self):
        pool = DynOPool2d(init_scale=(0.25, 0.8))
        torch.testing.assert_close(pool.alpha.data, torch.tensor([4.0, 1.25]))
        assert pool.scale == pytest.approx((0.25, 0.8))
        assert 'scale=(0.25, 0.8)' in repr(pool)

    @pytest.mark.parametrize('mode', ['max', 'avg'])
    @pytest.mark.parametrize('case', CASES)
    def test_matches_reference(self, case, mode, device):
        h, w, scale, kink = case
        # float64, so that the two ways of writing the query coordinates
        # (cell centre +- delta vs. centres of the 2x grid) agree to ~1e-12;
        # in float32 they differ by an ulp, i.e. ~1e-5 px on a 224 map. The
        # reference runs on the CPU whatever the layer's device.
        torch.manual_seed(0)
        f64 = torch.float64
        pool = DynOPool2d(
            init_scale=scale, mode=mode, device=device, dtype=f64)
        x_ref = torch.randn(2, 3, h, w, dtype=f64, requires_grad=True)
        x = x_ref.detach().to(device).requires_grad_()
        alpha = pool.alpha.detach().cpu()
        alpha_ref = alpha.clone().requires_grad_()

        out = pool(x)
        ref = reference_dynopool(x_ref, alpha_ref, mode)
        torch.testing.assert_close(out.cpu(), ref, rtol=1e-10, atol=1e-10)

        g = torch.randn_like(ref)
        out.backward(g.to(device))
        ref.backward(g)
        torch.testing.assert_close(
            x.grad.cpu(), x_ref.grad, rtol=1e-10, atol=1e-10)
        assert torch.all(pool.alpha.grad != 0)
        assert on_kink(x_ref, alpha, mode, g) == kink
        # Off kinks the plain derivative; on them the mean of both sides.
        expected = central_alpha_grad(x_ref, alpha, mode, g) if kink else \
            alpha_ref.grad
        torch.testing.assert_close(
            pool.alpha.grad.cpu(), expected, rtol=1e-7, atol=1e-7)

    @pytest.mark.parametrize('case', CASES)
    def test_float32_matches_float64_reference(self, case, device):
        h, w, scale, _ = case
        torch.manual_seed(0)
        x = torch.randn(2, 3, h, w, dtype=torch.float64)
        pool = DynOPool2d(init_scale=scale, device=device)
        alpha = pool.alpha.detach().cpu().double()
        torch.testing.assert_close(
            pool(x.float().to(device)).cpu().double(),
            reference_dynopool(x, alpha),
            rtol=0,
            atol=2e-4)

    @pytest.mark.parametrize('mode', ['max', 'avg'])
    def test_autocast_half_matches_reference(self, mode, autocast_dtype):
        # CUDA only: half input under autocast against the float64 CPU
        # reference of the same (rounded) input, to a few half-precision
        # ulps; the alpha gradient stays float32 and finite.
        torch.manual_seed(0)
        x = torch.randn(2, 4, 20, 18, dtype=torch.float64)
        x = x.to(autocast_dtype).double()  # the representable input
        pool = DynOPool2d(init_scale=(0.45, 0.7), mode=mode, device='cuda')
        with torch.autocast('cuda', dtype=autocast_dtype):
            out = pool(x.cuda().to(autocast_dtype))
        assert out.dtype == autocast_dtype and out.shape[-2:] == (9, 13)
        eps = torch.finfo(autocast_dtype).eps
        ref = reference_dynopool(x, pool.alpha.detach().cpu().double(), mode)
        torch.testing.assert_close(
            out.cpu().double(), ref, rtol=4 * eps, atol=4 * eps)
        out.float().sum().backward()
        assert pool.alpha.grad.dtype == torch.float32
        assert torch.isfinite(pool.alpha.grad).all()

    @pytest.mark.parametrize('h,w,h_out,w_out', [(5, 7, 3, 2), (4, 4, 6, 9),
                                                 (6, 3, 6, 3), (8, 8, 4, 4)])
    def test_matches_naive_loops(self, h, w, h_out, w_out, device):
        img = np.random.RandomState(1).randn(h, w)
        alpha = torch.tensor([h / h_out, w / w_out],
                             dtype=torch.float64,
                             device=device)
        out = dynopool2d(torch.from_numpy(img)[None, None].to(device), alpha)
        np.testing.assert_allclose(
            out[0, 0].cpu().numpy(),
            naive_dynopool(img, h_out, w_out),
            atol=1e-12)

    def test_equals_resize_then_maxpool(self, layer_case):
        # The 4 query points are the centres of a 2H_out x 2W_out grid.
        x = torch.randn(2, 4, 30, 17)
        pool = layer_case.to(DynOPool2d(init_scale=(0.41, 0.67)))
        h, w = pool.output_size((30, 17))
        up = F.interpolate(
            layer_case.ref(x),
            size=(2 * h, 2 * w),
            mode='bilinear',
            align_corners=False)
        layer_case.assert_close(pool(layer_case.to(x)), F.max_pool2d(up, 2))

    def test_scale_half_on_even_input_is_2x2_sample_of_pixel_centres(
            self, layer_case):
        # At r = 0.5 on an even input the queries land on pixel centres, so
        # DynOPool is exactly the human 2x2 max-pool it replaces.
        x = torch.randn(2, 3, 16, 12)
        x_dev, x_ref = layer_case.to(x), layer_case.ref(x)
        layer_case.assert_close(
            layer_case.to(DynOPool2d())(x_dev), F.max_pool2d(x_ref, 2))
        layer_case.assert_close(
            layer_case.to(DynOPool2d(mode='avg'))(x_dev),
            F.avg_pool2d(x_ref, 2))

    @pytest.mark.parametrize('h,w,h_out,w_out', [(7, 9, 3, 4), (5, 4, 8, 7),
                                                 (6, 10, 4, 3)])
    @pytest.mark.parametrize('mode', ['max', 'avg'])
    def test_gradcheck(self, h, w, h_out, w_out, mode, device):
        torch.manual_seed(0)
        x = torch.randn(1, 2, h, w, dtype=torch.float64).to(device)
        x.requires_grad_()
        # The oracle itself: the reference's derivative w.r.t. the query
        # positions (a relative shift of each axis's grid; near, not at, the
        # integer size, so every query is off pixel centres) against finite
        # differences, on the CPU.
        alpha = torch.tensor([h / h_out, w / w_out], dtype=torch.float64)
        shift = torch.tensor([0.0031, -0.0047],
                             dtype=torch.float64,
                             requires_grad=True)
        assert torch.autograd.gradcheck(
            lambda x, s: reference_dynopool(x, alpha, mode, s),
            (x.detach().cpu().requires_grad_(), shift))
        # And the layer's input gradient.
        alpha = torch.tensor([h / (h_out + 0.2), w / (w_out - 0.3)],
                             dtype=torch.float64,
                             device=device)
        assert torch.autograd.gradcheck(lambda x: dynopool2d(x, alpha, mode),
                                        (x, ))

    @settings(max_examples=40, deadline=None)
    @given(
        h=st.integers(1, 40),
        w=st.integers(1, 40),
        r_h=st.floats(0.05, 3.0),
        r_w=st.floats(0.05, 3.0),
        mode=st.sampled_from(['max', 'avg']))
    def test_random_sizes_and_scales(self, h, w, r_h, r_w, mode):
        f64 = torch.float64
        pool = DynOPool2d(init_scale=(r_h, r_w), mode=mode, dtype=f64)
        x = torch.randn(1, 2, h, w, dtype=f64, requires_grad=True)
        alpha_ref = pool.alpha.detach().clone().requires_grad_()
        out = pool(x)
        # round(max(n / alpha, 1.5)), half up, of the parameter's exact
        # float value (alpha = 1 / r rounded: 5 / (1 / 0.9) is just under
        # 4.5, so the size is 4, not round(5 * 0.9) = 5).
        expected = tuple(
            max(
                math.floor(Fraction(d) / Fraction(float(a)) +
                           Fraction(1, 2)), 2)
            for d, a in zip((h, w),
                            pool.alpha.detach().tolist()))
        assert tuple(out.shape[-2:]) == expected
        ref = reference_dynopool(x.detach(), alpha_ref, mode)
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
        out.sum().backward()
        ref.sum().backward()
        assert torch.isfinite(pool.alpha.grad).all()
        g = torch.ones_like(out)
        if not on_kink(x, pool.alpha, mode, g):
            torch.testing.assert_close(
                pool.alpha.grad, alpha_ref.grad, rtol=1e-8, atol=1e-8)
        # Kinks and ties included: the mean of the two one-sided gradients.
        torch.testing.assert_close(
            pool.alpha.grad,
            central_alpha_grad(x, pool.alpha, mode, g),
            rtol=1e-7,
            atol=1e-7)

    def test_shared_instance_accumulates_both_calls(self, device):
        pool = DynOPool2d(init_scale=0.6, device=device)
        # Seeded: the reference's one-sided derivative equals the layer's
        # central one only where no winner sits on a pixel centre, so the
        # inputs must not depend on which tests ran before.
        g = torch.Generator().manual_seed(0)
        a = torch.randn(1, 2, 20, 20, generator=g)
        b = torch.randn(1, 2, 13, 31, generator=g)
        out_a, out_b = pool(a.to(device)), pool(b.to(device))
        assert out_a.shape[-2:] == (12, 12) and out_b.shape[-2:] == (8, 19)
        (out_a.sum() + out_b.square().sum()).backward()

        alpha = pool.alpha.detach().cpu().clone().requires_grad_()
        (reference_dynopool(a, alpha).sum() +
         reference_dynopool(b, alpha).square().sum()).backward()
        torch.testing.assert_close(
            pool.alpha.grad.cpu(), alpha.grad, rtol=1e-4, atol=1e-5)

    def test_fixed(self):
        pool = DynOPool2d(init_scale=0.7, fixed=True)
        assert pool.fixed and not pool.alpha.requires_grad
        assert list(pool.state_dict()) == ['alpha']
        x = torch.randn(1, 2, 10, 10, requires_grad=True)
        pool(x).sum().backward()
        assert pool.alpha.grad is None and x.grad is not None
        assert pool.output_size((10, 10)) == (7, 7)
        pool.fixed = False
        assert pool.alpha.requires_grad

    def test_state_dict_round_trip(self):
        pool = DynOPool2d()
        with torch.no_grad():
            pool.alpha.copy_(torch.tensor([2.7, 1.3]))
        other = DynOPool2d()
        other.load_state_dict(pool.state_dict())
        assert other.output_size((27, 13)) == (10, 10)

    def test_reset_parameters(self):
        pool = DynOPool2d(init_scale=(0.3, 0.9))
        with torch.no_grad():
            pool.alpha.fill_(7.0)
        pool.reset_parameters()
        assert pool.scale == pytest.approx((0.3, 0.9))

    def test_dtype_device_and_half_input(self):
        pool = DynOPool2d(dtype=torch.float64)
        assert pool.alpha.dtype == torch.float64
        x = torch.randn(1, 2, 8, 8, dtype=torch.bfloat16)
        out = DynOPool2d(init_scale=0.7)(x)
        assert out.dtype == torch.bfloat16 and out.shape[-2:] == (6, 6)

    def test_channels_last_and_batch_one(self):
        x = torch.randn(1, 5, 11, 9).to(memory_format=torch.channels_last)
        pool = DynOPool2d(init_scale=(0.45, 0.55))
        torch.testing.assert_close(pool(x), pool(x.contiguous()))

    @pytest.mark.parametrize(
        'init_scale',
        [0, -0.5, float('nan'),
         float('inf'), (0.5, 0.0)])
    def test_bad_init_scale_value(self, init_scale):
        with pytest.raises(ValueError, match='init_scale'):
            DynOPool2d(init_scale=init_scale)

    @pytest.mark.parametrize('init_scale',
                             ['0.5', (0.5, 0.5, 0.5), True, None])
    def test_bad_init_scale_type(self, init_scale):
        with pytest.raises(TypeError, match='init_scale'):
            DynOPool2d(init_scale=init_scale)

    def test_bad_mode_and_rank(self):
        with pytest.raises(ValueError, match="mode must be 'max' or 'avg'"):
            DynOPool2d(mode='min')
        with pytest.raises(ValueError, match='4-D'):
            DynOPool2d()(torch.rand(3, 8, 8))
        # A trained alpha out of range is a divergence, told apart from bad
        # arguments (a ValueError subclass).
        from mmdynopool.models.layers.dynopool import AlphaDivergedError
        with pytest.raises(AlphaDivergedError, match='alpha'):
            dynopool2d(torch.rand(1, 1, 4, 4), torch.tensor([-1.0, 2.0]))
        with pytest.raises(AlphaDivergedError, match='MAX_SCALE'):
            dynopool2d(torch.rand(1, 1, 4, 4), torch.tensor([0.01, 2.0]))
        for bad in ('symmetric', None, ['central']):
            with pytest.raises(ValueError, match='position_grad.*central'):
                DynOPool2d(position_grad=bad)
            with pytest.raises(ValueError, match='position_grad'):
                dynopool2d(
                    torch.rand(1, 1, 4, 4),
                    torch.tensor([2.0, 2.0]),
                    position_grad=bad)

    def test_registry(self):
        from mmengine.registry import MODELS as ROOT
        from mmpretrain.registry import MODELS as PRETRAIN
        from mmseg.registry import MODELS as SEG
        for registry in (ROOT, SEG, PRETRAIN):
            pool = registry.build(dict(type='DynOPool2d', init_scale=0.25))
            assert isinstance(pool, DynOPool2d)
            assert pool.output_size((64, 64)) == (16, 16)


@pytest.fixture(params=['fused', 'generic'])
def implementation(request, monkeypatch, device):
    """Run a test with the fused CPU kernel and with the device-generic
    PyTorch backend, on every device (the kernel is the CPU's: CUDA runs the
    generic code)."""
    from mmdynopool.ops import kernel
    if request.param == 'fused' and device.type != 'cpu':
        pytest.skip('the fused kernel is CPU only')
    if request.param == 'fused':
        assert kernel.fused_kernel() is not None, 'kernel failed to build'
    else:
        monkeypatch.setitem(kernel._STATE, 'lib', None)
    return request.param


def relu_or_quantised(kind, *shape, dtype=torch.float64):
    """Inputs with ties: ``'relu'`` (zeros everywhere a ReLU cut), ``'quant'``
    (values on a 0.5 grid), ``'plain'`` (continuous)."""
    x = torch.randn(*shape, dtype=dtype)
    if kind == 'relu':
        return torch.relu(x)
    if kind == 'quant':
        return torch.round(2 * x) / 2
    return x


@pytest.mark.usefixtures('implementation')
class TestPaths:
    """Both backends of ``torch.ops.mmdynopool.dynopool_forward`` (the fused
    CPU kernel, the device-generic code) against the paper's grid_sample
    formulation, whose position derivative ``gradcheck`` checks above. Every
    test runs both implementations, on every device (``device``, through
    ``implementation``); the oracle runs on the CPU in float64."""

    @pytest.mark.parametrize('kind', ['plain', 'relu'])
    @pytest.mark.parametrize('mode', ['max', 'avg'])
    @pytest.mark.parametrize('h,w,h_out,w_out', [(7, 9, 3, 4), (5, 4, 8, 7),
                                                 (13, 10, 5, 9), (1, 3, 2, 2),
                                                 (30, 17, 11, 6),
                                                 (16, 12, 8, 6), (2, 2, 3, 3),
                                                 (9, 9, 14, 14)])
    def test_both_conventions_against_the_reference(self, h, w, h_out, w_out,
                                                    mode, kind, device):
        # Kinks and ties included: (13, 10) -> (5, 9) has a query on pixel
        # 2 of the width, (16, 12) -> (8, 6) all of them on pixel centres,
        # up-sampling clamps queries onto border pixels others sit on, and
        # after a ReLU zero candidates tie everywhere.
        torch.manual_seed(0)
        f64 = torch.float64
        x_ref = relu_or_quantised(kind, 2, 3, h, w).requires_grad_()
        a_ref = torch.tensor([h / (h_out + 0.2), w / (w_out - 0.3)], dtype=f64)
        x = x_ref.detach().to(device)
        g = torch.randn(2, 3, h_out, w_out, dtype=f64)
        ref = reference_dynopool(x_ref, a_ref, mode)
        gx_ref = torch.autograd.grad(ref, x_ref, g)[0]
        expected = dict(
            central=central_alpha_grad(x_ref, a_ref, mode, g),
            one_sided=one_sided_alpha_grad(x_ref, a_ref, mode, g))
        for conv, ga_ref in expected.items():
            xi = x.clone().requires_grad_()
            alpha = a_ref.to(device).requires_grad_()
            out = dynopool2d(xi, alpha, mode, position_grad=conv)
            gx, ga = torch.autograd.grad(out, (xi, alpha), g.to(device))
            torch.testing.assert_close(out.cpu(), ref, rtol=1e-12, atol=1e-12)
            if kind == 'plain' or mode == 'avg':
                # (Among tied candidates the input gradient goes to the
                # first; the reference's stack-max picks its own.)
                torch.testing.assert_close(
                    gx.cpu(), gx_ref, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(ga.cpu(), ga_ref, rtol=1e-9, atol=1e-9)

    @pytest.mark.parametrize('kind', ['plain', 'relu', 'quant'])
    @pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
    def test_same_numbers_as_the_other_path(self, kind, dtype, device,
                                            implementation):
        # The fused kernel and the generic code: bit-identical forward
        # values and winners (ties included), gradients to float rounding.
        from mmdynopool.ops import backward_generic, forward_generic
        torch.manual_seed(3)
        for h, w, scale in ((31, 24, (0.43, 0.61)), (16, 16, 0.5),
                            (7, 12, (1.7, 0.9)), (40, 3, (0.3, 1.6))):
            x = relu_or_quantised(kind, 2, 5, h, w, dtype=dtype).to(device)
            pool = DynOPool2d(scale, device=device)
            ho, wo = pool.output_size((h, w))
            out, code = torch.ops.mmdynopool.dynopool_forward(
                x, pool.alpha, ho, wo, 'max', 'central')
            ref, ref_code = forward_generic(x, ho, wo)
            assert torch.equal(out, ref) and torch.equal(code, ref_code)
            g = torch.randn(out.shape, dtype=dtype).to(device)
            for conv in ('central', 'one_sided'):
                gx, ga = torch.ops.mmdynopool.dynopool_backward(
                    g, x, pool.alpha, code, ho, wo, 'max', conv, True, True)
                gx2, ga2 = backward_generic(g, x, pool.alpha, code, ho, wo,
                                            'max', conv)
                tol = 1e-5 if dtype == torch.float32 else 1e-12
                torch.testing.assert_close(gx, gx2, rtol=tol, atol=tol)
                torch.testing.assert_close(ga, ga2, rtol=tol, atol=tol)

    def test_ties_at_the_border(self, device):
        # The case: x = [[0, 1]] up-sampled by 1.5 along the width.
        # Queries at pixel (k - 1) / 3: cell 0 has the clamped query -1/3
        # and the one on pixel 0, both 0 (a tie); as alpha grows the second
        # moves right onto the slope (d out / d alpha = 0.75 by hand:
        # slope 1 x dt/dn = -1/6 x dn/dalpha = -4.5), as it shrinks neither
        # moves off 0. Cell 2 (pixel 1 and its clamped partner, both 1):
        # 0 either way.
        x = torch.tensor([[[[0.0, 1.0]]]], device=device)
        for conv, cell0 in (('central', 0.375), ('one_sided', 0.75)):
            for cell, expected in ((0, cell0), (1, None), (2, 0.0)):
                pool = DynOPool2d((1.0, 1.5),
                                  position_grad=conv,
                                  device=device)
                out = pool(x)
                assert out.shape[-2:] == (2, 3)
                g = torch.zeros_like(out)
                g[..., 0, cell] = 1  # one cell (the 1-px height gives 2 rows)
                out.backward(g)
                if expected is not None:
                    assert pool.alpha.grad[1].item() == pytest.approx(
                        expected, abs=1e-6), (conv, cell)

    # (N, C, H, W, init_scale): every case has pixel-aligned queries.
    KINKS = [
        (2, 3, 32, 32, (0.49, 0.51)),  # near 0.5: same rounding bin
        (1, 2, 64, 48, 0.5),  # the human design on even sizes
        (2, 3, 16, 12, 0.5),
        (2, 3, 13, 10, (5 / 13, 0.9)),  # another ratio: width 10 -> 9
        (1, 2, 10, 10, 2.5),  # up-sampling: a query on the border pixel
        (2, 2, 4, 4, (1 / 3.0, 1 / 2.9)),  # under the 1.5 clamp: 1.33 -> 2
    ]

    @pytest.mark.parametrize('mode', ['max', 'avg'])
    @pytest.mark.parametrize('n,c,h,w,scale', KINKS)
    def test_central_is_mean_of_both_sides(self, n, c, h, w, scale, mode,
                                           device):
        torch.manual_seed(0)
        f64 = torch.float64
        pool = DynOPool2d(scale, mode=mode, device=device, dtype=f64)
        x = torch.randn(n, c, h, w, dtype=f64)
        out = pool(x.to(device))
        g = torch.randn(out.shape, dtype=f64)
        out.backward(g.to(device))
        alpha = pool.alpha.detach().cpu()
        assert on_kink(x, alpha, mode, g), 'not a kink: weak case'
        torch.testing.assert_close(
            pool.alpha.grad.cpu(),
            central_alpha_grad(x, alpha, mode, g),
            rtol=1e-7,
            atol=1e-7)

    def test_central_float32_matches_float64(self, device):
        # 2x3x32x32 at r = (0.49, 0.51), every query on a pixel centre: the
        # positions are found in integer arithmetic, so the float32 result
        # is the float64 one (on the CPU) up to float32 accumulation.
        torch.manual_seed(1)
        x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
        g = torch.randn(2, 3, 16, 16, dtype=torch.float64)
        grads = {}
        for dtype, where in ((torch.float32, device), (torch.float64, 'cpu')):
            pool = DynOPool2d((0.49, 0.51), device=where, dtype=dtype)
            pool(x.to(where, dtype)).backward(g.to(where, dtype))
            grads[dtype] = pool.alpha.grad.cpu().double()
        torch.testing.assert_close(
            grads[torch.float32], grads[torch.float64], rtol=1e-5, atol=1e-4)
        # And here the one-sided derivative even has the other sign.
        pool = DynOPool2d((0.49, 0.51),
                          position_grad='one_sided',
                          device=device,
                          dtype=torch.float64)
        pool(x.to(device)).backward(g.to(device))
        assert pool.alpha.grad[0].item() * grads[torch.float64][0] < 0

    @pytest.mark.parametrize('mode', ['max', 'avg'])
    def test_float32_gradients_agree_with_reference(self, mode, device):
        # fp32 path against the float64 CPU reference: 1e-5 relative.
        torch.manual_seed(1)
        x_cpu = torch.randn(4, 8, 56, 42)
        x = x_cpu.to(device).requires_grad_()
        pool = DynOPool2d(init_scale=(0.43, 0.61), mode=mode, device=device)
        out = pool(x)
        g = torch.randn(out.shape)
        out.backward(g.to(device))
        alpha = pool.alpha.detach().cpu().double().requires_grad_()
        x_ref = x_cpu.detach().double().requires_grad_()
        reference_dynopool(x_ref, alpha, mode).backward(g.double())
        torch.testing.assert_close(
            x.grad.cpu().double(), x_ref.grad, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            pool.alpha.grad.cpu().double(), alpha.grad, rtol=1e-5, atol=0)

    @pytest.mark.parametrize('half', [torch.bfloat16, torch.float16])
    def test_half_inputs_are_sampled_in_float32(self, half, device):
        # A half input is sampled and differentiated in float32: on values
        # the half type holds exactly, every number equals the float32
        # path's; on a float32 activation rounded to half, the alpha
        # gradient stays within 5 % (norm) of the float32 one.
        torch.manual_seed(0)
        for rounded in (True, False):
            for seed in range(4):
                torch.manual_seed(seed)
                x = torch.randn(2, 4, 20, 20, device=device)
                if seed % 2:
                    x = torch.relu(x)
                if rounded:
                    x = x.to(half).float()
                grads = {}
                for dt in (torch.float32, half):
                    pool = DynOPool2d(init_scale=0.45, device=device)
                    with torch.autocast(
                            device.type,
                            dtype=torch.bfloat16,
                            enabled=dt is torch.bfloat16):
                        out = pool(x.to(dt))
                    assert out.dtype == dt and out.shape[-2:] == (9, 9)
                    out.float().sum().backward()
                    assert pool.alpha.grad.dtype == torch.float32
                    grads[dt] = pool.alpha.grad
                err = (grads[half] - grads[torch.float32]).norm() / \
                    grads[torch.float32].norm()
                if rounded:
                    assert err < 1e-6
                else:
                    assert err < 0.05

    def test_deterministic_mode(self, device):
        torch.manual_seed(0)
        x = torch.relu(torch.randn(2, 3, 17, 13, device=device))
        runs = []
        torch.use_deterministic_algorithms(True)
        try:
            for _ in range(2):
                xi = x.clone().requires_grad_()
                pool = DynOPool2d((0.45, 0.7), device=device)
                pool(xi).square().sum().backward()
                runs.append((xi.grad, pool.alpha.grad))
        finally:
            torch.use_deterministic_algorithms(False)
        assert torch.equal(runs[0][0], runs[1][0])
        assert torch.equal(runs[0][1], runs[1][1])

    def test_double_backward_against_finite_differences(self, device):
        # A gradient penalty's weight gradient: d/dW ||d L / d x||^2 through
        # conv -> DynOPool, by autograd (create_graph) and by central
        # differences in float64.
        torch.manual_seed(0)
        f64 = torch.float64
        w0 = torch.randn(3, 2, 3, 3, dtype=f64, device=device)
        x = torch.randn(2, 2, 11, 13, dtype=f64, device=device)
        pool = DynOPool2d((0.62, 0.41), device=device, dtype=f64)

        def penalty(w):
            xi = x.clone().requires_grad_()
            out = pool(F.conv2d(xi, w, padding=1))
            g, = torch.autograd.grad(out.square().sum(), xi, create_graph=True)
            return g.square().sum()

        w = w0.clone().requires_grad_()
        grad, = torch.autograd.grad(penalty(w), w)
        fd = torch.zeros_like(w0).view(-1)
        for i in range(fd.numel()):
            d = torch.zeros_like(fd)
            d[i] = 1e-6
            fd[i] = (penalty(w0 + d.view_as(w0)) -
                     penalty(w0 - d.view_as(w0))) / 2e-6
        torch.testing.assert_close(grad, fd.view_as(w0), rtol=1e-6, atol=1e-6)
        alpha = torch.tensor([7 / 3.2, 9 / 4.3],
                             dtype=f64,
                             device=device,
                             requires_grad=True)
        xx = torch.randn(
            1, 2, 7, 9, dtype=f64, device=device, requires_grad=True)
        assert torch.autograd.gradgradcheck(lambda t, a: dynopool2d(t, a),
                                            (xx, alpha))

    def test_a_dispatch_mode_sees_the_op(self):
        # FlopCounterMode (the GMACs counter) watches the backward only:
        # the op dispatches the same way, with the same gradients.
        from torch.utils.flop_counter import FlopCounterMode
        torch.manual_seed(0)
        x = torch.randn(2, 3, 10, 9, requires_grad=True)
        pool = DynOPool2d((0.6, 0.45))
        y = pool(x)
        with FlopCounterMode(display=False):
            gx, ga = torch.autograd.grad(y.square().sum(), (x, pool.alpha))
        gx2, ga2 = torch.autograd.grad(pool(x).square().sum(), (x, pool.alpha))
        torch.testing.assert_close(gx, gx2)
        torch.testing.assert_close(ga, ga2)


class TestSizesAndModes:

    @pytest.mark.parametrize(
        'dtype,n_in,expected',
        [
            (torch.bfloat16, 1021, 511),  # 510.5 is not a bfloat16
            (torch.float16, 2049, 1025),  # nor is 1024.5 a float16
            (torch.float32, 7, 4),
        ])
    def test_sizes_are_exact_whatever_the_dtype(self, dtype, n_in, expected):
        pool = DynOPool2d(0.5, dtype=dtype)
        assert pool.output_size((n_in, 8)) == (expected, 4)
        if n_in < 1100:
            out = pool(torch.zeros(1, 1, n_in, 8))
            assert out.shape[-2:] == (expected, 4)
        size = pool.continuous_output_size((n_in, 8))
        assert size.tolist() == [expected, 4]

    @pytest.mark.parametrize('bad', [(8, ), 8, (8, 0), (8.0, 8), (True, 8)])
    def test_output_size_names_a_bad_input_size(self, bad):
        with pytest.raises(ValueError, match='input_size'):
            DynOPool2d().output_size(bad)

    def test_bad_alpha_values_are_named(self):
        from mmdynopool.models.layers.dynopool import AlphaDivergedError
        pool = DynOPool2d()
        for value in (float('nan'), 0.0):
            with torch.no_grad():
                pool.alpha.fill_(value)
            with pytest.raises(AlphaDivergedError, match='alpha'):
                pool(torch.rand(1, 1, 4, 4))
            with pytest.raises(AlphaDivergedError, match='alpha'):
                pool.output_size((4, 4))
            assert 'scale=' in repr(pool)  # no ZeroDivisionError

    def test_fixed_layer_follows_in_place_changes(self):
        pool = DynOPool2d(0.5, fixed=True)
        x = torch.rand(1, 1, 20, 20)
        assert pool(x).shape[-2:] == (10, 10)
        with torch.no_grad():
            pool.alpha.fill_(4.0)
        assert pool(x).shape[-2:] == (5, 5)
        other = DynOPool2d(0.5, fixed=True)
        other.load_state_dict(DynOPool2d(0.25).state_dict())
        assert other(x).shape[-2:] == (5, 5)
        assert other.to(torch.float64)(x.double()).shape[-2:] == (5, 5)

    def test_fixed_layer_reads_nothing(self, count_host_reads):
        pool = DynOPool2d((0.43, 0.6), fixed=True)
        x = torch.rand(1, 1, 20, 20, requires_grad=True)
        with count_host_reads() as reads:
            pool(x).sum().backward()
        assert reads == []

    @pytest.mark.parametrize('mode', ['max', 'avg'])
    def test_deploy_form_is_plain_aten_and_equal(self, mode):
        torch.manual_seed(0)
        pool = DynOPool2d((0.43, 0.71), mode=mode)
        x = torch.randn(2, 3, 31, 22)
        ref = pool(x)
        pool.switch_to_deploy()
        assert pool.deploy and pool.fixed
        assert list(pool.state_dict()) == ['alpha']
        torch.testing.assert_close(pool(x), ref, rtol=1e-5, atol=1e-5)
        with pytest.raises(RuntimeError, match='deployed'):
            pool.fixed = False
        from torch.utils._python_dispatch import TorchDispatchMode

        class Ops(TorchDispatchMode):

            def __init__(self):
                super().__init__()
                self.seen = set()

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                self.seen.add(func.namespace)
                return func(*args, **(kwargs or {}))

        with Ops() as ops:
            pool(x)
        assert ops.seen == {'aten'}

    def test_trace_of_a_learnable_layer_is_right_at_other_sizes(self):
        # jit.trace (and the legacy ONNX exporter, which traces) freezes
        # alpha's value, and the sizes follow the traced input size.
        torch.manual_seed(0)
        pool = DynOPool2d((0.43, 0.61))
        with pytest.warns(Warning):
            traced = torch.jit.trace(pool, torch.randn(1, 2, 20, 30))
        for shape in ((1, 2, 20, 30), (2, 2, 41, 16)):
            x = torch.randn(*shape)
            torch.testing.assert_close(
                traced(x), pool(x), rtol=1e-5, atol=1e-5)

    def test_legacy_onnx_export_of_a_learnable_layer_is_right(self, tmp_path):
        # The legacy (tracing) ONNX exporter once wrote a graph without
        # inputs and with garbage constants when the fused kernel was loaded
        # (off by 2e35 in onnxruntime). Now it traces the plain ATen form:
        # right in onnxruntime at the traced and at another input size.
        ort = pytest.importorskip('onnxruntime')
        torch.manual_seed(0)
        pool = DynOPool2d((0.43, 0.61))
        pool(torch.randn(1, 2, 20, 30))  # the fused kernel loads, if any
        path = str(tmp_path / 'pool.onnx')
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # the tracer's own warnings
            torch.onnx.export(
                pool, (torch.randn(1, 2, 20, 30), ),
                path,
                dynamo=False,
                input_names=['x'],
                dynamic_axes={'x': {
                    0: 'n',
                    2: 'h',
                    3: 'w'
                }})
        session = ort.InferenceSession(path)
        assert [i.name for i in session.get_inputs()] == ['x']
        for shape in ((1, 2, 20, 30), (2, 2, 41, 16)):
            x = torch.randn(*shape)
            got = torch.from_numpy(session.run(None, {'x': x.numpy()})[0])
            torch.testing.assert_close(
                got, pool(x).detach(), rtol=1e-5, atol=1e-5)


def test_host_reads_one_per_call_none_in_backward(count_host_reads):
    pool = DynOPool2d((0.6, 0.45))
    x = torch.randn(2, 3, 20, 20, requires_grad=True)
    with count_host_reads() as reads:
        y = pool(x)
        y = pool(y)
        assert reads == ['tolist', 'tolist']
        reads.clear()
        y.register_hook(lambda g: g)
        y.square().sum().backward()
        assert reads == []
        # The counter can fail: a read in backward is seen.
        z = pool(x)
        reads.clear()
        z.register_hook(lambda g: (g.sum().item(), g)[1])
        z.sum().backward()
        assert reads == ['item']
