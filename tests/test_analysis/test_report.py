import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmdynopool.analysis import (complexity_report, count_macs,
                                 export_fixed_config, plot_shapes)
from mmdynopool.models import DynOPoolVGG
from mmdynopool.utils import build_model_from_cfg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_totals_and_resizing_cost_by_hand():
    model = DynOPoolVGG(16, out_indices=(4, ))
    model.eval()
    r = complexity_report(model, (224, 224), backbone=model)
    x = torch.zeros(1, 3, 224, 224)
    assert r['gmacs'] == pytest.approx(sum(count_macs(model, x).values()) /
                                       1e9)
    # Each DynOPool output value: 4 queries x 4 MACs + 3 comparisons.
    outputs = [(64, 112), (128, 56), (256, 28), (512, 14), (512, 7)]
    by_hand = sum(c * s * s * 19 for c, s in outputs) / 1e9
    assert r['resize_gmacs'] == pytest.approx(by_hand)
    assert r['resolutions'] == [(224, 224), (112, 112), (56, 56), (28, 28),
                                (14, 14), (7, 7)]
    assert r['params'] == pytest.approx(
        sum(p.numel() for p in model.parameters()) / 1e6)


def test_plot_writes_png(tmp_path):
    out = plot_shapes([[(32, 32), (16, 16), (8, 8)], [(32, 32), (21, 14),
                                                      (10, 7)]],
                      ['human', 'DynOPool'], str(tmp_path / 'shapes.png'),
                      ['0.31 GMACs', '0.36 GMACs'])
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert osp.getsize(out) > 5000


def test_export_fixed_round_trip(tmp_path):
    from mmseg.registry import MODELS
    config = osp.join(ROOT, 'configs', 'demo', 'hrnet_dynopool_digits.py')
    cfg, model = build_model_from_cfg(config)
    scales = [(0.43, 0.61), (0.55, 0.37), (0.7, 0.5), (0.45, 0.52),
              (0.5, 0.9)]
    with torch.no_grad():
        for p, s in zip(model.backbone.dynopools, scales):
            p.alpha.copy_(1 / torch.tensor(s))
    fixed = export_fixed_config(cfg, model)
    path = str(tmp_path / 'fixed.py')
    fixed.dump(path)
    reloaded = Config.fromfile(path)
    assert all(h['type'] != 'GMACsLossHook' for h in reloaded.custom_hooks)
    new = MODELS.build(reloaded.model)
    for old, p in zip(model.backbone.dynopools, new.backbone.dynopools):
        assert p.fixed and not p.alpha.requires_grad
        torch.testing.assert_close(p.alpha, old.alpha, rtol=1e-7, atol=0)
    x = torch.zeros(1, 3, 96, 80)
    new.eval()
    with torch.no_grad():
        sizes_old = [o.shape[-2:] for o in model.backbone(x)]
        sizes_new = [o.shape[-2:] for o in new.backbone(x)]
    assert sizes_old == sizes_new
    with pytest.raises(ValueError, match='DynOPool backbone'):
        export_fixed_config(cfg, torch.nn.Conv2d(1, 1, 1))


def test_export_fixed_shape_adaptor_round_trip(tmp_path):
    """Fix (Final) for Shape Adaptor: learned alphas frozen, the memory
    penalty of Eq. (8) the hook gives them folded in, the hook dropped."""
    import math

    from mmpretrain.registry import MODELS
    config = osp.join(ROOT, 'configs', 'toy',
                      'vgg11-slim_shape-adaptor_digits-plain.py')
    cfg, model = build_model_from_cfg(config)
    hook = next(h for h in cfg.custom_hooks
                if h['type'] == 'ShapeAdaptorHook')
    hook.update(input_size=32, d_limit=6)
    alphas = [1.2, -0.4, 0.3, 2.0]
    with torch.no_grad():
        for sa, a in zip(model.backbone.shape_adaptors, alphas):
            sa.alpha.fill_(a)
    # By hand: s_i = 0.5 + 0.5 sigmoid(a_i), D_cout = 32 prod s_i = 9.67
    # > 6, rho = (6 / D_cout) ** (1 / 4).
    s = [0.5 + 0.5 / (1 + math.exp(-a)) for a in alphas]
    rho = (6 / (32 * math.prod(s)))**0.25
    assert rho < 1
    fixed = export_fixed_config(cfg, model)
    path = str(tmp_path / 'fixed.py')
    fixed.dump(path)
    reloaded = Config.fromfile(path)
    assert all(h['type'] != 'ShapeAdaptorHook'
               for h in reloaded.custom_hooks)
    new = MODELS.build(reloaded.model)
    for sa, a in zip(new.backbone.shape_adaptors, alphas):
        assert sa.fixed and not sa.alpha.requires_grad
        assert float(sa.alpha) == pytest.approx(a)
        assert sa.penalty == pytest.approx(rho)
    for sa in model.backbone.shape_adaptors:  # what the hook would set
        sa.penalty = rho
    x = torch.zeros(1, 3, 32, 32)
    model.eval()
    new.eval()
    with torch.no_grad():
        sizes = [o.shape[-2:] for o in model.backbone(x)]
        assert [o.shape[-2:] for o in new.backbone(x)] == sizes


def test_built_model_runs_with_its_memory_penalty(tmp_path):
    # A Shape Adaptor config with a memory limit: the analysis tools see
    # the penalised shape the test tool evaluates (Eq. 8), not rho = 1.
    config = osp.join(ROOT, 'configs', 'toy',
                      'vgg11-slim_shape-adaptor_digits-plain.py')
    path = tmp_path / 'limited.py'
    path.write_text(
        f'_base_ = {config!r}\n'
        "custom_hooks = [dict(type='ShapeAdaptorHook', alpha_interval=2,\n"
        "                     input_size=32, d_limit=6)]\n")
    _, model = build_model_from_cfg(str(path))
    # Eq. 5 starts every adaptor at s = (8 / 32) ** (1 / 4): D_cout = 8 > 6.
    rho = (6 / 8)**0.25
    for sa in model.backbone.shape_adaptors:
        assert sa.penalty == pytest.approx(rho, rel=1e-4)
