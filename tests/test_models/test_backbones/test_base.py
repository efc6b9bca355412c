"""The one scheme of every resizing backbone (``backbones/base.py``).

Parametrised over every network: the same shapes and checkpoint as the
human network at initialisation, the resizing layers in ``dynopools`` with
keys ``dynopools.<i>.alpha``, gradients reaching every alpha, Eq. (3) / (5)
for Shape Adaptor networks, ``frozen_stages`` and ``norm_eval``.

Expected frozen tables follow each library's documented rule: mmpretrain
ResNet and MobileNetV2 freeze the stem at 0 and ``layer1..k`` at k; VGG
freezes its first k stages; mmseg HRNet freezes the stem at 0 and
``layer1`` / ``transition1`` at 1, ``stage{i}`` / ``transition{i}`` at i. A
resizing layer belongs to the stage whose output it produces (DynOPool
Appendix A.1 puts it where the strided layer was).
"""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mmpretrain.models.backbones import (VGG, EfficientNet, MobileNetV2,
                                         ResNet, ResNet_CIFAR)
from mmseg.models.backbones import HRNet
from torch.nn.modules.batchnorm import _BatchNorm

from mmdynopool.analysis import resizing_report
# yapf: disable
from mmdynopool.models.backbones import (DynOPoolEfficientNet, DynOPoolHRNet,
                                         DynOPoolMobileNetV2,
                                         DynOPoolMobileNetV2_CIFAR,
                                         DynOPoolResNet, DynOPoolResNet_CIFAR,
                                         DynOPoolSlimVGG, DynOPoolVGG,
                                         MobileNetV2_CIFAR,
                                         ShapeAdaptorMobileNetV2,
                                         ShapeAdaptorResNet,
                                         ShapeAdaptorResNet_CIFAR,
                                         ShapeAdaptorSlimVGG, ShapeAdaptorVGG,
                                         SlimVGG)
# yapf: enable
from mmdynopool.models.backbones.base import uniform_positions
from mmdynopool.models.layers import DynOPool2d, ShapeAdaptor
from .test_hrnet import TINY

ALL4 = dict(out_indices=(0, 1, 2, 3))


def out_sizes(model, size):
    model.eval()
    with torch.no_grad():
        return [
            tuple(o.shape[-2:]) for o in model(torch.rand(1, 3, size, size))
        ]


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# Every resizing backbone, small: (class, constructor arguments).
EVERY = {
    c.__name__: (c, kw)
    for c, kw in [
        (DynOPoolResNet, dict(depth=18, base_channels=8, stem_channels=8)),
        (DynOPoolResNet_CIFAR, dict(depth=18, base_channels=8)),
        (DynOPoolVGG, dict(depth=11, norm_cfg=dict(type='BN'))),
        (DynOPoolSlimVGG,
         dict(depth=11, widen_factor=0.125, norm_cfg=dict(type='BN'))),
        (DynOPoolMobileNetV2, dict(widen_factor=0.25)),
        (DynOPoolMobileNetV2_CIFAR, dict(widen_factor=0.25)),
        (DynOPoolHRNet, dict(extra=TINY)),
        (DynOPoolEfficientNet, dict(arch='b0')),
        (ShapeAdaptorVGG, dict(depth=11, norm_cfg=dict(type='BN'))),
        (ShapeAdaptorSlimVGG,
         dict(depth=11, widen_factor=0.125, norm_cfg=dict(type='BN'))),
        (ShapeAdaptorResNet, dict(depth=18, base_channels=8, stem_channels=8)),
        (ShapeAdaptorResNet_CIFAR, dict(depth=18, base_channels=8)),
        (ShapeAdaptorMobileNetV2, dict(widen_factor=0.25)),
    ]
}


def build(name, **kwargs):
    cls, kw = EVERY[name]
    return cls(**kw, **kwargs)


