import math

import pytest
import torch
from mmpretrain.models.backbones import VGG
from torch import nn

from mmdynopool.analysis import resizing_report
from mmdynopool.models.backbones import (DynOPoolSlimVGG, DynOPoolVGG,
                                         ShapeAdaptorSlimVGG, ShapeAdaptorVGG,
                                         SlimVGG)
from mmdynopool.models.layers import DynOPool2d, ShapeAdaptor

KW = dict(norm_cfg=dict(type='BN'), with_last_pool=False, out_indices=(4, ))
# (slim class, full-width class)
PAIRS = [(SlimVGG, VGG), (DynOPoolSlimVGG, DynOPoolVGG),
         (ShapeAdaptorSlimVGG, ShapeAdaptorVGG)]
IDS = [p[0].__name__ for p in PAIRS]


@pytest.mark.parametrize('slim_cls,full_cls', PAIRS, ids=IDS)
def test_widths_and_keys(slim_cls, full_cls):
    slim = slim_cls(11, widen_factor=0.125, **KW)
    full = full_cls(11, **KW)
    convs = [m for m in slim.modules() if isinstance(m, nn.Conv2d)]
    full_convs = [m for m in full.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels
            for c in convs] == [c.out_channels // 8 for c in full_convs
                                ] == [8, 16, 32, 32, 64, 64, 64, 64]
    assert [c.in_channels
            for c in convs[1:]] == [c.out_channels for c in convs[:-1]]
    # Same module names as the full-width model (and the same layer types).
    assert slim.state_dict().keys() == full.state_dict().keys()
    assert slim.out_channels == 64
    out = slim(torch.rand(2, 3, 32, 32))[0]
    assert out.shape[:2] == (2, 64)
    out.sum().backward()
    assert all(p.grad is not None for p in slim.parameters())


def test_dynopool_slim_equals_human_sizes_at_init():
    human = SlimVGG(11, widen_factor=0.25, **KW)
    dyno = DynOPoolSlimVGG(11, widen_factor=0.25, **KW)
    for size in [(32, 32), (64, 48)]:
        assert resizing_report(dyno, size)['outputs'] == resizing_report(
            human, size)['outputs']
    assert len(dyno.dynopools) == 4
    assert all(isinstance(p, DynOPool2d) for p in dyno.dynopools)


def test_shape_adaptor_slim_keeps_adaptors():
    model = ShapeAdaptorSlimVGG(11, widen_factor=0.125, input_size=32, **KW)
    assert len(model.dynopools) == 4
    assert all(isinstance(m, ShapeAdaptor) for m in model.dynopools)
    # Eq. 5 aims the last feature map at D_out = 8; the authors' floor at
    # every adaptor (s = 0.7071) ends at 7: 32 -> 22 -> 15 -> 10 -> 7.
    assert resizing_report(model, (32, 32))['outputs'] == [(7, 7)]


@pytest.mark.parametrize('value', [0, -0.5, 1.5])
def test_bad_widen_factor(value):
    with pytest.raises(
            ValueError,
            match=rf'widen_factor must be in \(0, 1\], got '
            f'{value}'):
        SlimVGG(11, widen_factor=value)


def test_slim_frozen_stages_freeze_the_rebuilt_layers():
    model = DynOPoolSlimVGG(11, widen_factor=0.25, frozen_stages=2, **KW)
    frozen = {
        n.split('.')[1]
        for n, p in model.named_parameters()
        if not p.requires_grad and n.startswith('features.')
    }
    # VGG-11 stages 0 and 1 hold features 0 and 2 (a pool between).
    assert frozen == {'0', '2'}
    assert [p.alpha.requires_grad
            for p in model.dynopools] == [False, False, True, True]


def test_shape_adaptor_registry():
    from mmpretrain.registry import MODELS
    model = MODELS.build(
        dict(type='ShapeAdaptorVGG', depth=11, num_adaptors=3))
    assert len(model.dynopools) == 3
    assert math.isclose(model.dynopools[0].penalty, 1.0)


@pytest.mark.parametrize('size_rounding,sizes', [('floor', [22, 15, 10, 7]),
                                                 ('round', [23, 16, 11, 8])])
def test_shape_adaptor_vgg16_initial_sizes_hand_table(size_rounding, sizes):
    # The authors' chain at 32 px, s = (8 / 32) ** (1 / 4) = 0.7071:
    # int(32 s) = 22, int(22 s) = 15, int(15 s) = 10, int(10 s) = 7.
    model = ShapeAdaptorVGG(16, size_rounding=size_rounding)
    rows = resizing_report(model, (32, 32))['layers']
    assert [r['out'] for r in rows] == [(d, d) for d in sizes]


def test_shape_adaptor_rounding_options():
    with pytest.raises(ValueError, match='rounding'):
        ShapeAdaptorVGG(11, count_rounding='round')
    with pytest.raises(ValueError, match='rounding'):
        ShapeAdaptorVGG(11, size_rounding='ceil')


def test_bad_depth():
    for cls in (DynOPoolVGG, ShapeAdaptorVGG):
        with pytest.raises(KeyError, match='depth must be one of'):
            cls(12)


@pytest.mark.parametrize('cls',
                         [DynOPoolVGG, ShapeAdaptorVGG, DynOPoolSlimVGG])
def test_vggs_own_classifier_is_refused_at_construction(cls):
    """VGG's classifier flattens a fixed 512x7x7 map: mmpretrain's VGG runs
    on 225 px (floor: 7x7), DynOPool's round half up gives 8x8 and the
    classifier crashed in the forward. Refused where it enters, with why."""
    assert VGG(
        11, num_classes=10)(torch.rand(1, 3, 225, 225))[-1].shape == (1, 10)
    with pytest.raises(
            ValueError, match=r'num_classes=10.*512 x 7 x 7.*'
            r'num_classes=-1'):
        cls(11, num_classes=10)
    with pytest.raises(ValueError, match='num_classes=10'):
        cls(11, 10)  # positional, as VGG takes it
    model = cls(11, num_classes=-1)  # the backbone the configs use
    assert model(torch.rand(1, 3, 225, 225))[-1].dim() == 4
