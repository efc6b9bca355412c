import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmdynopool.models.layers.dynamic_conv import DynamicConv2d, dynamic_conv2d


def zero_interleave(x):
    """Up-sample by 2 with zeros between the pixels (x at even positions)."""
    n, c, h, w = x.shape
    z = x.new_zeros(n, c, 2 * h, 2 * w)
    z[..., ::2, ::2] = x
    return z


def bilinear_kernel(w, k):
    """Hand-built align_corners=False resize of a k0 x k0 kernel to k x k."""
    k0 = w.shape[-1]
    out = np.zeros(w.shape[:2] + (k, k))
    for i in range(k):
        for j in range(k):
            y = min(max((i + 0.5) * k0 / k - 0.5, 0), k0 - 1)
            x = min(max((j + 0.5) * k0 / k - 0.5, 0), k0 - 1)
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            y1, x1 = min(y0 + 1, k0 - 1), min(x0 + 1, k0 - 1)
            wy, wx = y - y0, x - x0
            out[..., i,
                j] = ((1 - wy) * (1 - wx) * w[..., y0, x0] +
                      (1 - wy) * wx * w[..., y0, x1] + wy *
                      (1 - wx) * w[..., y1, x0] + wy * wx * w[..., y1, x1])
    return out


#: Narrows the ``dtype`` fixture (and ``layer_case``) to float64.
FLOAT64 = pytest.mark.parametrize('dtype', [torch.float64], ids=['float64'])


@pytest.fixture
def conv():
    torch.manual_seed(0)
    return nn.Conv2d(6, 4, 3, stride=2, padding=1, groups=2).double()


def on_case(conv, case, **kwargs):
    """A dynamic copy of ``conv`` for ``case``, and the reference's weight
    and bias (``conv`` itself stays the float64 CPU original)."""
    layer = case.to(DynamicConv2d.from_conv(copy.deepcopy(conv), **kwargs))
    return layer, case.ref(conv.weight.detach()), case.ref(conv.bias.detach())


