"""DynOPoolEfficientNet against the mmpretrain EfficientNet it subclasses."""
import pytest
import torch
from mmpretrain.models.backbones import EfficientNet

from mmdynopool.models import DynOPool2d
from mmdynopool.models.backbones import DynOPoolEfficientNet


def stage_sizes(model, x):
    sizes = []
    hooks = [
        layer.register_forward_hook(
            lambda m, a, out: sizes.append(tuple(out.shape[-2:])))
        for layer in model.layers
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return sizes


# TF "same" padding gives ceil(H / 2) at stride 2; 225 x 197 is odd on both
# axes: 113 x 99, 57 x 50, 29 x 25, 15 x 13, 8 x 7 (by hand).
@pytest.mark.parametrize('size', [(224, 224), (225, 197), (64, 50)])
def test_sizes_and_outputs_of_the_human_design_at_init(size):
    torch.manual_seed(0)
    human = EfficientNet('b0')
    torch.manual_seed(0)
    dyno = DynOPoolEfficientNet('b0')
    human.eval()
    dyno.eval()
    x = torch.rand(1, 3, *size)
    assert stage_sizes(dyno, x) == stage_sizes(human, x)
    if size == (225, 197):  # stem, layers 1-6
        assert stage_sizes(dyno, x) == [(113, 99), (113, 99), (57, 50),
                                        (29, 25), (15, 13), (8, 7), (8, 7)]
    # The same parameters under the same keys, plus five alphas.
    keys = set(dyno.state_dict()) - set(human.state_dict())
    assert keys == {f'dynopools.{i}.alpha' for i in range(5)}
    dyno.load_state_dict(human.state_dict(), strict=False)
    assert all(isinstance(p, DynOPool2d) for p in dyno.dynopools)


def test_alpha_gradient_and_learned_size():
    model = DynOPoolEfficientNet('b0', init_scales=[0.6, 0.5, 0.5, 0.5, 0.5])
    out = model(torch.rand(2, 3, 64, 64))[-1]
    # 64 * 0.6 = 38.4 -> 38, then 19, 10, 5, 3 (round half up).
    assert out.shape[-2:] == (3, 3)
    out.sum().backward()
    assert all(p.alpha.grad is not None and p.alpha.grad.abs().sum() > 0
               for p in model.dynopools)


def test_frozen_stages_freeze_the_resizers_they_hold():
    # mmpretrain freezes layers[0:k]; the pools follow layers 0, 2, 3, 4, 5.
    for k in range(8):
        model = DynOPoolEfficientNet('b0', frozen_stages=k)
        frozen = [not p.alpha.requires_grad for p in model.dynopools]
        assert frozen == [k > i for i in (0, 2, 3, 4, 5)], k
    with pytest.raises(ValueError, match='frozen_stages.*8'):
        DynOPoolEfficientNet('b0', frozen_stages=8)


def test_edge_residual_arch_converts_every_strided_conv():
    # EfficientNet-EdgeTPU-S strides EdgeResidual blocks in their conv1.
    torch.manual_seed(0)
    human = EfficientNet('es')
    torch.manual_seed(0)
    dyno = DynOPoolEfficientNet('es')
    human.eval()
    dyno.eval()
    strided = [
        n for n, m in human.named_modules()
        if isinstance(m, torch.nn.Conv2d) and m.stride != (1, 1)
    ]
    assert len(dyno.dynopools) == len(strided) == 5
    assert not [
        n for n, m in dyno.named_modules()
        if isinstance(m, torch.nn.Conv2d) and m.stride != (1, 1)
    ]
    x = torch.rand(1, 3, 97, 64)
    assert stage_sizes(dyno, x) == stage_sizes(human, x)
