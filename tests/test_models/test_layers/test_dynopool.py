import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mmdynopool.models import DynOPool2d, dynopool2d
from mmdynopool.models.layers.dynopool import _dynopool2d_sized


def reference_dynopool(x, alpha, mode='max', shift=0.0):
    """DynOPool written straight from Eq. (1)-(4) of the paper.

    Four ``grid_sample`` calls, one per query point ``p +- delta``, then the
    aggregation. Sizes use the straight-through estimator of Eq. (3)-(4) with
    round-half-up and the 1.5 lower bound of Sec. 5.1. ``shift`` moves the
    query grid by a relative amount (the STE keeps it still otherwise).
    """
    cont = torch.stack([x.shape[-2] / alpha[0], x.shape[-1] / alpha[1]])
    hard = torch.floor(torch.clamp(cont.detach(), min=1.5) + 0.5)
    h_ste, w_ste = hard * (1 + shift) + (cont - cont.detach())
    h, w = int(hard[0]), int(hard[1])
    p_h = -1 + (2 * torch.arange(h, dtype=x.dtype) + 1) / h_ste  # cell centres
    p_w = -1 + (2 * torch.arange(w, dtype=x.dtype) + 1) / w_ste
    d_h, d_w = 0.25 * 2 / h_ste, 0.25 * 2 / w_ste  # Eq. (2)
    queries = []
    for sh in (-1, 1):
        for sw in (-1, 1):
            qy = (p_h + sh * d_h)[:, None].expand(h, w)
            qx = (p_w + sw * d_w)[None, :].expand(h, w)
            grid = torch.stack([qx, qy], -1)[None].expand(x.shape[0], -1, -1,
                                                          -1)
            queries.append(
                F.grid_sample(x, grid.to(x.dtype), mode='bilinear',
                              padding_mode='border', align_corners=False))
    q = torch.stack(queries)
    return q.max(0).values if mode == 'max' else q.mean(0)


def reference_alpha_grad(x, alpha, mode, g, shift):
    alpha = alpha.detach().clone().requires_grad_()
    reference_dynopool(x.detach(), alpha, mode, shift).backward(g)
    return alpha.grad


def central_alpha_grad(x, alpha, mode, g):
    """The ``'central'`` convention from the reference: the mean of its alpha
    gradients with every query moved by a relative 1e-11 to either side, so
    each pixel-aligned query sees one side of its kink, then the other
    (1e-11 of a 224 px map is 2e-9 px: far above float64 rounding of the
    coordinates, far below anything that changes the slopes)."""
    return sum(reference_alpha_grad(x, alpha, mode, g, shift)
               for shift in (-1e-11, 1e-11)) / 2


def on_kink(x, alpha, mode, g):
    """Whether some query sits exactly on a pixel centre (e.g. r = 0.5 on an
    even size), where bilinear sampling has no derivative w.r.t. position and
    autograd returns a one-sided one chosen by floating-point rounding."""
    grads = [reference_alpha_grad(x, alpha, mode, g, shift)
             for shift in (-1e-9, 1e-9)]
    return not torch.allclose(*grads, rtol=1e-5, atol=1e-6)