class TestDynamicConv2d:

    def test_default_is_the_original(self, conv, layer_case):
        x = layer_case.ref(torch.randn(2, 6, 13, 10, dtype=torch.float64))
        layer, _, _ = on_case(conv, layer_case)
        layer_case.assert_close(
            layer(layer_case.to(x)),
            layer_case.ref(copy.deepcopy(conv))(x))
        assert list(layer.state_dict()) == ['weight', 'bias']

    @pytest.mark.parametrize('stride', [1, 2, 3, 4])
    @pytest.mark.parametrize('dilation', [1, 2, 5])
    @FLOAT64  # the float32 path is the same conv call
    def test_integer_stride_and_dilation(self, conv, stride, dilation,
                                         layer_case):
        x = torch.randn(1, 6, 17, 12, dtype=torch.float64)
        layer, w, b = on_case(conv, layer_case)
        layer.set_option(stride=stride, dilation=dilation)
        ref = F.conv2d(
            x,
            w,
            b,
            stride=stride,
            padding=dilation,
            dilation=dilation,
            groups=2)
        out = layer(layer_case.to(x))
        layer_case.assert_close(out, ref)
        assert out.shape[-2:] == (-(-17 // stride), -(-12 // stride))

    @pytest.mark.parametrize('dilation', [1, 3])
    def test_half_stride_is_kernel_over_zero_interleaved_input(
            self, conv, dilation, layer_case):
        x = layer_case.ref(torch.randn(2, 6, 7, 9, dtype=torch.float64))
        layer, w, b = on_case(conv, layer_case)
        layer.set_option(stride=0.5, dilation=dilation)
        out = layer(layer_case.to(x))
        ref = F.conv2d(
            zero_interleave(x),
            w,
            b,
            padding=dilation,
            dilation=dilation,
            groups=2)
        assert out.shape[-2:] == (14, 18)
        layer_case.assert_close(out, ref)

    @pytest.mark.parametrize('k', [1, 5, 7, 9])
    def test_resized_kernel(self, conv, k, layer_case):
        x = layer_case.ref(torch.randn(1, 6, 11, 11, dtype=torch.float64))
        layer, _, b = on_case(conv, layer_case)
        layer.set_option(stride=1, kernel_size=k)
        w = torch.from_numpy(bilinear_kernel(conv.weight.detach().numpy(), k))
        ref = F.conv2d(
            x, layer_case.ref(w) * 9 / k**2, b, padding=k // 2, groups=2)
        layer_case.assert_close(layer(layer_case.to(x)), ref)

    def test_magnitude_scale_on_constant_kernel(self):
        conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
        nn.init.constant_(conv.weight, 0.5)
        x = torch.ones(1, 1, 15, 15)
        for k in (1, 3, 5, 9):
            out = dynamic_conv2d(x, conv.weight, kernel_size=k)
            # Away from the border the response equals the trained 3x3's.
            assert out[0, 0, 7, 7].item() == pytest.approx(4.5)

    def test_parameters_untouched_and_gradients_flow(self, conv):
        before = conv.weight.detach().clone()
        layer = DynamicConv2d.from_conv(conv)
        layer.set_option(stride=0.5, kernel_size=5)
        layer(torch.randn(1, 6, 5, 5, dtype=torch.float64)).sum().backward()
        assert torch.equal(conv.weight.detach(), before)
        assert conv.weight.grad is not None
        layer.reset_option()
        assert layer.option == (2, 1, 3)

    def test_bad_options(self, conv):
        layer = DynamicConv2d.from_conv(conv)
        with pytest.raises(ValueError, match='stride=5'):
            layer.set_option(stride=5)
        with pytest.raises(ValueError, match='kernel_size=4'):
            layer.set_option(kernel_size=4)
        with pytest.raises(ValueError, match='square, odd kernel'):
            DynamicConv2d.from_conv(nn.Conv2d(1, 1, (3, 5)))


class TestAnisotropicStride:
    """(s_h, s_w) pairs, as the first author's later code allows: each axis
    by hand (a strided conv per axis, or zeros interleaved along the halved
    axis before a stride-1 conv, as for 1/2)."""

    @pytest.mark.parametrize('stride', [(1, 2), (2, 1), (3, 2)])
    @FLOAT64
    def test_integer_pair(self, conv, stride, layer_case):
        x = torch.randn(1, 6, 13, 10, dtype=torch.float64)
        layer, w, b = on_case(conv, layer_case, strides=(1, stride))
        layer.set_option(stride=stride)
        ref = F.conv2d(x, w, b, stride=stride, padding=1, groups=2)
        layer_case.assert_close(layer(layer_case.to(x)), ref)
        assert ref.shape[-2:] == (-(-13 // stride[0]), -(-10 // stride[1]))

    @pytest.mark.parametrize('stride', [(0.5, 1), (1, 0.5), (0.5, 0.5)])
    def test_half_along_one_axis(self, conv, stride, device):
        x = torch.randn(1, 6, 7, 5, dtype=torch.float64)
        z = zero_interleave(x)
        z = z[..., :, ::2] if stride[1] == 1 else z
        z = z[..., ::2, :] if stride[0] == 1 else z
        ref = F.conv2d(z, conv.weight, conv.bias, padding=1, groups=2)
        w, b = conv.weight.to(device), conv.bias.to(device)
        out = dynamic_conv2d(x.to(device), w, b, stride, groups=2)
        torch.testing.assert_close(out.cpu(), ref)
        assert out.shape[-2:] == (7 * round(1 / stride[0]),
                                  5 * round(1 / stride[1]))
        if stride == (0.5, 0.5):  # the pair and the number agree
            torch.testing.assert_close(
                out, dynamic_conv2d(x.to(device), w, b, 0.5, groups=2))

    @pytest.mark.parametrize('bad', [(0.5, 2), (2, ), (0, 1), (1.5, 1)])
    def test_bad_pairs(self, conv, bad):
        with pytest.raises(
                ValueError,
                match='strides must be 0.5, a '
                'positive integer or a pair'):
            DynamicConv2d.from_conv(conv, strides=(1, bad))


@pytest.mark.parametrize('stride', [(0.5, 2), (1.5, 2), 0, 2.5])
def test_functional_refuses_bad_strides(conv, stride):
    with pytest.raises(ValueError, match='stride must be 0.5'):
        dynamic_conv2d(
            torch.rand(1, 6, 8, 8, dtype=torch.float64),
            conv.weight,
            stride=stride,
            groups=2)


@pytest.mark.parametrize('strides', [(1, (1, 2)), (), (1, True), 'ab'])
def test_pool_refuses_pairs_and_junk(strides):
    from mmdynopool.models.layers import DynamicPool2d
    with pytest.raises(ValueError, match='strides of a pool'):
        DynamicPool2d(nn.MaxPool2d(2, 2), strides)


def pad_interleave_conv(x, w, b, stride, dilation, mode, groups=2):
    """Stride 1/2 (either axis) with ``mode`` padding, by hand: the input
    padded by ``mode`` first, then zeros interleaved along the halved axes,
    the kernel slid at stride 1 and the padded border cropped off."""
    k = w.shape[-1]
    pad = dilation * (k - 1) // 2
    halved = [s == 0.5 for s in stride]
    q = [-(-pad // 2) if h else pad for h in halved]
    xp = F.pad(x, (q[1], q[1], q[0], q[0]), mode=mode)
    z = zero_interleave(xp)
    z = z if halved[1] else z[..., :, ::2]
    z = z if halved[0] else z[..., ::2, :]
    out = F.conv2d(
        F.pad(z, (pad, ) * 4), w, b, dilation=dilation, groups=groups)
    h, wd = x.shape[-2:]
    top = 2 * q[0] if halved[0] else q[0]
    left = 2 * q[1] if halved[1] else q[1]
    return out[..., top:top + h * (1 + halved[0]),
               left:left + wd * (1 + halved[1])]


class TestPaddingMode:
    """A conv trained with reflect / circular padding keeps it at every
    option (it used to fall back to zeros: max diff 1.54)."""

    @pytest.mark.parametrize('mode', ['reflect', 'circular', 'replicate'])
    @pytest.mark.parametrize('stride,dilation', [(1, 1), (2, 2), (3, 1)])
    def test_integer_strides_equal_torch(self, conv, mode, stride, dilation):
        conv.padding_mode = mode
        x = torch.randn(1, 6, 13, 11, dtype=torch.float64)
        layer = DynamicConv2d.from_conv(conv)
        assert layer.padding_mode == mode
        layer.set_option(stride=stride, dilation=dilation)
        ref = nn.Conv2d(
            6, 4, 3, stride, dilation, dilation, groups=2,
            padding_mode=mode).double()
        ref.weight, ref.bias = conv.weight, conv.bias
        torch.testing.assert_close(layer(x), ref(x))

    @pytest.mark.parametrize('mode', ['reflect', 'circular'])
    def test_resized_kernel(self, conv, mode):
        conv.padding_mode = mode
        x = torch.randn(1, 6, 11, 12, dtype=torch.float64)
        layer = DynamicConv2d.from_conv(conv)
        layer.set_option(stride=1, kernel_size=5)
        w = torch.from_numpy(bilinear_kernel(conv.weight.detach().numpy(), 5))
        ref = F.conv2d(
            F.pad(x, (2, ) * 4, mode=mode), w * 9 / 25, conv.bias, groups=2)
        torch.testing.assert_close(layer(x), ref)

    @pytest.mark.parametrize('mode', ['zeros', 'reflect', 'circular'])
    @pytest.mark.parametrize('stride', [0.5, (0.5, 1), (1, 0.5)])
    @pytest.mark.parametrize('dilation', [1, 3])
    def test_half_stride_pads_before_interleaving(self, conv, mode, stride,
                                                  dilation):
        conv.padding_mode = mode
        x = torch.randn(1, 6, 7, 8, dtype=torch.float64)
        pair = stride if isinstance(stride, tuple) else (stride, stride)
        layer = DynamicConv2d.from_conv(conv, strides=(0.5, 1, pair))
        layer.set_option(stride=stride, dilation=dilation)
        ref = pad_interleave_conv(x, conv.weight, conv.bias, pair, dilation,
                                  'constant' if mode == 'zeros' else mode)
        torch.testing.assert_close(layer(x), ref)


@pytest.mark.parametrize('kwargs,match', [
    (dict(kernel_size=5.0), r'kernel_size must be an int.*5\.0'),
    (dict(kernel_size=True), 'kernel_size must be an int.*True'),
    (dict(dilation=2.0), r'dilation must be an int.*2\.0'),
    (dict(dilation=True), 'dilation must be an int'),
    (dict(stride=2.0), r'stride must be 0\.5 or an int.*2\.0'),
    (dict(stride=True), 'stride must be 0.5 or an int'),
    (dict(stride=(1.0, 2)), 'stride must be 0.5 or an int'),
])
def test_set_option_refuses_non_integers_by_name(conv, kwargs, match):
    """``set_option(kernel_size=5.0)`` was accepted (5.0 == 5) and failed
    deep inside the forward."""
    layer = DynamicConv2d.from_conv(conv, strides=(1, 2, (1, 2)))
    with pytest.raises(TypeError, match=match):
        layer.set_option(**kwargs)
    assert layer.option == (2, 1, 3)  # nothing changed


def test_integral_float_options_are_stored_as_ints(conv):
    """``--options stride=1,2.0`` still gives settable permutations."""
    layer = DynamicConv2d.from_conv(conv, strides=(1, 2.0, 0.5, (1.0, 2)))
    assert layer.options['stride'] == (1, 2, 0.5, (1, 2))
    assert all(type(v) is int for v in layer.options['stride'][:2])
    for s in layer.options['stride']:
        layer.set_option(stride=s)
