"""Config surgery (mmdynopool.engine.config_surgery): each change read
back from the config, "Fix (Final)" round-tripped through a dumped file and
through the inheriting file export_fixed_config_file writes."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmdynopool.analysis import resizing_report
from mmdynopool.engine import (export_fixed_config, export_fixed_config_file,
                               set_input_resolution)
from mmdynopool.utils import build_model_from_cfg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY = osp.join(ROOT, 'configs', 'toy', 'vgg11-slim_{}_1xb64-20e_digits-{}.py')
DEMO = osp.join(ROOT, 'configs', 'demo',
                'fcn_hr16-slim_dynopool_1xb8-600iter_digits-voc-96x96.py')


def test_set_input_resolution_resizes_after_the_crop():
    cfg = Config.fromfile(TOY.format('human', 'stretch-v'))
    new = set_input_resolution(cfg, (24, 20))
    for loader in ('train', 'val', 'test'):
        pipe = new[f'{loader}_dataloader'].dataset.pipeline
        assert pipe[-2] == dict(type='Resize', scale=(20, 24))  # (w, h)
        assert pipe[-1].type == 'PackInputs'
        assert pipe[0].type.endswith('Crop')
    assert len(cfg.train_dataloader.dataset.pipeline) == 2
    with pytest.raises(ValueError, match=r'resolution must be \(H, W\)'):
        set_input_resolution(cfg, (0, 20))
    cfg.val_dataloader.dataset.pipeline = [
        dict(type='CenterCrop', crop_size=4)
    ]
    with pytest.raises(
            ValueError,
            match='val_dataloader.dataset.pipeline '
            'must end with a Pack'):
        set_input_resolution(cfg, (24, 24))


def test_export_fixed_round_trip(tmp_path):
    from mmseg.registry import MODELS
    cfg, model = build_model_from_cfg(DEMO)
    scales = [(0.43, 0.61), (0.55, 0.37), (0.7, 0.5), (0.45, 0.52), (0.5, 0.9)]
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
                      'vgg11-slim_shape-adaptor_1xb64-20e_digits-plain.py')
    cfg, model = build_model_from_cfg(config)
    hook = next(h for h in cfg.custom_hooks if h['type'] == 'ShapeAdaptorHook')
    hook.update(input_size=32, d_limit=6)
    alphas = [1.2, -0.4, 0.3, 2.0]
    with torch.no_grad():
        for sa, a in zip(model.backbone.dynopools, alphas):
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
    assert all(h['type'] != 'ShapeAdaptorHook' for h in reloaded.custom_hooks)
    new = MODELS.build(reloaded.model)
    for sa, a in zip(new.backbone.dynopools, alphas):
        assert sa.fixed and not sa.alpha.requires_grad
        assert float(sa.alpha) == pytest.approx(a)
        assert sa.penalty == pytest.approx(rho)
    for sa in model.backbone.dynopools:  # what the hook would set
        sa.penalty = rho
    x = torch.zeros(1, 3, 32, 32)
    model.eval()
    new.eval()
    with torch.no_grad():
        sizes = [o.shape[-2:] for o in model.backbone(x)]
        assert [o.shape[-2:] for o in new.backbone(x)] == sizes


def _checkpoint_with_scales(config, scales, path):
    """A checkpoint of ``config``'s model with its DynOPools at ``scales``;
    returns the model."""
    _, model = build_model_from_cfg(config)
    with torch.no_grad():
        for p, s in zip(model.backbone.dynopools, scales):
            p.alpha.copy_(1 / torch.tensor(s))
    torch.save({'state_dict': model.state_dict()}, path)
    return model


def _build(cfg):
    from mmengine.registry import MODELS, init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    return model.eval()


def test_export_fixed_config_file(tmp_path):
    """The written config inherits the original (``_base_``), overrides
    only the learned scales, ``fixed=True`` and the hooks, and builds a
    model with the checkpoint's sizes."""
    scales = [(0.43, 0.61), (0.55, 0.37), (0.7, 0.5), (0.45, 0.52), (0.5, 0.9)]
    ckpt = str(tmp_path / 'model.pth')
    model = _checkpoint_with_scales(DEMO, scales, ckpt)
    out = str(tmp_path / 'sub' / 'fixed.py')
    fixed = export_fixed_config_file(DEMO, ckpt, out)
    with open(out) as f:
        text = f.read()
    code = [
        ln for ln in text.splitlines()
        if ln and not ln.startswith((' ', '#', ']', ')'))
    ]
    assert code[0] == f'_base_ = [{osp.relpath(DEMO, osp.dirname(out))!r}]'
    keys = sorted(ln.split(' =')[0] for ln in code[1:])
    assert keys == ['custom_hooks', 'model']
    assert 'train_dataloader' not in text and 'optim_wrapper' not in text
    reloaded = Config.fromfile(out)
    assert reloaded.model.backbone.init_scales == fixed.model.backbone[
        'init_scales']
    for got, want in zip(reloaded.model.backbone.init_scales, scales):
        assert tuple(got) == pytest.approx(want, rel=1e-6)
    assert reloaded.model.backbone.dynopool_cfg.fixed is True
    base = Config.fromfile(DEMO)
    assert [h['type'] for h in reloaded.custom_hooks] == [
        h['type'] for h in base.custom_hooks if h['type'] != 'GMACsLossHook'
    ]
    assert reloaded.train_cfg == base.train_cfg  # inherited, not copied
    new = _build(reloaded)
    for p in new.backbone.dynopools:
        assert p.fixed and not p.alpha.requires_grad
    want = resizing_report(model.backbone, (96, 80))
    got = resizing_report(new.backbone, (96, 80))
    assert [r['out']
            for r in got['layers']] == [r['out'] for r in want['layers']]
    assert got['outputs'] == want['outputs']


def test_export_fixed_config_file_shape_adaptor(tmp_path):
    """Shape Adaptor: a dict that loses keys (``adaptor_cfg``) is replaced
    whole (``_delete_``), so the file builds what export_fixed_config
    makes."""
    config = osp.join(ROOT, 'configs', 'toy',
                      'vgg11-slim_shape-adaptor_1xb64-20e_digits-plain.py')
    cfg, model = build_model_from_cfg(config)
    alphas = [1.2, -0.4, 0.3, 2.0]
    with torch.no_grad():
        for sa, a in zip(model.backbone.dynopools, alphas):
            sa.alpha.fill_(a)
    ckpt = str(tmp_path / 'model.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    out = str(tmp_path / 'fixed.py')
    reloaded = export_fixed_config_file(config, ckpt, out)
    in_memory = export_fixed_config(cfg, model)
    assert reloaded.model.backbone.to_dict() == \
        in_memory.model.backbone.to_dict()
    assert all(h['type'] != 'ShapeAdaptorHook' for h in reloaded.custom_hooks)
    new = _build(reloaded)
    x = torch.zeros(1, 3, 32, 32)
    with torch.no_grad():
        assert [o.shape for o in new.backbone(x)
                ] == [o.shape for o in _build(in_memory).backbone(x)]


def test_export_fixed_config_file_refuses_untrained(tmp_path):
    _, model = build_model_from_cfg(DEMO)
    state = {
        k: v
        for k, v in model.state_dict().items() if not k.endswith('.alpha')
    }
    ckpt = str(tmp_path / 'human.pth')
    torch.save({'state_dict': state}, ckpt)
    with pytest.raises(ValueError, match='no learned alpha'):
        export_fixed_config_file(DEMO, ckpt, str(tmp_path / 'fixed.py'))
