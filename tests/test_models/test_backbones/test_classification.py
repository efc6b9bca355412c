import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mmpretrain.models.backbones import VGG, MobileNetV2, ResNet, ResNet_CIFAR

from mmdynopool.analysis import resizing_report
from mmdynopool.models.backbones import (DynOPoolMobileNetV2,
                                         DynOPoolMobileNetV2_CIFAR,
                                         DynOPoolResNet, DynOPoolResNet_CIFAR,
                                         DynOPoolVGG, MobileNetV2_CIFAR)
from mmdynopool.models.layers import DynOPool2d

ALL4 = dict(out_indices=(0, 1, 2, 3))
# (human class, DynOPool class, shared kwargs, input size, expected sizes)
PAIRS = [
    (ResNet, DynOPoolResNet, dict(depth=50, **ALL4), 224,
     [(56, 56), (28, 28), (14, 14), (7, 7)]),
    (ResNet, DynOPoolResNet, dict(depth=18, **ALL4), 100,
     [(25, 25), (13, 13), (7, 7), (4, 4)]),
    (ResNet, DynOPoolResNet, dict(depth=18, deep_stem=True, avg_down=True,
                                  **ALL4), 64,
     [(16, 16), (8, 8), (4, 4), (2, 2)]),
    (ResNet, DynOPoolResNet, dict(depth=50, style='caffe', **ALL4), 64,
     [(16, 16), (8, 8), (4, 4), (2, 2)]),
    (ResNet_CIFAR, DynOPoolResNet_CIFAR, dict(depth=50, **ALL4), 32,
     [(32, 32), (16, 16), (8, 8), (4, 4)]),
    (ResNet_CIFAR, DynOPoolResNet_CIFAR, dict(depth=18, **ALL4), 32,
     [(32, 32), (16, 16), (8, 8), (4, 4)]),
    (VGG, DynOPoolVGG, dict(depth=16, out_indices=(0, 1, 2, 3, 4)), 224,
     [(112, 112), (56, 56), (28, 28), (14, 14), (7, 7)]),
    (VGG, DynOPoolVGG, dict(depth=11, out_indices=(3, ),
                            with_last_pool=False), 32, [(2, 2)]),
    (MobileNetV2, DynOPoolMobileNetV2, dict(out_indices=(1, 2, 4, 7)), 224,
     [(56, 56), (28, 28), (14, 14), (7, 7)]),
    (MobileNetV2_CIFAR, DynOPoolMobileNetV2_CIFAR,
     dict(out_indices=(1, 2, 4, 7)), 32, [(32, 32), (16, 16), (8, 8),
                                          (4, 4)]),
]
IDS = [f'{p[1].__name__}-{i}' for i, p in enumerate(PAIRS)]


def out_sizes(model, size):
    model.eval()
    with torch.no_grad():
        return [tuple(o.shape[-2:]) for o in model(torch.rand(1, 3, size,
                                                              size))]


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('human_cls,dyno_cls,kwargs,size,expected', PAIRS,
                         ids=IDS)
class TestPairs:

    def test_same_shapes_as_human_at_init(self, human_cls, dyno_cls, kwargs,
                                          size, expected):
        assert out_sizes(human_cls(**kwargs), size) == expected
        assert out_sizes(dyno_cls(**kwargs), size) == expected

    def test_params_and_human_checkpoint(self, human_cls, dyno_cls, kwargs,
                                         size, expected):
        human, dyno = human_cls(**kwargs), dyno_cls(**kwargs)
        pools = dyno.dynopools
        assert len(pools) > 0
        assert n_params(dyno) - n_params(human) == 2 * len(pools)
        result = dyno.load_state_dict(human.state_dict(), strict=False)
        assert result.unexpected_keys == []
        assert result.missing_keys and all(
            k.endswith('alpha') for k in result.missing_keys)
        assert len(result.missing_keys) == len(pools)


