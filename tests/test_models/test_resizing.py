import pytest
from torch import nn

from mmdynopool.models import DynOPool2d, PooledConv2d, ShapeAdaptor
from mmdynopool.models.resizing import (is_learnable_resizer,
                                        is_resizing_layer, is_strided,
                                        resizer_scale, stride_of)


@pytest.mark.parametrize(
    'module,strided',
    [
        (nn.MaxPool2d(2), True),
        (nn.AvgPool2d(3, stride=(1, 2)), True),
        (nn.Conv2d(3, 3, 3, stride=2), True),
        (nn.Conv2d(3, 3, 3), False),
        (nn.MaxPool2d(3, stride=1), False),
        (nn.AdaptiveAvgPool2d(1), False),  # global pooling has no stride
        (nn.ReLU(), False),
        (PooledConv2d(3, 3, 3,
                      pool=DynOPool2d(0.5)), False),  # the pool counts
    ])
def test_fixed_resizing_layers(module, strided):
    assert is_strided(module) is strided
    assert is_resizing_layer(module) is strided
    assert not is_learnable_resizer(module)


def test_learnable_resizers_and_their_scales():
    pool, sa = DynOPool2d((0.5, 0.25)), ShapeAdaptor(init_alpha=0.0)
    assert all(is_learnable_resizer(m) for m in (pool, sa))
    assert all(is_resizing_layer(m) for m in (pool, sa))
    assert resizer_scale(pool) == pytest.approx((0.5, 0.25))
    assert resizer_scale(sa) == pytest.approx((0.75, 0.75))  # s(0) = 0.75
    assert resizer_scale(nn.MaxPool2d(2, stride=(2, 4))) == (0.5, 0.25)
    assert stride_of(nn.Conv2d(1, 1, 1, stride=3)) == (3, 3)
