import torch
from mmpretrain.models.backbones import MobileNetV2

from mmdynopool.analysis import resizing_report
from mmdynopool.models.backbones import (DynOPoolMobileNetV2,
                                         DynOPoolMobileNetV2_CIFAR,
                                         MobileNetV2_CIFAR,
                                         ShapeAdaptorMobileNetV2)


def test_cifar_variant_has_three_resizing_layers():
    human = MobileNetV2_CIFAR(widen_factor=0.25)
    rows = resizing_report(human, (32, 32))['layers']
    assert [(r['in'], r['out']) for r in rows] == [((32, 32), (16, 16)),
                                                   ((16, 16), (8, 8)),
                                                   ((8, 8), (4, 4))]
    assert len(DynOPoolMobileNetV2_CIFAR(widen_factor=0.25).dynopools) == 3


def test_dynopool_runs_after_the_activation():
    model = DynOPoolMobileNetV2(widen_factor=0.25)
    # Rule B: the stem and each strided depthwise conv run at stride 1 and
    # their activation hands its output to the shared pool.
    convs = [model.conv1] + [
        getattr(model, n)[0].conv[-2]
        for n in ('layer2', 'layer3', 'layer4', 'layer6')
    ]
    assert all(c.conv.stride == (1, 1) for c in convs)
    assert [c.activate.pool for c in convs] == list(model.dynopools)
    human = MobileNetV2(widen_factor=0.25)
    x = torch.rand(1, 3, 64, 48)
    assert resizing_report(model, (64, 48))['outputs'] == resizing_report(
        human, (64, 48))['outputs']
    assert model(x)[0].shape == human(x)[0].shape


def test_shape_adaptor_drops_the_residual_of_its_block():
    model = ShapeAdaptorMobileNetV2(widen_factor=0.25)
    blocks = [b for n in model.layers[:-1] for b in getattr(model, n)]
    held = [b for b in blocks if b.conv[-1].__class__.__name__ == 'PoolAfter']
    assert len(held) == len(model.dynopools) - 1  # the first is the stem's
    assert all(not b.use_res_connect for b in held)
    assert [b.conv[-1].pool for b in held] == list(model.dynopools[1:])
