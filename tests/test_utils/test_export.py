"""Deployment exports (ONNX in onnxruntime, ``torch.export``) of the four
DynOPool backbone families at learned, non-square scales, against the
training-mode (op) forward at two input sizes."""
import copy
import os.path as osp
import subprocess
import sys

import pytest
import torch

from mmdynopool.models import (DynOPoolHRNet, DynOPoolMobileNetV2,
                               DynOPoolResNet, DynOPoolVGG, ShapeAdaptorVGG)
from mmdynopool.models.backbones.hrnet import hrnet_extra
from mmdynopool.utils.export import export_model

pytest.importorskip('onnxruntime')

HRNET = hrnet_extra(8, blocks=1, modules=(1, 1, 1, 1), stage1_channels=16)

BACKBONES = {
    'vgg':
    lambda: DynOPoolVGG(
        11, init_scales=[0.43, (0.6, 0.4), 0.5, 0.55, 0.5], out_indices=(4, )),
    'resnet':
    lambda: DynOPoolResNet(
        18,
        init_scales=[(0.3, 0.22), 0.6, 0.45, 0.5],
        out_indices=(0, 1, 2, 3)),
    'mobilenet_v2':
    lambda: DynOPoolMobileNetV2(
        widen_factor=0.25,
        init_scales=[0.55, (0.4, 0.6), 0.5, 0.62, 0.5],
        out_indices=(7, )),
    'hrnet':
    lambda: DynOPoolHRNet(
        HRNET, init_scales=[0.45, (0.6, 0.5), 0.5, 0.7, 0.5]),
    # Shape Adaptors have the same deployment form; a chain of them exports
    # at a static input size (with a dynamic one, torch.export's range
    # solver fails on their nested floor sizes: tested at the layer level).
    'shape_adaptor_vgg':
    lambda: ShapeAdaptorVGG(
        11,
        input_size=64,
        out_indices=(4, ),
        init_alphas=[0.3, -0.4, 1.1, 0.0, -2.0]),
}


def flat(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


@pytest.mark.parametrize('fmt', ['onnx', 'export'])
@pytest.mark.parametrize('name', list(BACKBONES))
def test_backbone_exports_match_the_training_forward(name, fmt, tmp_path):
    torch.manual_seed(0)
    model = BACKBONES[name]()
    model.eval()
    learnable = copy.deepcopy(model)
    dynamic = not name.startswith('shape_adaptor')
    suffix = 'onnx' if fmt == 'onnx' else 'pt2'
    result = export_model(
        model,
        str(tmp_path / f'{name}.{suffix}'), (64, 72),
        fmt,
        check_size=(81, 59),
        dynamic=dynamic)
    assert result['switched'] == len(model.dynopools)
    assert all(p.deploy for p in model.dynopools)
    sizes = ((64, 72), (81, 59)) if dynamic else ((64, 72), )
    assert set(result['max_rel_error']) == {f'{h}x{w}' for h, w in sizes}
    assert max(result['max_rel_error'].values()) < 1e-5
    # And the deployed model against the learnable one it came from: the
    # same sizes, the same values (to the interpolation weights' rounding).
    for size in sizes:
        x = torch.randn(1, 3, *size)
        with torch.no_grad():
            for a, b in zip(flat(model(x)), flat(learnable(x))):
                assert a.shape == b.shape
                assert (a - b).abs().max() <= 1e-5 * b.abs().max()


@pytest.mark.parametrize('name', ['vgg', 'resnet', 'mobilenet_v2', 'hrnet'])
def test_static_exports_run_at_their_size(name, tmp_path):
    # A fixed input size: plain int sizes all through, checked at that size;
    # the exported program refuses another size instead of a wrong map.
    torch.manual_seed(0)
    model = BACKBONES[name]()
    result = export_model(
        model,
        str(tmp_path / f'{name}.pt2'), (64, 72),
        'export',
        dynamic=False)
    assert list(result['max_rel_error']) == ['64x72']
    assert result['max_rel_error']['64x72'] < 1e-5
    program = torch.export.load(str(tmp_path / f'{name}.pt2')).module()
    with pytest.raises(Exception):
        program(torch.randn(1, 3, 81, 59))


@pytest.mark.parametrize('options,suffix,checked',
                         [([], 'onnx', 2),
                          (['--format', 'export', '--static'], 'pt2', 1)])
def test_export_tool_on_a_trained_segmentor(tmp_path, demo_cfg, options,
                                            suffix, checked):
    # Our tool from a user's directory: a checkpoint whose alphas moved.
    from mmdynopool.utils import build_model_from_cfg
    cfg = demo_cfg(tmp_path)
    cfg.dump(str(tmp_path / 'cfg.py'))
    _, model = build_model_from_cfg(str(tmp_path / 'cfg.py'))
    with torch.no_grad():
        for p, a in zip(
                model.backbone.dynopools,
            ([2.2, 1.7], [2.6, 1.9], [2.0, 2.0], [1.5, 2.2], [2.0, 2.5])):
            p.alpha.copy_(torch.tensor(a))
    ckpt = tmp_path / 'iter_8.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    tool = osp.join(
        osp.dirname(__file__), '..', '..', 'tools', 'deployment', 'export.py')
    out = subprocess.run([
        sys.executable,
        osp.abspath(tool),
        str(tmp_path / 'cfg.py'),
        str(ckpt), '--shape', '96', '96', *options
    ],
                         cwd=tmp_path,
                         capture_output=True,
                         text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert osp.isfile(tmp_path / f'iter_8.{suffix}')
    assert '5 resizing layers' in out.stdout
    errors = [
        float(line.rsplit('= ', 1)[1]) for line in out.stdout.splitlines()
        if 'max |export - eager|' in line
    ]
    assert len(errors) == checked and max(errors) < 1e-5


def test_bad_format_is_named(tmp_path):
    with pytest.raises(ValueError, match='fmt'):
        export_model(
            DynOPoolVGG(11, out_indices=(4, )), str(tmp_path / 'a'), (32, 32),
            'tflite')
