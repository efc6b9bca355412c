import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmdynopool.models import DynOPool2d, PoolAfter, PooledConv2d


class TestPooledConv2d:

    def test_is_conv_of_pooled_input(self, layer_case):
        # The reference: the same pool and weights on the CPU.
        pool = layer_case.ref(DynOPool2d(init_scale=0.6))
        ref_conv = layer_case.ref(nn.Conv2d(3, 5, 3, stride=2, padding=1))
        conv = layer_case.to(copy.deepcopy(ref_conv))
        pooled = PooledConv2d.from_conv(conv,
                                        layer_case.to(copy.deepcopy(pool)))
        x = layer_case.ref(torch.randn(2, 3, 20, 20))
        expected = F.conv2d(pool(x), ref_conv.weight, ref_conv.bias,
                            padding=1)
        layer_case.assert_close(pooled(layer_case.to(x)), expected)
        assert pooled.weight is conv.weight and pooled.stride == (1, 1)
        assert list(pooled.state_dict()) == ['weight', 'bias']
        assert list(pooled.parameters()) == [conv.weight, conv.bias]

    def test_shared_pool_survives_deepcopy(self):
        pool = DynOPool2d()
        model = nn.ModuleDict(
            dict(pool=pool,
                 a=PooledConv2d(2, 2, 1, pool=pool),
                 b=PoolAfter(nn.ReLU(), pool)))
        clone = copy.deepcopy(model)
        assert clone.a.pool is clone.pool and clone.b.pool is clone.pool
        assert clone.pool is not pool

    def test_stride_must_be_one(self):
        with pytest.raises(ValueError, match='stride must be 1'):
            PooledConv2d(2, 2, 3, stride=2, pool=nn.Identity())


def test_pool_after(layer_case):
    pool = layer_case.ref(DynOPool2d(init_scale=(0.5, 0.75)))
    act = PoolAfter(nn.ReLU(), layer_case.to(copy.deepcopy(pool)))
    x = layer_case.ref(torch.randn(1, 2, 8, 8))
    layer_case.assert_close(act(layer_case.to(x)), pool(torch.relu(x)))
    assert list(act.state_dict()) == []