class TestResNet:

    def test_paper_rules(self):
        model = DynOPoolResNet(depth=50, **ALL4)
        rows = resizing_report(model, (224, 224))['layers']
        # Only DynOPool resizes: no strided conv or pooling is left.
        assert {r['type'] for r in rows} == {'DynOPool2d'}
        assert [(r['name'], r['in'], r['out']) for r in rows] == [
            ('maxpool', (224, 224), (56, 56)),
            ('layer2.0.dynopool', (56, 56), (28, 28)),
            ('layer3.0.dynopool', (28, 28), (14, 14)),
            ('layer4.0.dynopool', (14, 14), (7, 7)),
        ]
        block = model.layer2[0]
        # Main branch and shortcut share one module (one alpha).
        assert block.conv3.pool is block.dynopool
        assert block.downsample[0].pool is block.dynopool
        assert block.conv2.stride == (1, 1)

    def test_init_scales(self):
        model = DynOPoolResNet_CIFAR(depth=18, init_scales=[0.6, 0.5, 0.5],
                                     **ALL4)
        assert out_sizes(model, 32) == [(32, 32), (19, 19), (10, 10), (5, 5)]

    @settings(max_examples=10, deadline=None)
    @given(
        scales=st.lists(st.floats(0.2, 1.8), min_size=4, max_size=4),
        size=st.integers(9, 64))
    def test_random_alphas_forward_backward(self, scales, size):
        model = DynOPoolResNet(depth=18, base_channels=8, stem_channels=8,
                               init_scales=scales, **ALL4)
        outs = model(torch.randn(2, 3, size, size))
        sum(o.square().mean() for o in outs).backward()
        for pool in model.dynopools:
            assert torch.isfinite(pool.alpha.grad).all()
            assert (pool.alpha.grad != 0).all()

    def test_bad_config(self):
        with pytest.raises(KeyError, match='depth must be one of'):
            DynOPoolResNet(depth=42)
        with pytest.raises(ValueError, match='init_scales'):
            DynOPoolResNet(depth=18, init_scales=[0.5, 0.5])
        with pytest.raises(ValueError, match='init_scale'):
            DynOPoolResNet(depth=18, init_scales=[0.25, 0.5, -1, 0.5])

    def test_mmseg_registry(self):
        from mmseg.registry import MODELS
        model = MODELS.build(dict(type='DynOPoolResNet', depth=18))
        assert isinstance(model, DynOPoolResNet)


@pytest.mark.parametrize('build', [
    lambda s: DynOPoolVGG(depth=11, init_scales=s[:5], out_indices=(4, )),
    lambda s: DynOPoolMobileNetV2(widen_factor=0.25, init_scales=s[:5]),
    lambda s: DynOPoolResNet_CIFAR(depth=18, base_channels=8,
                                   init_scales=s[:3]),
],
                         ids=['vgg', 'mobilenet_v2', 'resnet_cifar'])
@settings(max_examples=6, deadline=None)
@given(
    scales=st.lists(st.tuples(st.floats(0.2, 1.8), st.floats(0.2, 1.8)),
                    min_size=6, max_size=6),
    size=st.integers(8, 40))
def test_random_alphas(build, scales, size):
    model = build(scales)
    outs = model(torch.randn(2, 3, size, size))
    sum(o.square().mean() for o in outs).backward()
    for pool in model.dynopools:
        assert isinstance(pool, DynOPool2d)
        assert torch.isfinite(pool.alpha.grad).all()
        assert (pool.alpha.grad != 0).all()


@pytest.mark.parametrize('build', [
    lambda cfg: DynOPoolVGG(depth=11, out_indices=(4, ), dynopool_cfg=cfg),
    lambda cfg: DynOPoolMobileNetV2(widen_factor=0.25, dynopool_cfg=cfg),
    lambda cfg: DynOPoolResNet(depth=18, base_channels=8, stem_channels=8,
                               dynopool_cfg=cfg),
    lambda cfg: DynOPoolResNet_CIFAR(depth=18, base_channels=8,
                                     dynopool_cfg=cfg),
],
                         ids=['vgg', 'mobilenet_v2', 'resnet', 'resnet_cifar'])
def test_position_grad_reaches_every_pool(build):
    """``dynopool_cfg=dict(position_grad=...)`` sets every DynOPool, and the
    alpha gradient then follows that convention (r = 0.5 on even sizes puts
    every query on a pixel centre, where the two differ)."""
    grads = {}
    for conv in ('central', 'one_sided'):
        torch.manual_seed(0)
        model = build(dict(position_grad=conv))
        pools = [m for m in model.modules() if isinstance(m, DynOPool2d)]
        assert pools and all(p.position_grad == conv for p in pools)
        torch.manual_seed(1)
        outs = model(torch.randn(2, 3, 64, 64))
        sum(o.square().mean() for o in outs).backward()
        grads[conv] = torch.stack([p.alpha.grad for p in pools])
    assert not torch.allclose(grads['central'], grads['one_sided'])
