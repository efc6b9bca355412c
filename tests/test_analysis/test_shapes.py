import torch
from mmpretrain.models.backbones import ResNet
from torch import nn

from mmdynopool.analysis import format_resizing_report, resizing_report
from mmdynopool.models import DynOPool2d, DynOPoolVGG


def test_human_resnet_report():
    report = resizing_report(ResNet(18, out_indices=(0, 1, 2, 3)), (64, 64))
    names = [(r['name'], r['type'], r['in'], r['out'])
             for r in report['layers']]
    assert names[:2] == [('conv1', 'Conv2d', (64, 64), (32, 32)),
                         ('maxpool', 'MaxPool2d', (32, 32), (16, 16))]
    assert ('layer2.0.downsample.0', 'Conv2d', (16, 16),
            (8, 8)) in names
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


def test_format_and_training_mode_restored():
    model = DynOPoolVGG(11, out_indices=(4, ))
    model.train()
    text = format_resizing_report(resizing_report(model, (32, 48)))
    assert model.training
    lines = text.splitlines()
    assert len(lines) == 1 + 5 + 1  # header, five pools, outputs
    assert lines[1].split()[:2] == ['features.1', 'DynOPool2d']
    # 32x48 halves four times, then the 1.5 floor keeps 2x3 -> 2x2.
    assert lines[-2].split()[-4:] == ['(2,', '3)', '(2,', '2)']
    assert lines[-1] == 'outputs: 2x2'
