"""Every config in configs/ parses and builds its model."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    p for p in glob.glob(
        osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p)


def test_every_config_is_listed():
    assert len(CONFIGS) >= 33


@pytest.mark.parametrize('base', [
    'mmdynopool::voc/fcn_hr48_dynopool_1xb16-100e_voc12aug-480x480.py',
    'mmdynopool::cifar100/resnet50_dynopool-s_1xb128-250e_cifar100.py'
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


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports.imports == ['mmdynopool']
    assert cfg.randomness.seed is not None  # the same config, the same run
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


@pytest.mark.parametrize(
    'name,size,paper',
    [
        ('cifar100/vgg16_human_1xb128-200e_cifar100.py', 32, 0.31),
        ('cifar100/resnet50_human_1xb128-200e_cifar100.py', 32, 1.31),
        ('cifar100/mobilenet-v2_human_1xb128-200e_cifar100.py', 32, 0.09),
        ('imagenet/vgg16_human_4xb64-100e_in1k.py', 224, 15.39),
        ('imagenet/resnet50_human_4xb64-100e_in1k.py', 224, 4.11),
        ('imagenet/mobilenet-v2_human_4xb64-100e_in1k.py', 224, 0.31),
        # DynOPool Table 4, FCN HRNet-W48 on VOC at the configs' 480x480 crop.
        ('voc/fcn_hr48_human_1xb16-100e_voc12aug-480x480.py', 480, 82.55),
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
    gmacs = sum(
        count_macs(model, x, lambda t: model(t, mode='tensor')).values()) / 1e9
    assert gmacs == pytest.approx(paper, rel=0.04)


SUB_CONFIGS = [
    p for p in CONFIGS if osp.dirname(osp.relpath(p, ROOT)) != 'configs'
]


def _registry_for(path: str):
    """The root registry the Runner (or the parent's builder) uses for the
    typed dict at ``path`` (dotted keys)."""
    from mmengine import registry as R
    last = path.split('.')[-1].split('[')[0]
    table = [('model', R.MODELS), ('data_preprocessor', R.MODELS),
             ('pipeline', R.TRANSFORMS), ('dataset', R.DATASETS),
             ('sampler', R.DATA_SAMPLERS), ('evaluator', R.METRICS),
             ('hooks', R.HOOKS), ('vis_backends', R.VISBACKENDS),
             ('visualizer', R.VISUALIZERS),
             ('param_scheduler', R.PARAM_SCHEDULERS),
             ('optimizer', R.OPTIMIZERS), ('optim_wrapper', R.OPTIM_WRAPPERS),
             ('_cfg', R.LOOPS), ('log_processor', R.LOG_PROCESSORS)]
    for key, reg in table:
        if key in path.split('.')[0] or key == last or last.endswith(key):
            return reg
    for key, reg in table:
        if key in path:
            return reg
    return None


def _typed_dicts(x, path, scope, out):
    if isinstance(x, dict):
        scope = x.get('_scope_', scope)
        if isinstance(x.get('type'), str):
            out.append((path, x['type'], scope))
            if path.split('.')[0] == 'model' and path != 'model':
                return  # built by the model under its own scope
        for k, v in x.items():
            _typed_dicts(v, f'{path}.{k}' if path else k, scope, out)
    elif isinstance(x, (list, tuple)):
        for i, v in enumerate(x):
            _typed_dicts(v, f'{path}[{i}]', scope, out)


@pytest.mark.parametrize(
    'path', SUB_CONFIGS, ids=[osp.relpath(p, ROOT) for p in SUB_CONFIGS])
def test_every_config_inherits_through_package_scope(path, tmp_path):
    """A user's `_base_ = 'mmdynopool::<config>'`: every typed dict must
    resolve in the registry the Runner builds it from, under the scope
    mmengine gives it (an inherited dict without `_scope_` gets
    'mmdynopool', which has no registry of its own)."""
    import mmdynopool  # noqa: F401  (mmengine's package table)
    rel = osp.relpath(path, osp.join(ROOT, 'configs'))
    mine = tmp_path / 'mine.py'
    mine.write_text(f"_base_ = 'mmdynopool::{rel}'\n")
    cfg = Config.fromfile(str(mine))
    found = []
    _typed_dicts(cfg._cfg_dict.to_dict(), '', cfg.get('default_scope'), found)
    assert found
    missing = []
    for where, type_name, scope in found:
        parts = where.split('.')
        # Not built from a registry: the model's own (built with it),
        # dicts inside a *_cfg (op specs such as mmdet's tta_cfg.nms), and
        # top-level *_cfg other than the loops.
        if where.startswith(('model.', 'data_preprocessor')) or any(
                p.endswith('_cfg')
                for p in parts[1:]) or ('_cfg' in parts[0] and parts[0] not in
                                        ('train_cfg', 'val_cfg', 'test_cfg')):
            continue
        registry = _registry_for(where)
        assert registry is not None, where
        with registry.switch_scope_and_registry(scope) as reg:
            if reg.get(type_name) is None:
                missing.append(f'{where}: {type_name} (scope {scope})')
    assert not missing, missing


# The papers' protocol, by hand: DynOPool Sec. 5.1 / Table B (DynOPool 250
# epochs on CIFAR-100 and 120 on ImageNet, its baselines 200 / 100) and the
# Shape Adaptor authors' runs (Nesterov SGD for weights and alpha, alpha every
# 20 batches on small images and 1500 on ImageNet, D_limit 15 on ImageNet,
# weight decay 5e-4 CIFAR and Aircraft / 1e-4 ImageNet / 4e-5 MobileNetV2,
# D_limit 30 on fine-grained 224 px data).
PROTOCOL = {
    # dataset: (human / Shape Adaptor epochs, DynOPool epochs, alpha
    # interval, D_limit, Shape Adaptor weight decay)
    'cifar100': (200, 250, 20, None, 5e-4),
    'imagenet': (100, 120, 1500, 15, 1e-4),
    'aircraft': (200, 250, 20, 30, 5e-4),
}
PROTOCOL_CONFIGS = [
    p for p in CONFIGS if osp.basename(osp.dirname(p)) in PROTOCOL
]


@pytest.mark.parametrize(
    'path',
    PROTOCOL_CONFIGS,
    ids=[osp.relpath(p, ROOT) for p in PROTOCOL_CONFIGS])
def test_papers_protocol(path):
    cfg = Config.fromfile(path)
    name = osp.basename(path)
    base_epochs, dyno_epochs, interval, d_limit, sa_decay = PROTOCOL[
        osp.basename(osp.dirname(path))]
    epochs = dyno_epochs if 'dynopool' in name else base_epochs
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.param_scheduler.T_max == epochs
    if 'shape-adaptor' not in name:
        assert not cfg.optim_wrapper.optimizer.get('nesterov', False)
        return
    assert cfg.optim_wrapper.optimizer.nesterov is True
    decay = 4e-5 if name.startswith('mobilenet') else sa_decay
    assert cfg.optim_wrapper.optimizer.weight_decay == decay
    hook = next(h for h in cfg.custom_hooks if h.type == 'ShapeAdaptorHook')
    assert hook.alpha_interval == interval
    assert hook.get('d_limit') == d_limit
    assert 'alpha_optimizer' not in hook  # the authors' Nesterov SGD
    assert cfg.model_wrapper_cfg.find_unused_parameters is True


def test_untapped_efficiency_preset_is_the_papers():
    # Untapped Potential Sec. 4.6: ResNet-50 (ABCD), strides {1, 2, 3, 4},
    # kernel sizes {1, 3}.
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'untapped',
                 'resnet50_untapped-efficiency_8xb32-100e_in1k.py'))
    assert cfg.oracle.attributes == ('stride', 'kernel_size')
    assert cfg.oracle.options == dict(stride=(1, 2, 3, 4), kernel_size=(1, 3))


@pytest.mark.parametrize('target,human,size,scope', [
    ('demo/fcn_hr16-slim_dynopool-target_1xb8-600iter_digits-voc-96x96.py',
     'demo/fcn_hr16-slim_human_1xb8-600iter_digits-voc-96x96.py', 96, 'mmseg'),
    ('digits_det/retinanet_r18-slim_dynopool_1xb8-1200iter_digits-coco-'
     '128x128.py',
     'digits_det/retinanet_r18-slim_human_1xb8-1200iter_digits-coco-'
     '128x128.py', 128, 'mmdet'),
])
def test_target_configs_name_the_human_cost(target, human, size, scope):
    """A config trained "at the human cost" names that cost as a number:
    the human config's exact conv + linear GMACs (backbone, neck, heads) on
    one image of the configs' size."""
    from mmdynopool.analysis.complexity import exact_config_gmacs
    cfg = Config.fromfile(osp.join(ROOT, 'configs', target))
    hook = next(h for h in cfg.custom_hooks if h.type == 'GMACsLossHook')
    assert tuple(hook.input_size) == (size, size)
    cost = exact_config_gmacs(
        Config.fromfile(osp.join(ROOT, 'configs', human)), (size, size), scope)
    assert hook.target_gmacs == pytest.approx(cost, rel=1e-6)