def has_tied_queries(x, alpha):
    """Whether two query values of one cell are exactly equal (up-sampling
    by >= 1.5 clamps a query onto the border pixel another one sits on);
    the max then follows max_pool2d's first winner on both sides of a kink
    only in our implementation, so the two conventions are not comparable
    there by shifting queries."""
    h, w = (int(math.floor(max(d / float(a), 1.5) + 0.5))
            for d, a in zip(x.shape[-2:], alpha.detach()))
    up = F.interpolate(x.detach(), size=(2 * h, 2 * w), mode='bilinear',
                       align_corners=False)
    cells = F.unfold(up.flatten(0, 1)[:, None], 2, stride=2)  # (NC, 4, L)
    srt = cells.sort(1).values
    return bool((srt[:, 1:] == srt[:, :-1]).any())


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

    @pytest.mark.parametrize('size,expected', [
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
        torch.testing.assert_close(pool.alpha.grad,
                                   torch.tensor(expected))

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
        pool = DynOPool2d(init_scale=scale, mode=mode, device=device,
                          dtype=f64)
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
        torch.testing.assert_close(x.grad.cpu(), x_ref.grad, rtol=1e-10,
                                   atol=1e-10)
        assert torch.all(pool.alpha.grad != 0)
        assert on_kink(x_ref, alpha, mode, g) == kink
        # Off kinks the plain derivative; on them the mean of both sides.
        expected = central_alpha_grad(x_ref, alpha, mode, g) if kink else \
            alpha_ref.grad
        torch.testing.assert_close(pool.alpha.grad.cpu(), expected,
                                   rtol=1e-7, atol=1e-7)

    @pytest.mark.parametrize('case', CASES)
    def test_float32_matches_float64_reference(self, case, device):
        h, w, scale, _ = case
        torch.manual_seed(0)
        x = torch.randn(2, 3, h, w, dtype=torch.float64)
        pool = DynOPool2d(init_scale=scale, device=device)
        alpha = pool.alpha.detach().cpu().double()
        torch.testing.assert_close(
            pool(x.float().to(device)).cpu().double(),
            reference_dynopool(x, alpha), rtol=0, atol=2e-4)

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
        torch.testing.assert_close(out.cpu().double(), ref, rtol=4 * eps,
                                   atol=4 * eps)
        out.float().sum().backward()
        assert pool.alpha.grad.dtype == torch.float32
        assert torch.isfinite(pool.alpha.grad).all()

    @pytest.mark.parametrize('h,w,h_out,w_out', [(5, 7, 3, 2), (4, 4, 6, 9),
                                                 (6, 3, 6, 3), (8, 8, 4, 4)])
    def test_matches_naive_loops(self, h, w, h_out, w_out, device):
        img = np.random.RandomState(1).randn(h, w)
        alpha = torch.tensor([h / h_out, w / w_out], dtype=torch.float64,
                             device=device)
        out = dynopool2d(torch.from_numpy(img)[None, None].to(device), alpha)
        np.testing.assert_allclose(
            out[0, 0].cpu().numpy(), naive_dynopool(img, h_out, w_out),
            atol=1e-12)

    def test_equals_resize_then_maxpool(self, layer_case):
        # The 4 query points are the centres of a 2H_out x 2W_out grid.
        x = torch.randn(2, 4, 30, 17)
        pool = layer_case.to(DynOPool2d(init_scale=(0.41, 0.67)))
        h, w = pool.output_size((30, 17))
        up = F.interpolate(layer_case.ref(x), size=(2 * h, 2 * w),
                           mode='bilinear', align_corners=False)
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
        # A continuous size near (not at) the integer one keeps every query
        # off pixel centres, where bilinear sampling has kinks.
        size = torch.tensor([h_out + 0.013, w_out - 0.021],
                            dtype=torch.float64, device=device,
                            requires_grad=True)
        assert torch.autograd.gradcheck(
            lambda x, s: _dynopool2d_sized(x, s, (h_out, w_out), mode),
            (x, size))
        # And the full layer, input gradient.
        alpha = torch.tensor([h / (h_out + 0.2), w / (w_out - 0.3)],
                             dtype=torch.float64, device=device)
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
        expected = tuple(
            int(math.floor(max(d * r, 1.5) + 0.5))
            for d, r in ((h, r_h), (w, r_w)))
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
        elif not (mode == 'max' and has_tied_queries(x, pool.alpha)):
            torch.testing.assert_close(
                pool.alpha.grad, central_alpha_grad(x, pool.alpha, mode, g),
                rtol=1e-7, atol=1e-7)

    def test_shared_instance_accumulates_both_calls(self, device):
        pool = DynOPool2d(init_scale=0.6, device=device)
        a = torch.randn(1, 2, 20, 20)
        b = torch.randn(1, 2, 13, 31)
        out_a, out_b = pool(a.to(device)), pool(b.to(device))
        assert out_a.shape[-2:] == (12, 12) and out_b.shape[-2:] == (8, 19)
        (out_a.sum() + out_b.square().sum()).backward()

        alpha = pool.alpha.detach().cpu().clone().requires_grad_()
        (reference_dynopool(a, alpha).sum() +
         reference_dynopool(b, alpha).square().sum()).backward()
        torch.testing.assert_close(pool.alpha.grad.cpu(), alpha.grad,
                                   rtol=1e-4, atol=1e-5)

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

    @pytest.mark.parametrize('init_scale', [0, -0.5, float('nan'),
                                            float('inf'), (0.5, 0.0)])
    def test_bad_init_scale_value(self, init_scale):
        with pytest.raises(ValueError, match='init_scale'):
            DynOPool2d(init_scale=init_scale)

    @pytest.mark.parametrize('init_scale', ['0.5', (0.5, 0.5, 0.5), True,
                                            None])
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
                dynopool2d(torch.rand(1, 1, 4, 4), torch.tensor([2.0, 2.0]),
                           position_grad=bad)

    def test_registry(self):
        from mmengine.registry import MODELS as ROOT
        from mmpretrain.registry import MODELS as PRETRAIN
        from mmseg.registry import MODELS as SEG
        for registry in (ROOT, SEG, PRETRAIN):
            pool = registry.build(dict(type='DynOPool2d', init_scale=0.25))
            assert isinstance(pool, DynOPool2d)
            assert pool.output_size((64, 64)) == (16, 16)


@pytest.fixture(params=['fused', 'pytorch'])
def implementation(request, monkeypatch, device):
    """Run a test with the compiled CPU kernel and with the PyTorch code,
    on every device (the kernel is the CPU's: CUDA runs the PyTorch code)."""
    import mmdynopool.ops as ops
    if request.param == 'fused' and device.type != 'cpu':
        pytest.skip('the fused kernel is CPU only')
    if request.param == 'fused':
        assert ops.dynopool_cpu_ext() is not None, 'kernel failed to build'
    else:
        monkeypatch.setitem(ops._EXT, 'dynopool', None)
    return request.param


@pytest.mark.usefixtures('implementation')
class TestFastPath:
    """``dynopool2d`` runs a custom autograd Function (resize to the 2x query
    grid, then a 2x2 pool; or the compiled kernel); the grid_sample
    formulation, whose size gradient is checked by ``gradcheck`` above, is
    its oracle. Every test runs both implementations, on every device
    (``device``, through ``implementation``)."""

    @pytest.mark.parametrize('mode', ['max', 'avg'])
    @pytest.mark.parametrize('h,w,h_out,w_out', [(7, 9, 3, 4), (5, 4, 8, 7),
                                                 (13, 10, 5, 9), (1, 3, 2, 2),
                                                 (30, 17, 11, 6), (16, 12, 8,
                                                                   6)])
    def test_one_sided_equals_grid_sample(self, h, w, h_out, w_out, mode,
                                          device):
        # 'one_sided' is what autograd through grid_sample gives, kinks
        # included: (13, 10) -> (5, 9) has a query on pixel 2 of the width,
        # (16, 12) -> (8, 6) has all of them on pixel centres. The
        # grid_sample oracle runs on the CPU.
        torch.manual_seed(0)
        f64 = torch.float64
        x_ref = torch.randn(2, 3, h, w, dtype=f64, requires_grad=True)
        a_ref = torch.tensor([h / (h_out + 0.2), w / (w_out - 0.3)],
                             dtype=f64, requires_grad=True)
        x = x_ref.detach().to(device).requires_grad_()
        alpha = a_ref.detach().to(device).requires_grad_()
        out = dynopool2d(x, alpha, mode, position_grad='one_sided')
        g = torch.randn(out.shape, dtype=f64)
        gx, ga = torch.autograd.grad(out, (x, alpha), g.to(device))

        from mmdynopool.models.layers.dynopool import dynopool_output_size
        size = dynopool_output_size((h, w), a_ref)
        assert size.tolist() == [h_out, w_out]
        # The paper's four grid_sample calls (test-local, independent).
        ref = reference_dynopool(x_ref, a_ref, mode)
        gx_ref, ga_ref = torch.autograd.grad(ref, (x_ref, a_ref), g)
        if (h, w) == (16, 12):
            # Every query on a pixel centre: which side grid_sample's
            # backward takes depends on how the query coordinates round, so
            # the oracle is grid_sample on the 2x grid's own coordinates.
            ref2 = _dynopool2d_sized(x_ref, size, (h_out, w_out), mode)
            ga_ref = torch.autograd.grad(ref2, a_ref, g)[0]
        torch.testing.assert_close(out.cpu(), ref, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(gx.cpu(), gx_ref, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(ga.cpu(), ga_ref, rtol=1e-10, atol=1e-10)
        # A 1-pixel axis has no interior: its queries all clamp.
        assert ((ga.cpu() != 0) == torch.tensor([h > 1, w > 1])).all()

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
            pool.alpha.grad.cpu(), central_alpha_grad(x, alpha, mode, g),
            rtol=1e-7, atol=1e-7)

    def test_central_float32_matches_float64(self, device):
        # The case: 2x3x32x32 at r = (0.49, 0.51), every query on a
        # pixel centre. 'central' finds them in integer arithmetic, so the
        # float32 result is the float64 one (on the CPU) up to float32
        # accumulation.
        torch.manual_seed(1)
        x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
        g = torch.randn(2, 3, 16, 16, dtype=torch.float64)
        grads = {}
        for dtype, where in ((torch.float32, device), (torch.float64, 'cpu')):
            pool = DynOPool2d((0.49, 0.51), device=where, dtype=dtype)
            pool(x.to(where, dtype)).backward(g.to(where, dtype))
            grads[dtype] = pool.alpha.grad.cpu().double()
        torch.testing.assert_close(grads[torch.float32],
                                   grads[torch.float64], rtol=1e-5,
                                   atol=1e-4)
        # And here the one-sided derivative even has the other sign.
        pool = DynOPool2d((0.49, 0.51), position_grad='one_sided',
                          device=device, dtype=torch.float64)
        pool(x.to(device)).backward(g.to(device))
        assert pool.alpha.grad[0].item() * grads[torch.float64][0] < 0

    @pytest.mark.parametrize('mode', ['max', 'avg'])
    def test_float32_gradients_agree_with_reference(self, mode, device):
        # fp32 fast path against the float64 CPU reference: 1e-5 relative.
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
        torch.testing.assert_close(x.grad.cpu().double(), x_ref.grad,
                                   rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(pool.alpha.grad.cpu().double(),
                                   alpha.grad, rtol=1e-5, atol=0)

    def test_autocast_bfloat16(self, device):
        x = torch.randn(2, 4, 20, 20, device=device, requires_grad=True)
        pool = DynOPool2d(init_scale=0.45, device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = pool(x.to(torch.bfloat16))
        assert out.dtype == torch.bfloat16 and out.shape[-2:] == (9, 9)
        out.float().sum().backward()
        assert pool.alpha.grad.dtype == torch.float32
        assert torch.isfinite(pool.alpha.grad).all()
        assert x.grad is not None and x.grad.shape == x.shape


def test_backward_follows_the_forward_path_under_a_dispatch_mode():
    """A forward through the fused kernel, then a backward watched by
    FlopCounterMode (which makes the kernel unavailable to new calls): the
    backward still uses the kernel's saved state, with the PyTorch path's
    gradients."""
    from torch.utils.flop_counter import FlopCounterMode

    import mmdynopool.ops as ops
    if ops.dynopool_cpu_ext() is None:
        pytest.fail('the fused kernel failed to build')
    torch.manual_seed(0)
    x = torch.randn(2, 3, 10, 9, requires_grad=True)
    pool = DynOPool2d((0.6, 0.45))
    y = pool(x)
    with FlopCounterMode(display=False):
        gx, ga = torch.autograd.grad(y.square().sum(), (x, pool.alpha))
    x2 = x.detach().clone().requires_grad_()
    pool2 = DynOPool2d((0.6, 0.45))
    saved = ops._EXT.get('dynopool')
    ops._EXT['dynopool'] = None  # the PyTorch path
    try:
        gx2, ga2 = torch.autograd.grad(pool2(x2).square().sum(),
                                       (x2, pool2.alpha))
    finally:
        ops._EXT['dynopool'] = saved
    torch.testing.assert_close(gx, gx2)
    torch.testing.assert_close(ga, ga2, rtol=1e-4, atol=1e-5)