@pytest.mark.parametrize('name', sorted(EVERY))
def test_one_key_scheme(name):
    """Every resizing layer is registered once, in ``dynopools``; whatever
    calls it holds a reference."""
    model = build(name)
    from mmpretrain.registry import MODELS
    from mmseg.registry import MODELS as SEG_MODELS
    assert name in MODELS or name in SEG_MODELS
    alphas = [k for k in model.state_dict() if k.endswith('alpha')]
    assert alphas == [
        f'dynopools.{i}.alpha' for i in range(len(model.dynopools))
    ]
    assert isinstance(model.dynopools, torch.nn.ModuleList)
    kind = DynOPool2d if name.startswith('DynOPool') else ShapeAdaptor
    assert all(type(m) is kind for m in model.dynopools)
    assert [m for m in model.modules()
            if isinstance(m, kind)] == list(model.dynopools)
    # Each one is used: every alpha gets a gradient.
    size = 64 if 'CIFAR' not in name and 'ShapeAdaptor' not in name else 32
    outs = model(torch.randn(2, 3, size, size))
    sum(o.square().mean() for o in outs).backward()
    assert all(
        m.alpha.grad is not None and torch.isfinite(m.alpha.grad).all()
        for m in model.dynopools)


# (human class, DynOPool class, shared kwargs, input size, expected sizes)
PAIRS = [
    (ResNet, DynOPoolResNet, dict(depth=50, **ALL4), 224, [(56, 56), (28, 28),
                                                           (14, 14), (7, 7)]),
    (ResNet, DynOPoolResNet, dict(depth=18, **ALL4), 100, [(25, 25), (13, 13),
                                                           (7, 7), (4, 4)]),
    (ResNet, DynOPoolResNet,
     dict(depth=18, deep_stem=True, avg_down=True,
          **ALL4), 64, [(16, 16), (8, 8), (4, 4), (2, 2)]),
    (ResNet, DynOPoolResNet, dict(depth=50, style='caffe',
                                  **ALL4), 64, [(16, 16), (8, 8), (4, 4),
                                                (2, 2)]),
    (ResNet_CIFAR, DynOPoolResNet_CIFAR, dict(depth=50, **ALL4), 32, [(32, 32),
                                                                      (16, 16),
                                                                      (8, 8),
                                                                      (4, 4)]),
    (ResNet_CIFAR, DynOPoolResNet_CIFAR, dict(depth=18, **ALL4), 32, [(32, 32),
                                                                      (16, 16),
                                                                      (8, 8),
                                                                      (4, 4)]),
    (VGG, DynOPoolVGG, dict(depth=16,
                            out_indices=(0, 1, 2, 3, 4)), 224, [(112, 112),
                                                                (56, 56),
                                                                (28, 28),
                                                                (14, 14),
                                                                (7, 7)]),
    (VGG, DynOPoolVGG, dict(depth=11, out_indices=(3, ),
                            with_last_pool=False), 32, [(2, 2)]),
    (MobileNetV2, DynOPoolMobileNetV2, dict(out_indices=(1, 2, 4, 7)), 224,
     [(56, 56), (28, 28), (14, 14), (7, 7)]),
    (MobileNetV2_CIFAR, DynOPoolMobileNetV2_CIFAR,
     dict(out_indices=(1, 2, 4, 7)), 32, [(32, 32), (16, 16), (8, 8), (4, 4)]),
]
IDS = [f'{p[1].__name__}-{i}' for i, p in enumerate(PAIRS)]


@pytest.mark.parametrize(
    'human_cls,dyno_cls,kwargs,size,expected', PAIRS, ids=IDS)
class TestHumanPairs:

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
        assert sorted(result.missing_keys) == [
            f'dynopools.{i}.alpha' for i in range(len(pools))
        ]


@pytest.mark.parametrize(
    'build', [
        lambda s: DynOPoolVGG(depth=11, init_scales=s[:5], out_indices=(4, )),
        lambda s: DynOPoolMobileNetV2(widen_factor=0.25, init_scales=s[:5]),
        lambda s: DynOPoolResNet_CIFAR(
            depth=18, base_channels=8, init_scales=s[:3]),
    ],
    ids=['vgg', 'mobilenet_v2', 'resnet_cifar'])
