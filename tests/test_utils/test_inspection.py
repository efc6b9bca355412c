"""mmdynopool.utils.inspection: eval mode for a moment, and the resizing
layers' sizes read from one forward pass."""
import math

import pytest
import torch
from mmpretrain.models.backbones import ResNet
from torch import nn

from mmdynopool.models import DynOPool2d, ShapeAdaptor
from mmdynopool.utils import eval_mode, resizing_report


def test_human_resnet_report():
    report = resizing_report(ResNet(18, out_indices=(0, 1, 2, 3)), (64, 64))
    names = [(r['name'], r['type'], r['in'], r['out'])
             for r in report['layers']]
    assert names[:2] == [('conv1', 'Conv2d', (64, 64), (32, 32)),
                         ('maxpool', 'MaxPool2d', (32, 32), (16, 16))]
    assert ('layer2.0.downsample.0', 'Conv2d', (16, 16), (8, 8)) in names
    assert report['outputs'] == [(16, 16), (8, 8), (4, 4), (2, 2)]


def test_dynopool_scales_and_shared_layer_once_per_input():
    pool = DynOPool2d(init_scale=(0.5, 0.25))
    model = nn.Sequential(pool, nn.Conv2d(3, 3, 1), pool)
    report = resizing_report(model, (64, 64))
    assert [(r['scale'], r['in'], r['out']) for r in report['layers']] == [
        ((0.5, 0.25), (64, 64), (32, 16)),
        ((0.5, 0.25), (32, 16), (16, 4)),
    ]
    assert report['outputs'] == [(16, 4)]


def test_shape_adaptor_is_one_layer_with_one_scale():
    # Its own branches (a strided pool among them) are not extra rows.
    sa = ShapeAdaptor(init_alpha=0.5)  # F1: a 2x2 max-pool, stride 2
    model = nn.Sequential(sa)
    report = resizing_report(model, (32, 32))
    assert [r['name'] for r in report['layers']] == ['0']
    s = sa.scale
    assert report['layers'][0]['scale'] == pytest.approx((s, s))
    # floor(32 * s), s = 0.5 + 0.5 sigmoid(0.5) = 0.8112 (the authors'
    # int(dim * s)): 25.96 -> 25.
    assert s == pytest.approx(0.5 + 0.5 / (1 + math.exp(-0.5)))
    assert report['layers'][0]['out'] == (25, 25)


@pytest.mark.parametrize('training', [True, False])
def test_eval_mode_restores_the_mode(training):
    model = nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(2)).train(training)
    with eval_mode(model) as m:
        assert m is model
        assert not any(x.training for x in model.modules())
    assert all(x.training == training for x in model.modules())
    with pytest.raises(RuntimeError, match='inside'):
        with eval_mode(model):
            raise RuntimeError('inside')
    assert model.training == training


def test_report_restores_training_mode():
    model = nn.Sequential(DynOPool2d(init_scale=0.5), nn.Dropout()).train()
    resizing_report(model, (8, 8))
    assert model.training and model[1].training
    assert torch.is_grad_enabled()
