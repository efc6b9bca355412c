"""The documentation as a newcomer uses it: the README's recipes build and
run, the README stays a front door, and every relative link (file and
anchor) of the README, docs/ and the config folders' READMEs resolves."""
import glob
import os.path as osp
import re

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
README = osp.join(ROOT, 'README.md')
PAGES = sorted(
    [README] +
    glob.glob(osp.join(ROOT, 'docs', '**', '*.md'), recursive=True) +
    glob.glob(osp.join(ROOT, 'configs', '*', 'README.md')))
LINK = re.compile(r'\[[^\]]*\]\(([^)\s]+)\)')


def _read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def _blocks(text, lang='python'):
    return re.findall(rf'```{lang}\n(.*?)```', text, re.S)


def _prose(text):
    """``text`` without its fenced code blocks."""
    return re.sub(r'```.*?```', '', text, flags=re.S)


def _slug(heading):
    """GitHub's anchor of a markdown heading."""
    heading = re.sub(r'[^\w\- ]', '', heading.strip().lower())
    return heading.replace(' ', '-')


def _anchors(path):
    return {
        _slug(m)
        for m in re.findall(r'^#+ (.*)$', _prose(_read(path)), re.M)
    }


def test_readme_is_a_front_door():
    text = _read(README)
    assert len(text.splitlines()) <= 250
    # Status and limits come before everything else but the introduction.
    heads = re.findall(r'^## (.*)$', text, re.M)
    assert heads[0] == 'Status and limits' and 'Quick start' in heads
    assert 'No GPU has ever run this code' in text
    for command in ('make demo', 'make test'):
        assert command in text


@pytest.mark.parametrize('page', PAGES, ids=lambda p: osp.relpath(p, ROOT))
def test_links_resolve(page):
    broken = []
    for target in LINK.findall(_prose(_read(page))):
        if re.match(r'[a-z]+:', target):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition('#')
        full = osp.normpath(osp.join(osp.dirname(page), path)) if path \
            else page
        if not osp.exists(full):
            broken.append(target)
        elif anchor and full.endswith('.md') and anchor not in _anchors(full):
            broken.append(target)
    assert broken == []


def test_ci_runs_the_readme_test_command_and_lint():
    ci = _read(osp.join(ROOT, '.ci', 'run'))
    assert 'make test' in ci and ci.index('make test') < ci.index('make lint')


def _recipe(base):
    return next(b for b in _blocks(_read(README)) if f"'{base}::" in b)


@pytest.mark.parametrize('base,backbone', [('mmseg', 'DynOPoolHRNet'),
                                           ('mmpretrain', 'DynOPoolResNet')])
def test_readme_config_recipes_build(base, backbone, tmp_path):
    """The two "Add DynOPool to your config" snippets: the stock config's
    model builds with our backbone (no weights downloaded), the hooks build,
    and alpha gets its own learning rate without weight decay."""
    from mmengine.config import Config
    from mmengine.registry import HOOKS, MODELS, init_default_scope

    from mmdynopool.models.layers import DynOPool2d
    path = tmp_path / 'my_config.py'
    path.write_text(_recipe(base))
    cfg = Config.fromfile(str(path))
    init_default_scope(cfg.default_scope)
    assert cfg.model.get('pretrained') is None
    model = MODELS.build(cfg.model)
    assert type(model.backbone).__name__ == backbone
    assert any(isinstance(m, DynOPool2d) for m in model.modules())
    alpha = cfg.optim_wrapper.paramwise_cfg.custom_keys['.alpha']
    assert alpha['decay_mult'] == 0.0 and 0 < alpha['lr_mult'] < 1
    hooks = [HOOKS.build(dict(h)) for h in cfg.custom_hooks]
    gmacs = next(h for h in hooks if type(h).__name__ == 'GMACsLossHook')
    crop = tuple(cfg.get('crop_size', (224, 224)))
    assert gmacs.input_size == crop
    for h in hooks:
        if type(h).__name__ == 'ShapeLoggingHook':
            assert tuple(h.input_size) == crop


def test_readme_plain_pytorch_runs():
    """The plain PyTorch example, on 64x64 inputs and two batches."""
    code = next(
        b for b in _blocks(_read(README)) if 'convert_to_dynopool(model)' in b)
    code = code.replace('(224, 224)', '(64, 64)')
    torch.manual_seed(0)
    loader = [(torch.randn(2, 3, 64, 64), torch.tensor([0, 1]))] * 2
    scope = dict(loader=loader)
    exec(compile(code, 'README.md', 'exec'), scope)
    assert scope['counter'].pools and scope['target'].settled is None
    assert all(p.grad is not None for p in scope['alphas'])