@settings(max_examples=6, deadline=None)
@given(
    scales=st.lists(
        st.tuples(st.floats(0.2, 1.8), st.floats(0.2, 1.8)),
        min_size=6,
        max_size=6),
    size=st.integers(8, 40))
def test_random_alphas(build, scales, size):
    model = build(scales)
    outs = model(torch.randn(2, 3, size, size))
    sum(o.square().mean() for o in outs).backward()
    for pool in model.dynopools:
        assert isinstance(pool, DynOPool2d)
        assert torch.isfinite(pool.alpha.grad).all()
        assert (pool.alpha.grad != 0).all()


@pytest.mark.parametrize(
    'build', [
        lambda cfg: DynOPoolVGG(depth=11, out_indices=(4, ), dynopool_cfg=cfg),
        lambda cfg: DynOPoolMobileNetV2(widen_factor=0.25, dynopool_cfg=cfg),
        lambda cfg: DynOPoolResNet(
            depth=18, base_channels=8, stem_channels=8, dynopool_cfg=cfg),
        lambda cfg: DynOPoolResNet_CIFAR(
            depth=18, base_channels=8, dynopool_cfg=cfg),
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
        pools = list(model.dynopools)
        assert pools and all(p.position_grad == conv for p in pools)
        torch.manual_seed(1)
        outs = model(torch.randn(2, 3, 64, 64))
        sum(o.square().mean() for o in outs).backward()
        grads[conv] = torch.stack([p.alpha.grad for p in pools])
    assert not torch.allclose(grads['central'], grads['one_sided'])


# (class, kwargs, input size, number of adaptors)
SA_CASES = [
    (ShapeAdaptorVGG, dict(depth=16, out_indices=(4, )), 32, 4),
    (ShapeAdaptorResNet_CIFAR, dict(depth=50), 32, 4),
    (ShapeAdaptorResNet_CIFAR, dict(depth=18), 32, 4),
    (ShapeAdaptorMobileNetV2, dict(widen_factor=0.5), 32, 4),
    (ShapeAdaptorResNet, dict(depth=18, input_size=224), 224, 6),
]
SA_IDS = [f'{c[0].__name__}-{i}' for i, c in enumerate(SA_CASES)]


@pytest.mark.parametrize('cls,kwargs,size,n', SA_CASES, ids=SA_IDS)
def test_eq3_eq5_and_only_adaptors_resize(cls, kwargs, size, n):
    model = cls(**kwargs)
    assert len(model.dynopools) == n
    report = resizing_report(model, (size, size))
    # Every human resizing layer is gone; each adaptor resizes once. What
    # else strides is the down-sampling branch (the 1x1 shortcut) of a
    # residual shape adaptor.
    rows = report['layers']
    assert sum(r['type'] == 'ShapeAdaptor' for r in rows) == n
    for r in rows:
        if r['type'] != 'ShapeAdaptor':
            block = model.get_submodule(r['name'].rsplit('.downsample', 1)[0])
            assert block.shape_adaptor is not None, r
    # Eq. (5): the last feature map starts at d_out = 8 (+-1 from the
    # rounding at every module).
    assert abs(report['outputs'][-1][0] - 8) <= 1
    s = model.dynopools[0].scale
    assert size * s**n == pytest.approx(8, rel=1e-3)


@pytest.mark.parametrize('cls,kwargs,size,n', SA_CASES[:4], ids=SA_IDS[:4])
def test_forward_backward_reaches_every_alpha(cls, kwargs, size, n):
    model = cls(**kwargs)
    outs = model(torch.randn(2, 3, size, size))
    sum(o.square().mean() for o in outs).backward()
    for sa in model.dynopools:
        assert torch.isfinite(sa.alpha.grad) and sa.alpha.grad != 0


def test_shape_adaptors_keep_human_keys():
    for human, sa in [(VGG(16), ShapeAdaptorVGG(16)),
                      (MobileNetV2(), ShapeAdaptorMobileNetV2()),
                      (ResNet_CIFAR(50), ShapeAdaptorResNet_CIFAR(50))]:
        result = sa.load_state_dict(human.state_dict(), strict=False)
        assert result.unexpected_keys == []
        assert all(
            k.startswith('dynopools.') or '.downsample.' in k
            for k in result.missing_keys)
        assert sum(k.startswith('dynopools.')
                   for k in result.missing_keys) == len(sa.dynopools)


def test_positions_match_authors_code():
    # VGG-16 on CIFAR: 12 candidate convs (the last excluded), N = 4.
    assert uniform_positions(12, 4) == [0, 3, 6, 9]
    # ResNet-50 on ImageNet: stem + 15 blocks, N = int(log2(224 / 2)) = 6.
    assert uniform_positions(16, 6) == [0, 2, 5, 8, 10, 13]
    # With the printed ceiling of Eq. (3): 7.
    assert uniform_positions(16, 7) == [0, 2, 4, 6, 9, 11, 13]
    with pytest.raises(ValueError, match='num_adaptors'):
        uniform_positions(3, 4)


@pytest.mark.parametrize('kwargs,match', [
    (dict(init_alphas=[0.1, 0.2]), 'init_alphas must hold 4'),
    (dict(adaptor_cfg=dict(rounding='round')), 'adaptor_cfg takes'),
])
def test_shape_adaptor_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ShapeAdaptorVGG(11, **kwargs)


def frozen(model):
    return [
        not p.requires_grad for n, p in model.named_parameters()
        if n.endswith('alpha')
    ]


# name -> (build(frozen_stages), stage of each resizing layer, max stage)
DYNOPOOL = {
    # stem pool, layer2..4 (layer1 keeps the resolution)
    'resnet': (lambda f: DynOPoolResNet(18, frozen_stages=f), [0, 2, 3, 4], 4),
    # one pool ends each of the 5 stages; VGG's k freezes stages 0..k-1
    'vgg': (lambda f: DynOPoolVGG(11, frozen_stages=f), [1, 2, 3, 4, 5], 5),
    # stem, layer2, layer3, layer4, layer6 (strided layers of MobileNetV2)
    'mobilenet_v2':
    (lambda f: DynOPoolMobileNetV2(widen_factor=0.25, frozen_stages=f),
     [0, 2, 3, 4, 6], 7),
    # stem, stream 0 (stem conv2), stream j in transition j
    'hrnet': (lambda f: DynOPoolHRNet(TINY, frozen_stages=f), [0, 0, 1, 2,
                                                               3], 4),
}


@pytest.mark.parametrize('name', sorted(DYNOPOOL))
def test_dynopool_alphas_follow_frozen_stages(name):
    build, stages, top = DYNOPOOL[name]
    for f in range(-1, top + 1):
        model = build(f)
        expected = [s <= f for s in stages]
        assert frozen(model) == expected, (name, f)
        model.train()  # the libraries re-freeze in train(): still the same
        assert frozen(model) == expected, (name, f)
    # Ours, or the library's own check (MobileNetV2): name and value.
    with pytest.raises(ValueError, match=rf'frozen_stages.*{top + 1}'):
        build(top + 1)


def test_frozen_alpha_does_not_move_in_training():
    model = DynOPoolResNet(
        18, base_channels=8, stem_channels=8, frozen_stages=2)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    before = [
        p.detach().clone() for n, p in model.named_parameters()
        if n.endswith('alpha')
    ]
    sum(o.mean() for o in model(torch.randn(2, 3, 32, 32))).backward()
    opt.step()
    after = [
        p.detach() for n, p in model.named_parameters() if n.endswith('alpha')
    ]
    moved = [not torch.equal(a, b) for a, b in zip(before, after)]
    assert moved == [False, False, True, True]  # stem, layer2 frozen


@pytest.mark.parametrize(
    'build,top', [
        (lambda f: ShapeAdaptorVGG(11, frozen_stages=f), 5),
        (lambda f: ShapeAdaptorResNet(18, frozen_stages=f), 4),
        (lambda f: ShapeAdaptorMobileNetV2(widen_factor=0.25, frozen_stages=f),
         7),
    ],
    ids=['vgg', 'resnet', 'mobilenet_v2'])
def test_shape_adaptor_alphas_follow_frozen_stages(build, top):
    # Nothing frozen at -1, everything at the last stage, and monotone.
    counts = [sum(frozen(build(f))) for f in range(-1, top + 1)]
    assert counts[0] == 0
    assert counts[-1] == len(frozen(build(-1)))
    assert counts == sorted(counts)


@pytest.mark.parametrize('name', sorted(EVERY))
def test_norm_eval_keeps_every_batchnorm_in_eval(name):
    model = build(name, norm_eval=True)
    model.train()
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert norms and not any(m.training for m in norms)
    # and the alphas still train
    assert not any(frozen(model))


# Every DynOPool backbone and the library class it extends (SlimVGG: ours,
# the human network the DynOPool slim VGG extends).
PARENTS = {
    'DynOPoolResNet': ResNet,
    'DynOPoolResNet_CIFAR': ResNet_CIFAR,
    'DynOPoolVGG': VGG,
    'DynOPoolSlimVGG': SlimVGG,
    'DynOPoolMobileNetV2': MobileNetV2,
    'DynOPoolMobileNetV2_CIFAR': MobileNetV2_CIFAR,
    'DynOPoolHRNet': HRNet,
    'DynOPoolEfficientNet': EfficientNet
}


def test_every_dynopool_backbone_has_a_parent_here():
    assert sorted(PARENTS) == sorted(
        n for n in EVERY if n.startswith('DynOPool'))


@pytest.mark.parametrize('name', sorted(PARENTS))
def test_same_seed_same_weights_as_the_human_backbone(name):
    """Converting draws no random numbers: under one seed every parameter
    and buffer the human backbone has is equal in the DynOPool one, also
    after ``init_weights()``, and the generator is left where the human
    backbone leaves it (what a decode head built next draws from; the demo
    HRNet used to differ in 55 tensors)."""
    cls, kw = EVERY[name]
    built = []
    for c in (PARENTS[name], cls):
        torch.manual_seed(0)
        model = c(**kw)
        model.init_weights()
        built.append((model.state_dict(), torch.rand(4)))
    (human, next_human), (dyno, next_dyno) = built
    assert set(human) <= set(dyno)
    differ = [k for k in human if not torch.equal(human[k], dyno[k])]
    assert differ == []
    assert torch.equal(next_human, next_dyno)


@pytest.mark.parametrize(
    'human_cls,dyno_cls,kwargs', [
        (ResNet, DynOPoolResNet, dict(depth=18)),
        (HRNet, DynOPoolHRNet, dict(extra=TINY)),
        (VGG, DynOPoolVGG, dict(depth=11)),
        (VGG, lambda **kw: DynOPoolSlimVGG(widen_factor=0.25, **kw),
         dict(depth=11)),
    ],
    ids=['resnet18', 'hrnet', 'vgg11', 'slim-vgg11'])
def test_conv_cfg_survives_the_conversion(human_cls, dyno_cls, kwargs):
    """Every conv built from ``conv_cfg`` stays that conv (ResNet-18 used to
    have 20 ConvWS layers and its DynOPool version 14; the slim VGGs
    rebuilt theirs as plain convs)."""
    from mmcv.cnn.bricks.conv_ws import ConvWS2d
    cfg = dict(conv_cfg=dict(type='ConvWS'), **kwargs)
    human, dyno = human_cls(**cfg), dyno_cls(**cfg)
    n_ws = [
        sum(isinstance(m, ConvWS2d) for m in net.modules())
        for net in (human, dyno)
    ]
    assert n_ws[0] > 0 and n_ws[0] == n_ws[1]
    assert sorted(human.state_dict()) == sorted(
        k for k in dyno.state_dict() if not k.startswith('dynopools.'))
