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
    assert len(CONFIGS) >= 33


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
    if 'human' in name or 'untapped' in path:  # no learnable resizing
        assert pools == []
    else:
        assert pools, 'a learnable-resizing config has no alpha'
    for hook in cfg.get('custom_hooks', []):
        if hook['type'] == 'GMACsLossHook':
            assert 'dynopool' in name


@pytest.mark.parametrize('name,size,paper', [
    ('cifar100/vgg16_human_cifar100.py', 32, 0.31),
    ('cifar100/resnet50_human_cifar100.py', 32, 1.31),
    ('cifar100/mobilenet_v2_human_cifar100.py', 32, 0.09),
    ('imagenet/vgg16_human_imagenet.py', 224, 15.39),
    ('imagenet/resnet50_human_imagenet.py', 224, 4.11),
    ('imagenet/mobilenet_v2_human_imagenet.py', 224, 0.31),
])
def test_human_gmacs_match_the_paper(name, size, paper):
    """DynOPool Table 1's GMACs of the human models (conv + linear MACs,
    one image, FlopCounterMode), within 4 %: the configs build the papers'
    networks (e.g. VGG-16 on CIFAR with 4 pools and one FC layer)."""
    import torch

    from mmdynopool.analysis import count_macs
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    init_default_scope(cfg.default_scope)
    from mmengine.registry import MODELS
    model = MODELS.build(cfg.model).eval()
    x = torch.zeros(1, 3, size, size)
    gmacs = sum(count_macs(model, x,
                           lambda t: model(t, mode='tensor')).values()) / 1e9
    assert gmacs == pytest.approx(paper, rel=0.04)
