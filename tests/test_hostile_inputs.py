"""Hostile inputs across layers, backbones, converters, hooks, datasets and
tools: each must end in a ValueError / TypeError that names the parameter,
raised where the value enters. Cases that could crash the process (zero-size
or integer tensors into the fused kernel, the command-line tools) run in a
subprocess, so a segfault fails the case instead of the suite."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from torch import nn

from mmdynopool.datasets import ToyDigits, make_toy_images
from mmdynopool.datasets.toy_digits import make_pairs
from mmdynopool.engine import GMACsLossHook
from mmdynopool.engine.hooks import ShapeLoggingHook
from mmdynopool.models import DynOPool2d, dynopool2d
from mmdynopool.models.backbones import (DynOPoolHRNet, DynOPoolResNet,
                                         DynOPoolVGG)
from mmdynopool.models.convert import convert_to_dynopool
from mmdynopool.models.layers import DynamicConv2d
from mmdynopool.utils import read_checkpoint

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
NAN, INF = float('nan'), float('inf')


def tiny_extra(**stage4):
    s4 = dict(
        num_modules=1,
        num_branches=2,
        block='BASIC',
        num_blocks=(1, 1),
        num_channels=(8, 16))
    s4.update(stage4)
    return dict(
        stage1=dict(
            num_modules=1,
            num_branches=1,
            block='BOTTLENECK',
            num_blocks=(1, ),
            num_channels=(8, )),
        stage2=dict(
            num_modules=1,
            num_branches=2,
            block='BASIC',
            num_blocks=(1, 1),
            num_channels=(8, 16)),
        stage3=dict(
            num_modules=1,
            num_branches=2,
            block='BASIC',
            num_blocks=(1, 1),
            num_channels=(8, 16)),
        stage4=s4)


CASES = []


def case(name, fn, error, match):
    CASES.append(pytest.param(fn, error, match, id=name))


# --- DynOPool2d: constructor -------------------------------------------
for v in (0, -1, NAN, INF, -INF, 17, (0.5, 0), (0.5, -1), (0.5, NAN), (20,
                                                                       0.5)):
    case(
        f'init_scale={v}',
        lambda v=v: DynOPool2d(init_scale=v),
        ValueError,
        'init_scale')
for v in ('0.5', None, True, (0.5, ), (0.5, 0.5, 0.5), [0.5, 'a'], {}):
    case(
        f'init_scale={v!r}',
        lambda v=v: DynOPool2d(init_scale=v),
        TypeError,
        'init_scale')
for v in ('min', 'MAX', '', None, 1):
    case(f'mode={v!r}', lambda v=v: DynOPool2d(mode=v), ValueError, 'mode')
for v in ('symmetric', '', None, 1, 'CENTRAL'):
    case(
        f'position_grad={v!r}',
        lambda v=v: DynOPool2d(position_grad=v),
        ValueError,
        'position_grad')
for v in ('no', 1, 0, None, 'True'):
    case(f'fixed={v!r}', lambda v=v: DynOPool2d(fixed=v), TypeError, 'fixed')
for v in (torch.int64, torch.bool, 'float32', torch.complex64):
    case(f'dtype={v}', lambda v=v: DynOPool2d(dtype=v), TypeError, 'dtype')

# --- dynopool2d: inputs and alpha (in-process ones) ----------------------
X = torch.rand(1, 2, 8, 8)
for shape in ((3, 8, 8), (1, 1, 1, 3, 3), (8, 8)):
    case(
        f'input shape {shape}',
        lambda s=shape: dynopool2d(torch.rand(*s), torch.tensor([2., 2.])),
        ValueError,
        'input')
for a in ([-1., 2.], [0., 2.], [NAN, 2.], [INF, 2.]):
    case(
        f'alpha={a}',
        lambda a=a: dynopool2d(X, torch.tensor(a)),
        ValueError,
        'alpha')
for a in (torch.tensor([2.]), torch.tensor([2., 2., 2.]), torch.tensor([2,
                                                                        2])):
    case(
        f'alpha {a.dtype} {tuple(a.shape)}',
        lambda a=a: dynopool2d(X, a),
        TypeError,
        'alpha')
case('alpha over MAX_SCALE', lambda: dynopool2d(X, torch.tensor([.01, 2.])),
     ValueError, 'MAX_SCALE')
case('input not a tensor', lambda: dynopool2d([[1.0]], torch.tensor([2., 2.])),
     TypeError, 'input')
case('alpha not a tensor', lambda: dynopool2d(X, [2., 2.]), TypeError, 'alpha')
case('mode in function', lambda: dynopool2d(X, torch.tensor([2., 2.]), 'sum'),
     ValueError, 'mode')
case('position_grad in function',
     lambda: dynopool2d(X, torch.tensor([2., 2.]), 'max', 'left'), ValueError,
     'position_grad')

# --- DynamicConv2d -------------------------------------------------------
for v in (0, -1, 0.3, 'a', [], True):
    strides = v if isinstance(v, (str, list)) else (v, )
    case(
        f'strides={strides!r}',
        lambda s=strides: DynamicConv2d(3, 3, 3, padding=1, strides=s),
        ValueError,
        'strides')
for v in ((0, 1), (-1, ), (1.5, ), (), 'ab', (True, )):
    case(
        f'dilations={v!r}',
        lambda v=v: DynamicConv2d(3, 3, 3, padding=1, dilations=v),
        ValueError,
        'dilations')
for v in ((2, 3), (0, ), (4, ), (), (3.0, ), (-1, )):
    case(
        f'kernel_sizes={v!r}',
        lambda v=v: DynamicConv2d(3, 3, 3, padding=1, kernel_sizes=v),
        ValueError,
        'kernel_sizes')
case('even trained kernel', lambda: DynamicConv2d(3, 3, 2), ValueError,
     'kernel')

# --- GMACsLossHook -------------------------------------------------------
for v in (-1, INF, NAN, -INF):
    case(
        f'loss_weight={v}',
        lambda v=v: GMACsLossHook(v, (8, 8)),
        ValueError,
        'loss_weight')
for v in ('0.1', None, True, [0.1]):
    case(
        f'loss_weight={v!r}',
        lambda v=v: GMACsLossHook(v, (8, 8)),
        TypeError,
        'loss_weight')
for v in (32, (32, ), (0, 32), (32.5, 32), ('a', 32), None, (True, 32),
          (32, 32, 3)):
    case(
        f'input_size={v!r}',
        lambda v=v: GMACsLossHook(1.0, v),
        ValueError,
        'input_size')
for v in (0, -1, 2.5, True):
    case(
        f'in_channels={v!r}',
        lambda v=v: GMACsLossHook(1.0, (8, 8), in_channels=v),
        ValueError,
        'in_channels')
for v in ('mmacs', None, 'Batch'):
    case(
        f'count={v!r}',
        lambda v=v: GMACsLossHook(1.0, (8, 8), count=v),
        ValueError,
        'count')
case('loss_name', lambda: GMACsLossHook(1.0, (8, 8), loss_name='gmacs'),
     ValueError, 'loss_name')

# --- ShapeLoggingHook ----------------------------------------------------
for v in (0, -1, 2.5, '10', True, None):
    case(
        f'interval={v!r}',
        lambda v=v: ShapeLoggingHook(interval=v),
        ValueError,
        'interval')
for v in ((0, 32), 32, (32, ), (32.5, 32), 'ab'):
    case(
        f'logging input_size={v!r}',
        lambda v=v: ShapeLoggingHook(input_size=v),
        ValueError,
        'input_size')

# --- backbones -----------------------------------------------------------
for v in (5, -2, 'a', 1.5, True):
    case(
        f'ResNet frozen_stages={v!r}',
        lambda v=v: DynOPoolResNet(18, frozen_stages=v),
        ValueError,
        'frozen_stages')
for v in (6, -2):
    case(
        f'VGG frozen_stages={v}',
        lambda v=v: DynOPoolVGG(11, frozen_stages=v),
        ValueError,
        'frozen_stages')
for v in (5, -2):
    case(
        f'HRNet frozen_stages={v}',
        lambda v=v: DynOPoolHRNet(tiny_extra(), frozen_stages=v),
        ValueError,
        'frozen_stages')
for v in ([0.5, 0.5], 'abc', [0.5] * 6):
    case(
        f'ResNet init_scales={v!r}',
        lambda v=v: DynOPoolResNet(18, init_scales=v),
        ValueError,
        'init_scales')
case('ResNet init_scales=-1', lambda: DynOPoolResNet(18, init_scales=-1),
     ValueError, 'init_scale')
case('ResNet depth=42', lambda: DynOPoolResNet(42), KeyError, 'depth')
case('VGG depth=12', lambda: DynOPoolVGG(12), KeyError, 'depth')
for name, kw in (('num_modules', dict(num_modules=0)), ('num_branches',
                                                        dict(num_branches=0)),
                 ('num_channels', dict(num_channels=(0, 8))),
                 ('num_blocks', dict(num_blocks=(1, 0))),
                 ('block', dict(block='FOO')), ('num_channels',
                                                dict(num_channels=(8, )))):
    case(
        f'HRNet stage4 {kw}',
        lambda kw=kw: DynOPoolHRNet(tiny_extra(**kw)),
        ValueError,
        name)
case('HRNet extra not a dict', lambda: DynOPoolHRNet([1]), TypeError, 'extra')
case(
    'HRNet stage4 missing', lambda: DynOPoolHRNet({
        k: v
        for k, v in tiny_extra().items() if k != 'stage4'
    }), ValueError, 'stage4')

# --- convert_to_dynopool -------------------------------------------------
for name, args, err, match in (('None', (None, ), TypeError, 'model'),
                               ('a string', ('resnet18', ), TypeError,
                                'model'), ('skip a string',
                                           (nn.Conv2d(3, 3, 3, 2), True, None,
                                            None, 'x'), TypeError, 'skip'),
                               ('skip unknown', (nn.Conv2d(3, 3, 3,
                                                           2), True, None,
                                                 None, ['nope']), ValueError,
                                'skip'), ('skip not names',
                                          (nn.Conv2d(3, 3, 3, 2), True, None,
                                           None, [1]), TypeError, 'skip')):
    case(f'convert {name}', lambda a=args: convert_to_dynopool(*a), err, match)

# --- datasets ------------------------------------------------------------
for v in ('wide', '', None, 'stretch'):
    case(
        f'ToyDigits variant={v!r}',
        lambda v=v: ToyDigits(v),
        ValueError,
        'variant')
case('ToyDigits split', lambda: ToyDigits('plain', 'test'), ValueError,
     'split')
case('ToyDigits num_train', lambda: ToyDigits('plain', num_train=4900),
     ValueError, 'num_train')
case('make_toy_images float',
     lambda: make_toy_images(torch.zeros(2, 28, 28).numpy(), 'plain'),
     ValueError, 'uint8')
case(
    'make_toy_images pairs', lambda: make_toy_images(
        torch.zeros(2, 28, 28, dtype=torch.uint8).numpy(), 'pairs'),
    ValueError, 'variant')
case(
    'make_pairs one image',
    lambda: make_pairs(torch.zeros(1, 28, 28, dtype=torch.uint8).numpy(), [1]),
    ValueError, 'make_pairs')


# --- issue 23: the layers, backbones, converters and hooks ---------------
def _shape_adaptor(**kw):
    from mmdynopool.models import ShapeAdaptor
    return ShapeAdaptor(**kw)


for kw, err, match in ((dict(penalty=5), ValueError,
                        r'penalty \(rho\) must be in \(0, 1\]'),
                       (dict(penalty=1.01), ValueError,
                        'penalty'), (dict(penalty='a'), TypeError, 'penalty'),
                       (dict(residual='no'), TypeError, 'residual'),
                       (dict(residual=None), TypeError,
                        'residual'), (dict(r1='a'), TypeError,
                                      'r1'), (dict(r2=[1]), TypeError, 'r2'),
                       (dict(init_alpha='x'), TypeError, 'init_alpha'),
                       (dict(init_alpha=None), TypeError, 'init_alpha')):
    case(f'ShapeAdaptor {kw}', lambda kw=kw: _shape_adaptor(**kw), err, match)


def _set_option(**kw):
    DynamicConv2d(3, 3, 3, padding=1).set_option(**kw)


for kw in (dict(kernel_size=5.0), dict(dilation=2.0), dict(stride=2.0),
           dict(kernel_size=True), dict(stride=(1.0, 2))):
    case(
        f'set_option {kw}',
        lambda kw=kw: _set_option(**kw),
        TypeError,
        next(iter(kw)))
case('VGG num_classes=10', lambda: DynOPoolVGG(11, num_classes=10), ValueError,
     'num_classes')


def _mobilenet(v):
    from mmdynopool.models.backbones import DynOPoolMobileNetV2
    return DynOPoolMobileNetV2(widen_factor=v)


for v, err in ((0, ValueError), (-1, ValueError), (NAN, ValueError),
               ('a', TypeError), (True, TypeError), (None, TypeError)):
    case(
        f'MobileNetV2 widen_factor={v!r}',
        lambda v=v: _mobilenet(v),
        err,
        'widen_factor')
case(
    'convert a size-changing pool', lambda: convert_to_dynopool(
        nn.Sequential(nn.MaxPool2d(3, 2)),
        example_input=torch.zeros(1, 3, 8, 8)), ValueError,
    'MaxPool2d kernel 3')
case('convert a Conv3d only',
     lambda: convert_to_dynopool(nn.Sequential(nn.Conv3d(3, 3, 3, 2))),
     ValueError, 'Conv3d')


def _convert_twice():
    from mmpretrain.models.backbones import ResNet_CIFAR

    from mmdynopool.models.dynamic import convert_to_dynamic
    model = ResNet_CIFAR(18, stem_channels=4, base_channels=4)
    convert_to_dynamic(model)
    convert_to_dynamic(model)


case('convert_to_dynamic twice', _convert_twice, ValueError,
     'already has dynamic layers')


def _rof(**kw):
    from mmdynopool.engine.hooks import RandomOptionHook
    return RandomOptionHook(**kw)


for v, err in ((1.7, TypeError), ('1', TypeError), (True, TypeError),
               (-1, ValueError)):
    case(f'RandomOptionHook seed={v!r}', lambda v=v: _rof(seed=v), err, 'seed')
case('RandomOptionHook layers', lambda: _rof(layers='XYZ'), ValueError,
     'layers')


def _sa_hook(**kw):
    from mmdynopool.engine.hooks import ShapeAdaptorHook
    return ShapeAdaptorHook(**kw)


case('ShapeAdaptorHook misspelt optimizer',
     lambda: _sa_hook(alpha_optimizer=dict(type='SDG', lr=0.1)), ValueError,
     "alpha_optimizer type 'SDG'")
case('ShapeAdaptorHook misspelt scheduler',
     lambda: _sa_hook(alpha_scheduler=dict(type='Cosine')), ValueError,
     "alpha_scheduler type 'Cosine'")
case('ShapeAdaptorHook penalty_timing',
     lambda: _sa_hook(penalty_timing='later'), ValueError, 'penalty_timing')

# --- checkpoints and studies ---------------------------------------------
for v in (None, '/nonexistent.pth', ROOT):
    case(
        f'read_checkpoint({v!r})',
        lambda v=v: read_checkpoint(v),
        ValueError,
        'checkpoint')


def _repro(name):
    """A module of tools/repro/ (they import each other by name)."""
    import importlib
    path = osp.join(ROOT, 'tools', 'repro')
    if path not in sys.path:
        sys.path.insert(0, path)
    return importlib.import_module(name)


def _toy(**kw):
    return _repro('toy_study').run_toy_studies('/tmp/never_written', **kw)


for kw, match in ((dict(studies=['tile']), 'studies'), (dict(studies=[]),
                                                        'studies'),
                  (dict(seeds=0), 'seeds'), (dict(jobs=True), 'jobs'),
                  (dict(epochs=0), 'epochs'), (dict(epochs=True), 'epochs')):
    case(f'run_toy_studies {kw}', lambda kw=kw: _toy(**kw), ValueError, match)
for v in (0, -3, 2.5, True):
    case(
        f'run_demo iters={v!r}',
        lambda v=v: _repro('demo_runs').run_demo('/tmp/never_written', v),
        ValueError,
        'iters')


@pytest.mark.parametrize('fn,error,match', CASES)
def test_in_process(fn, error, match):
    with pytest.raises(error, match=match):
        fn()


# --- cases that could crash the process: each in a subprocess -------------
KERNEL = [
    ('zero height', 'torch.rand(1, 3, 0, 8)', 'ValueError', 'input'),
    ('zero width', 'torch.rand(1, 3, 8, 0)', 'ValueError', 'input'),
    ('zero both', 'torch.rand(1, 3, 0, 0)', 'ValueError', 'input'),
    ('uint8', 'torch.randint(0, 255, (1, 3, 8, 8), dtype=torch.uint8)',
     'TypeError', 'input'),
    ('int64', 'torch.randint(0, 9, (1, 3, 8, 8))', 'TypeError', 'input'),
    ('bool', 'torch.rand(1, 3, 8, 8) > 0.5', 'TypeError', 'input'),
    ('complex', 'torch.rand(1, 3, 8, 8, dtype=torch.complex64)', 'TypeError',
     'input'),
    ('init_scale 1e4 on 8x8', None, 'ValueError', 'init_scale'),
]
DEMO = 'configs/demo/fcn_hr16-slim_dynopool_1xb8-600iter_digits-voc-96x96.py'
# (name, argv, the message, how it ends: 'usage' = argparse's error, no
# traceback; an exception class = its last traceback line)
TOOLS = [
    ('get_flops --shape 0 0',
     ['tools/analysis/get_flops.py', DEMO, '--shape', '0',
      '0'], '--shape', 'usage'),
    ('toy_studies --epochs 0', ['tools/repro/toy_studies.py', '--epochs',
                                '0'], '--epochs', 'usage'),
    ('demo --iters 0', ['tools/demo.py', '--iters', '0'], '--iters', 'usage'),
    ('train --launcher pytorch outside torchrun',
     ['tools/train.py', DEMO, '--launcher',
      'pytorch'], '--launcher pytorch needs', 'ValueError'),
    ('test with a missing checkpoint',
     ['tools/test.py', DEMO, '/nonexistent/iter_1.pth'
      ], "checkpoint '/nonexistent/iter_1.pth'", 'ValueError'),
]


def _env():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
    }
    env.update(OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    return env


@pytest.mark.parametrize(
    'name,make,error,match', KERNEL, ids=[k[0] for k in KERNEL])
def test_kernel_inputs_in_a_subprocess(name, make, error, match):
    body = ('DynOPool2d(init_scale=1e4)(torch.rand(1, 3, 8, 8))'
            if make is None else f'DynOPool2d()({make})')
    code = ('import torch\nfrom mmdynopool.models import DynOPool2d\n'
            f'try:\n    {body}\nexcept {error} as e:\n'
            f'    assert {match!r} in str(e), str(e)\n'
            '    print("REFUSED", e)\nelse:\n    raise SystemExit(5)\n')
    proc = subprocess.run([sys.executable, '-c', code],
                          env=_env(),
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert 'REFUSED' in proc.stdout


@pytest.mark.parametrize(
    'name,argv,match,ends', TOOLS, ids=[t[0] for t in TOOLS])
def test_tools_in_a_subprocess(name, argv, match, ends):
    proc = subprocess.run([sys.executable, *argv],
                          cwd=ROOT,
                          env=_env(),
                          capture_output=True,
                          text=True,
                          timeout=300)
    err = proc.stderr
    assert proc.returncode not in (0, -11), err[-2000:]
    assert match in err, err[-2000:]
    if ends == 'usage':  # argparse: exit 2, a usage line, no traceback
        assert proc.returncode == 2 and 'usage:' in err
        assert 'Traceback' not in err
    else:  # the named error class is what ends the traceback
        last = err.strip().splitlines()[-1]
        assert last.startswith(f'{ends}: ') and match in last, last


# --- checkpoints that are not what the tools expect ------------------------
TOY = 'configs/toy/vgg11-slim_dynopool_1xb64-20e_digits-plain.py'
TOY_SA = 'configs/toy/vgg11-slim_shape-adaptor_1xb64-20e_digits-plain.py'


class _Payload:
    """Pickles as a call that creates a marker file when loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def _evil_checkpoint(tmp_path):
    marker = tmp_path / 'payload_ran'
    path = tmp_path / 'evil.pth'
    torch.save(
        dict(state_dict={}, meta=dict(epoch=1, iter=1), evil=_Payload(marker)),
        path)
    return str(path), marker


