"""Every config in configs/ parses and builds its model."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                         recursive=True) if '_base_' not in p)


def test_every_config_is_listed():
    assert len(CONFIGS) >= 29


@pytest.mark.parametrize('base', [
    'mmdynopool::voc/hrnet_dynopool_voc.py',
    'mmdynopool::cifar100/resnet50_dynopool-s_cifar100.py'
])
def test_downstream_inheritance(base, tmp_path):
    # What a user's project writes (the package's .mim/configs link); the
    # process must have imported mmdynopool first, as our tools do.
    import mmdynopool  # noqa: F401
    path = tmp_path / 'mine.py'
    path.write_text(f"_base_ = '{base}'\n")
    cfg = Config.fromfile(str(path))
    assert cfg.model.backbone.type.startswith('DynOPool')
    assert cfg.custom_hooks[0].type == 'GMACsLossHook'


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports.imports == ['mmdynopool']
    # Nothing may download at run time.
    assert cfg.model.get('pretrained') is None
    assert 'open-mmlab://' not in cfg.pretty_text
    init_default_scope(cfg.default_scope)  # undone by conftest's fixture
    from mmengine.registry import MODELS
    model = MODELS.build(cfg.model)
    name = osp.basename(path)
    pools = [n for n, _ in model.named_parameters() if n.endswith('alpha')]
    if 'human' in name:
        assert pools == []
    else:
        assert pools, 'a learnable-resizing config has no alpha'
    for hook in cfg.get('custom_hooks', []):
        if hook['type'] == 'GMACsLossHook':
            assert 'dynopool' in name
