"""End-to-end runs of the tools as a user runs them (slow)."""
import json
import os
import os.path as osp
import subprocess
import sys

import mmseg
import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs', 'demo',
                'fcn_hr16-slim_dynopool_1xb8-600iter_digits-voc-96x96.py')


def data_options(root, iters):
    opts = [
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        f'param_scheduler.0.end={iters}', 'train_dataloader.batch_size=2',
        f'default_hooks.checkpoint.interval={iters}',
        'default_hooks.logger.interval=1'
    ]
    for loader in ('train', 'val', 'test'):
        opts.append(f'{loader}_dataloader.dataset.data_root={root}')
    return opts


def run(cmd, **env):
    full_env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    full_env.update(env)
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=900)
    # On failure, every error line (a child's traceback sits far up in a
    # torchrun's output; a C++ abort says 'terminate called ... what()')
    # and the tail.
    keys = ('Error', 'error', 'terminate', 'what()', 'gloo', 'Abort')
    errors = [
        line for line in proc.stderr.splitlines()
        if any(k in line for k in keys)
    ]
    assert proc.returncode == 0, '\n'.join(errors[-40:]) + \
        proc.stderr[-2000:]
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_train_then_test_with_ours_and_mmsegs_tool(digits_root, tmp_path):
    work = str(tmp_path / 'work')
    out = run([
        sys.executable, 'tools/train.py', DEMO, '--work-dir', work,
        '--cfg-options', *data_options(digits_root, 3)
    ])
    assert 'loss_gmacs' in out and 'mIoU' in out
    ckpt = osp.join(work, 'iter_3.pth')
    assert osp.isfile(ckpt)
    state = torch.load(ckpt, map_location='cpu', weights_only=False)
    assert 'backbone.dynopools.4.alpha' in state['state_dict']

    metrics = str(tmp_path / 'metrics.json')
    run([
        sys.executable, 'tools/test.py', DEMO, ckpt, '--work-dir',
        str(tmp_path / 'test'), '--out', metrics, '--cfg-options',
        *data_options(digits_root, 3)
    ])
    with open(metrics) as f:
        assert 0 <= json.load(f)['mIoU'] <= 100

    # mmseg's own test tool, weights_only on (custom_imports imports
    # mmdynopool, which allow-lists mmengine's checkpoint globals).
    mmseg_test = osp.join(
        osp.dirname(mmseg.__file__), '.mim', 'tools', 'test.py')
    out = run([
        sys.executable, mmseg_test, DEMO, ckpt, '--work-dir',
        str(tmp_path / 'mmseg_test'), '--cfg-options',
        *data_options(digits_root, 3)
    ])
    assert 'mIoU' in out

    # A truncated newest checkpoint: --resume falls back to the older one.
    with open(ckpt, 'rb') as f:
        good = f.read()
    older = osp.join(work, 'iter_2.pth')
    with open(older, 'wb') as f:
        f.write(good)
    os.utime(older, (1, 1))  # older by mtime
    with open(ckpt, 'wb') as f:
        f.write(good[:len(good) // 3])
    out = run([
        sys.executable, 'tools/train.py', DEMO, '--work-dir', work, '--resume',
        '--cfg-options', *data_options(digits_root, 4)
    ])
    assert f'skipping checkpoint {ckpt!r} cannot be read' in out
    assert f'Load checkpoint from {older}' in out or 'resumed' in out.lower()

    # Our test tool refuses a checkpoint of another architecture.
    human = osp.join(ROOT, 'configs', 'demo',
                     'fcn_hr16-slim_human_1xb8-600iter_digits-voc-96x96.py')
    proc = subprocess.run([
        sys.executable, 'tools/test.py', human, older, '--cfg-options',
        *data_options(digits_root, 3)
    ],
                          cwd=ROOT,
                          capture_output=True,
                          text=True,
                          timeout=600,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode != 0
    assert 'does not fit the model of this config' in proc.stderr
    assert 'unexpected keys: backbone.dynopools.0.alpha' in proc.stderr


HOOK = '''
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.dist import get_rank


@HOOKS.register_module()
class DumpAlphaHook(Hook):
    def after_train(self, runner):
        model = runner.model.module
        torch.save({n: p.detach() for n, p in model.named_parameters()
                    if n.endswith('alpha')},
                   f'{runner.work_dir}/alpha_rank{get_rank()}.pth')
'''


@pytest.mark.slow
def test_torchrun_two_cpu_processes_keep_alpha_identical(
        digits_root, tmp_path):
    (tmp_path / 'dump_alpha.py').write_text(HOOK)
    cfg = tmp_path / 'dist.py'
    cfg.write_text(f"_base_ = '{DEMO}'\n"
                   "custom_imports = dict(imports=['mmdynopool', "
                   "'dump_alpha'], allow_failed_imports=False)\n"
                   "custom_hooks = [dict(type='GMACsLossHook', "
                   'loss_weight=0.1, input_size=(96, 96)), '
                   "dict(type='DumpAlphaHook')]\n")
    work = tmp_path / 'work'
    import socket
    with socket.socket() as sock:  # a free port, not a fixed one
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    run([
        'bash', 'tools/dist_train.sh',
        str(cfg), '2', '--work-dir',
        str(work), '--cfg-options', *data_options(digits_root, 3)
    ],
        PYTHONPATH=f'{ROOT}:{tmp_path}',
        PORT=str(port),
        PYTHON=sys.executable)
    a0 = torch.load(work / 'alpha_rank0.pth')
    a1 = torch.load(work / 'alpha_rank1.pth')
    assert len(a0) == 5 and a0.keys() == a1.keys()
    for k in a0:
        assert torch.equal(a0[k], a1[k]), k
        assert not torch.equal(a0[k], torch.tensor([2.0, 2.0])), 'untrained'


def test_analysis_tools(tmp_path):
    out = run([
        sys.executable, 'tools/analysis/get_flops.py', DEMO, '--shape', '96',
        '96'
    ])
    assert 'GMACs (conv + linear): 0.1217' in out
    assert 'feature map sizes: [96,96] [48,48] [24,24] [12,12] [6,6] [3,3]' \
        in out
    png = str(tmp_path / 'shapes.png')
    run([
        sys.executable, 'tools/analysis/show_shapes.py', '--shape', '96', '96',
        '--out', png, DEMO
    ])
    with open(png, 'rb') as f:
        assert f.read(4) == b'\x89PNG'
    # Export from a checkpoint holding alpha.
    from mmdynopool.utils import build_model_from_cfg
    _, model = build_model_from_cfg(DEMO)
    ckpt = str(tmp_path / 'model.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    fixed = str(tmp_path / 'fixed.py')
    run([
        sys.executable, 'tools/analysis/export_fixed.py', DEMO, ckpt, '--out',
        fixed
    ])
    from mmengine.config import Config
    cfg = Config.fromfile(fixed)
    assert cfg.model.backbone.dynopool_cfg == dict(fixed=True)
    assert len(cfg.model.backbone.init_scales) == 5


@pytest.mark.slow
def test_demo_compares_and_repeats(tmp_path, capsys):
    """tools/demo.py: human and DynOPool on the same budget, one table; a
    second fresh run gives the same numbers."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'demo_tool', osp.join(ROOT, 'tools', 'demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    outs = [
        demo.main(['--work-dir',
                   str(tmp_path / f'run{i}'), '--iters', '4'])
        for i in range(2)
    ]
    a, b = (o['rows'] for o in outs)
    assert [r['model'] for r in a] == ['human', 'DynOPool']
    # 96x96 crop, human HRNet: stem conv1 /2, then streams /4 ... /32.
    assert a[0]['resolutions'][1:] == [[48, 48], [24, 24], [12, 12], [6, 6],
                                       [3, 3]]
    assert [(r['value'], r['gmacs'], r['resolutions']) for r in a
            ] == [(r['value'], r['gmacs'], r['resolutions']) for r in b]
    printed = capsys.readouterr().out
    assert outs[1]['table'] in printed and '| human |' in printed
    with open(outs[0]['report']) as f:
        assert f.read().strip() == outs[0]['table']
    with pytest.raises(SystemExit):
        demo.main(['--iters', '0'])
