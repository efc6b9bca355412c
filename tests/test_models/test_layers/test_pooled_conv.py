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
        expected = F.conv2d(pool(x), ref_conv.weight, ref_conv.bias, padding=1)
        layer_case.assert_close(pooled(layer_case.to(x)), expected)
        assert pooled.weight is conv.weight and pooled.stride == (1, 1)
        assert list(pooled.state_dict()) == ['weight', 'bias']
        assert list(pooled.parameters()) == [conv.weight, conv.bias]

    def test_shared_pool_survives_deepcopy(self):
        pool = DynOPool2d()
        model = nn.ModuleDict(
            dict(
                pool=pool,
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


class TestFromConvKeepsTheConv:
    """``from_conv`` keeps the original conv's class (``conv_cfg``: ConvWS,
    ConvAWS, ...), its behaviour and keys, and draws no random numbers."""

    def test_weight_standardisation_is_kept(self):
        from mmcv.cnn.bricks.conv_ws import ConvWS2d, conv_ws_2d
        conv = ConvWS2d(3, 5, 3, stride=2, padding=1, eps=1e-3)
        pool = DynOPool2d(init_scale=0.5)
        pooled = PooledConv2d.from_conv(conv, pool)
        assert isinstance(pooled, ConvWS2d) and isinstance(
            pooled, PooledConv2d)
        assert pooled.eps == 1e-3 and pooled.stride == (1, 1)
        assert conv.stride == (2, 2)  # the original is left as it was
        x = torch.randn(2, 3, 12, 12)
        expected = conv_ws_2d(
            pool(x), conv.weight, conv.bias, 1, 1, 1, 1, 1e-3)
        torch.testing.assert_close(pooled(x), expected)
        plain = F.conv2d(pool(x), conv.weight, conv.bias, padding=1)
        assert not torch.allclose(pooled(x), plain)
        assert list(pooled.state_dict()) == list(conv.state_dict())
        assert pooled.weight is conv.weight
        assert type(PooledConv2d.from_conv(ConvWS2d(3, 5, 1), pool)) is \
            type(pooled)  # one class per conv class

    def test_buffers_and_keys_of_conv_aws(self):
        from mmcv.cnn.bricks.conv_ws import ConvAWS2d
        conv = ConvAWS2d(3, 4, 3, stride=2, padding=1)
        pooled = PooledConv2d.from_conv(conv, DynOPool2d(0.5))
        assert list(pooled.state_dict()) == list(conv.state_dict())
        assert pooled.weight_gamma is conv.weight_gamma
        pooled(torch.randn(1, 3, 8, 8))

    def test_no_random_numbers_are_drawn(self):
        conv = nn.Conv2d(3, 5, 3, stride=2, padding=1)
        torch.manual_seed(0)
        PooledConv2d.from_conv(conv, DynOPool2d(0.5))
        after = torch.rand(3)
        torch.manual_seed(0)
        torch.testing.assert_close(after, torch.rand(3))

    def test_plain_conv_gives_a_plain_pooled_conv(self):
        pooled = PooledConv2d.from_conv(nn.Conv2d(2, 2, 3, 2, 1), DynOPool2d())
        assert type(pooled) is PooledConv2d
        clone = copy.deepcopy(pooled)
        assert type(clone) is PooledConv2d and clone.pool is not pooled.pool
