"""frozen_stages and norm_eval in every DynOPool / Shape Adaptor backbone.

Expected tables follow each library's documented rule: mmpretrain ResNet and
MobileNetV2 freeze the stem at 0 and ``layer1..k`` at k; VGG freezes its
first k stages; mmseg HRNet freezes the stem at 0 and ``layer1`` /
``transition1`` at 1, ``stage{i}`` / ``transition{i}`` at i. A resizing layer
belongs to the stage whose output it produces (DynOPool Appendix A.1 puts it
where the strided layer was).
"""
import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mmdynopool.models.backbones import (DynOPoolHRNet, DynOPoolMobileNetV2,
                                         DynOPoolResNet, DynOPoolVGG,
                                         ShapeAdaptorMobileNetV2,
                                         ShapeAdaptorResNet, ShapeAdaptorVGG)

from .test_hrnet import TINY


def frozen(model):
    return [not p.requires_grad for n, p in model.named_parameters()
            if n.endswith('alpha')]


# name -> (build(frozen_stages), stage of each resizing layer, max stage)
DYNOPOOL = {
    # stem pool, layer2..4 (layer1 keeps the resolution)
    'resnet': (lambda f: DynOPoolResNet(18, frozen_stages=f), [0, 2, 3, 4],
               4),
    # one pool ends each of the 5 stages; VGG's k freezes stages 0..k-1
    'vgg': (lambda f: DynOPoolVGG(11, frozen_stages=f), [1, 2, 3, 4, 5], 5),
    # stem, layer2, layer3, layer4, layer6 (strided layers of MobileNetV2)
    'mobilenet_v2': (lambda f: DynOPoolMobileNetV2(
        widen_factor=0.25, frozen_stages=f), [0, 2, 3, 4, 6], 7),
    # stem, stream 0 (stem conv2), stream j in transition j
    'hrnet': (lambda f: DynOPoolHRNet(TINY, frozen_stages=f),
              [0, 0, 1, 2, 3], 4),
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
    model = DynOPoolResNet(18, base_channels=8, stem_channels=8,
                           frozen_stages=2)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    before = [p.detach().clone() for n, p in model.named_parameters()
              if n.endswith('alpha')]
    sum(o.mean() for o in model(torch.randn(2, 3, 32, 32))).backward()
    opt.step()
    after = [p.detach() for n, p in model.named_parameters()
             if n.endswith('alpha')]
    moved = [not torch.equal(a, b) for a, b in zip(before, after)]
    assert moved == [False, False, True, True]  # stem, layer2 frozen


@pytest.mark.parametrize('build,top', [
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


@pytest.mark.parametrize('build', [
    lambda: DynOPoolResNet(18, norm_eval=True),
    lambda: DynOPoolMobileNetV2(widen_factor=0.25, norm_eval=True),
    lambda: DynOPoolVGG(11, norm_cfg=dict(type='BN'), norm_eval=True),
    lambda: DynOPoolHRNet(TINY, norm_eval=True),
    lambda: ShapeAdaptorResNet(18, norm_eval=True),
],
                         ids=['resnet', 'mobilenet_v2', 'vgg', 'hrnet',
                              'sa_resnet'])
def test_norm_eval_keeps_every_batchnorm_in_eval(build):
    model = build()
    model.train()
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert norms and not any(m.training for m in norms)
    # and the alphas still train
    assert not any(frozen(model))
