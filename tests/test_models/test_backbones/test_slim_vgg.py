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
    assert [c.out_channels for c in convs] == [
        c.out_channels // 8 for c in full_convs] == [8, 16, 32, 32, 64, 64,
                                                     64, 64]
    assert [c.in_channels for c in convs[1:]] == [
        c.out_channels for c in convs[:-1]]
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
    assert len(model.shape_adaptors) == 4
    assert all(isinstance(m, ShapeAdaptor) for m in model.shape_adaptors)
    # Eq. 5 aims the last feature map at D_out = 8; the authors' floor at
    # every adaptor (s = 0.7071) ends at 7: 32 -> 22 -> 15 -> 10 -> 7.
    assert resizing_report(model, (32, 32))['outputs'] == [(7, 7)]


@pytest.mark.parametrize('value', [0, -0.5, 1.5])
def test_bad_widen_factor(value):
    with pytest.raises(ValueError,
                       match=rf'widen_factor must be in \(0, 1\], got '
                       f'{value}'):
        SlimVGG(11, widen_factor=value)
