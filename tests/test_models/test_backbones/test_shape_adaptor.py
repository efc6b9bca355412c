import math

import pytest
import torch
from mmpretrain.models.backbones import VGG, MobileNetV2, ResNet_CIFAR

from mmdynopool.analysis import resizing_report
from mmdynopool.models.backbones import (ShapeAdaptorMobileNetV2,
                                         ShapeAdaptorResNet,
                                         ShapeAdaptorResNet_CIFAR,
                                         ShapeAdaptorVGG)
from mmdynopool.models.backbones.shape_adaptor import uniform_positions
from mmdynopool.models.layers import ShapeAdaptor

# (class, kwargs, input size, number of adaptors, index of the last stage)
CASES = [
    (ShapeAdaptorVGG, dict(depth=16, out_indices=(4, )), 32, 4),
    (ShapeAdaptorResNet_CIFAR, dict(depth=50), 32, 4),
    (ShapeAdaptorResNet_CIFAR, dict(depth=18), 32, 4),
    (ShapeAdaptorMobileNetV2, dict(widen_factor=0.5), 32, 4),
    (ShapeAdaptorResNet, dict(depth=18, input_size=224), 224, 6),
]
IDS = [f'{c[0].__name__}-{i}' for i, c in enumerate(CASES)]


@pytest.mark.parametrize('cls,kwargs,size,n', CASES, ids=IDS)
def test_eq3_eq5_and_only_adaptors_resize(cls, kwargs, size, n):
    model = cls(**kwargs)
    assert len(model.shape_adaptors) == n
    report = resizing_report(model, (size, size))
    # Every human resizing layer is gone; each adaptor resizes once. What
    # else strides is the down-sampling branch (the 1x1 shortcut) of a
    # residual shape adaptor.
    rows = report['layers']
    assert sum(r['type'] == 'ShapeAdaptor' for r in rows) == n
    for r in rows:
        if r['type'] != 'ShapeAdaptor':
            block = model.get_submodule(r['name'].rsplit('.downsample', 1)[0])
            assert hasattr(block, 'shape_adaptor'), r
    # Eq. (5): the last feature map starts at d_out = 8 (+-1 from the
    # rounding at every module).
    assert abs(report['outputs'][-1][0] - 8) <= 1
    s = model.shape_adaptors[0].scale
    assert size * s**n == pytest.approx(8, rel=1e-3)


@pytest.mark.parametrize('cls,kwargs,size,n', CASES[:4], ids=IDS[:4])
def test_forward_backward_reaches_every_alpha(cls, kwargs, size, n):
    model = cls(**kwargs)
    outs = model(torch.randn(2, 3, size, size))
    sum(o.square().mean() for o in outs).backward()
    for sa in model.shape_adaptors:
        assert torch.isfinite(sa.alpha.grad) and sa.alpha.grad != 0


def test_positions_match_authors_code():
    # VGG-16 on CIFAR: 12 candidate convs (the last excluded), N = 4.
    assert uniform_positions(12, 4) == [0, 3, 6, 9]
    # ResNet-50 on ImageNet: stem + 15 blocks, N = int(log2(224 / 2)) = 6.
    assert uniform_positions(16, 6) == [0, 2, 5, 8, 10, 13]
    # With the printed ceiling of Eq. (3): 7.
    assert uniform_positions(16, 7) == [0, 2, 4, 6, 9, 11, 13]
    with pytest.raises(ValueError, match='num_adaptors'):
        uniform_positions(3, 4)


def test_resnet_residual_cell():
    model = ShapeAdaptorResNet_CIFAR(depth=18)
    blocks = [b for name in model.res_layers for b in getattr(model, name)]
    # stem + blocks[0..6]: positions 0, 2, 4, 6 -> blocks 1, 3, 5.
    sa_blocks = [i for i, b in enumerate(blocks) if hasattr(b, 'shape_adaptor')]
    assert sa_blocks == [1, 3, 5]
    for i in sa_blocks:
        sa = blocks[i].shape_adaptor
        assert sa.residual and blocks[i].downsample[0].stride == (2, 2)
    # Mixed output = relu(2((1-a) G(shortcut) + a G(weights))).
    block = blocks[1].eval()
    x = torch.randn(1, 64, 12, 12)
    a = torch.sigmoid(block.shape_adaptor.alpha).item()
    size = block.shape_adaptor.output_size((12, 12))
    weights = block.norm2(block.conv2(block.relu(block.norm1(block.conv1(x)))))
    interp = lambda t: torch.nn.functional.interpolate(  # noqa: E731
        t, size, mode='bilinear', align_corners=True)
    expected = torch.relu(2 * ((1 - a) * interp(block.downsample(x)) +
                               a * interp(weights)))
    torch.testing.assert_close(block(x), expected)


def test_human_keys_kept():
    for human, sa in [(VGG(16), ShapeAdaptorVGG(16)),
                      (MobileNetV2(), ShapeAdaptorMobileNetV2()),
                      (ResNet_CIFAR(50), ShapeAdaptorResNet_CIFAR(50))]:
        result = sa.load_state_dict(human.state_dict(), strict=False)
        assert result.unexpected_keys == []
        assert all(k.startswith('shape_adaptors.') or '.downsample.' in k
                   for k in result.missing_keys)
        assert sum(k.startswith('shape_adaptors.')
                   for k in result.missing_keys) == len(sa.shape_adaptors)
        assert all(isinstance(m, ShapeAdaptor) for m in sa.shape_adaptors)


def test_registry():
    from mmpretrain.registry import MODELS
    model = MODELS.build(dict(type='ShapeAdaptorVGG', depth=11,
                              num_adaptors=3))
    assert len(model.shape_adaptors) == 3
    assert math.isclose(model.shape_adaptors[0].penalty, 1.0)


@pytest.mark.parametrize('size_rounding,sizes', [('floor', [22, 15, 10, 7]),
                                                 ('round', [23, 16, 11, 8])])
def test_vgg16_initial_sizes_hand_table(size_rounding, sizes):
    # The authors' chain at 32 px, s = (8 / 32) ** (1 / 4) = 0.7071:
    # int(32 s) = 22, int(22 s) = 15, int(15 s) = 10, int(10 s) = 7.
    model = ShapeAdaptorVGG(16, size_rounding=size_rounding)
    rows = resizing_report(model, (32, 32))['layers']
    assert [r['out'] for r in rows] == [(d, d) for d in sizes]


def test_count_rounding_option():
    assert len(ShapeAdaptorResNet(18, input_size=224,
                                  count_rounding='ceil').shape_adaptors) == 7
    with pytest.raises(ValueError, match='rounding'):
        ShapeAdaptorVGG(11, count_rounding='round')
    with pytest.raises(ValueError, match='rounding'):
        ShapeAdaptorVGG(11, size_rounding='ceil')