@pytest.mark.parametrize(
    'tool',
    ['export_fixed', 'oracle', 'get_flops', 'show_shapes', 'train_load_from'])
def test_no_tool_runs_a_checkpoints_payload(tool, tmp_path):
    """Every checkpoint load passes ``weights_only=True`` itself, so torch's
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (which only overrides an unset
    ``weights_only``) cannot turn it off."""
    ckpt, marker = _evil_checkpoint(tmp_path)
    argv = {
        'export_fixed': [
            'tools/analysis/export_fixed.py', TOY, ckpt, '--out',
            str(tmp_path / 'fixed.py')
        ],
        'oracle': [
            'tools/analysis/oracle.py', TOY, ckpt, '--work-dir',
            str(tmp_path / 'oracle')
        ],
        'get_flops':
        ['tools/analysis/get_flops.py', TOY, ckpt, '--shape', '32', '32'],
        'show_shapes': [
            'tools/analysis/show_shapes.py', '--shape', '32', '32', '--out',
            str(tmp_path / 's.png'), f'{TOY}:{ckpt}'
        ],
        'train_load_from': [
            'tools/train.py', TOY, '--work-dir',
            str(tmp_path / 'work'), '--cfg-options', f'load_from={ckpt}'
        ],
    }[tool]
    env = dict(_env(), TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='1')
    proc = subprocess.run([sys.executable, *argv],
                          cwd=ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert not marker.exists(), 'the payload ran'
    assert proc.returncode not in (0, -11), proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('ValueError: ') and 'cannot be read' in last, \
        proc.stderr[-2000:]


def _toy_checkpoint(tmp_path, config, edit):
    from mmdynopool.utils import build_model_from_cfg
    _, model = build_model_from_cfg(osp.join(ROOT, config))
    state = model.state_dict()
    edit(state)
    path = tmp_path / 'edited.pth'
    torch.save(dict(state_dict=state, meta=dict(epoch=1, iter=1)), path)
    return str(path)


def _drop_alphas(state):
    for k in [k for k in state if k.endswith('.alpha')]:
        del state[k]


def _set_alpha(value):

    def edit(state):
        state['backbone.dynopools.1.alpha'].fill_(value)

    return edit


@pytest.mark.parametrize(
    'config,edit,match', [
        (TOY, _drop_alphas,
         r'no learned alpha.*backbone\.dynopools\.0\.alpha'),
        (TOY, _set_alpha(NAN), r'backbone\.dynopools\.1\.alpha.*nan.*> 0'),
        (TOY, _set_alpha(-2.0), r'backbone\.dynopools\.1\.alpha.*-2.*> 0'),
        (TOY, _set_alpha(0.0), r'backbone\.dynopools\.1\.alpha.*> 0'),
        (TOY_SA, _drop_alphas, 'no learned alpha'),
        (TOY_SA, _set_alpha(NAN), r'backbone\.dynopools\.1\.alpha.*finite'),
    ],
    ids=['no alpha', 'nan', 'negative', 'zero', 'sa no alpha', 'sa nan'])
def test_export_fixed_refuses_checkpoints_without_a_learned_shape(
        config, edit, match, tmp_path):
    from mmdynopool.engine import export_fixed_config_file
    ckpt = _toy_checkpoint(tmp_path, config, edit)
    out = tmp_path / 'fixed.py'
    with pytest.raises(ValueError, match=match):
        export_fixed_config_file(osp.join(ROOT, config), ckpt, str(out))
    assert not out.exists()


def test_export_fixed_tool_exits_non_zero_without_alpha(tmp_path):
    ckpt = _toy_checkpoint(tmp_path, TOY, _drop_alphas)
    out = tmp_path / 'fixed.py'
    proc = subprocess.run([
        sys.executable, 'tools/analysis/export_fixed.py', TOY, ckpt, '--out',
        str(out)
    ],
                          cwd=ROOT,
                          env=_env(),
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 1 and not out.exists()
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('ValueError: ') and 'no learned alpha' in last


def _sa_vgg(**kw):
    from mmdynopool.models.backbones import ShapeAdaptorVGG
    return ShapeAdaptorVGG(11, **kw)


@pytest.mark.parametrize('kw,error,match', [
    (dict(num_adaptors=2.5), TypeError, r'num_adaptors.*2\.5'),
    (dict(num_adaptors=0), ValueError, 'num_adaptors'),
    (dict(num_adaptors='3'), TypeError, 'num_adaptors'),
    (dict(num_adaptors=True), TypeError, 'num_adaptors'),
    (dict(input_size='32'), TypeError, 'input_size'),
    (dict(input_size=-5), ValueError, 'input_size'),
    (dict(input_size=NAN), ValueError, 'input_size'),
    (dict(input_size=INF), ValueError, 'input_size'),
    (dict(d_last='2'), TypeError, 'd_last'),
    (dict(d_out=NAN), ValueError, 'd_out'),
    (dict(d_out=0), ValueError, 'd_out'),
])
def test_shape_adaptor_backbone_arguments(kw, error, match):
    """Each used to end in a message that did not name it (``'float'
    object cannot be interpreted as an integer``, an OverflowError), or, for
    ``num_adaptors=0``, in Eq. (3)'s count without a word."""
    with pytest.raises(error, match=match):
        _sa_vgg(**kw)
