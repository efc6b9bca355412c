"""Downstream use, as a user works: a project directory outside the clone,
the installed package, mmseg's and mmpretrain's *own* train / test tools.

The user's config inherits ours with the one line the README gives (stock
tools parse ``_base_`` before ``custom_imports`` runs, so the import sits in
the ``_base_`` expression), checkpoints load with ``weights_only=True`` (no
environment variable), and the metric the test tool prints is read back.
"""
import os
import os.path as osp
import re
import subprocess
import sys
import sysconfig

import mmpretrain
import mmseg
import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SEG_TOOLS = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools')
CLS_TOOLS = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools')


def user_config(path, base):
    path.write_text(
        f"_base_ = [__import__('mmdynopool').__name__ + '::{base}']\n"
        "custom_imports = dict(imports=['mmdynopool'], "
        'allow_failed_imports=False)\n')
    return str(path)


def clean_env():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ('PYTHONPATH', 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')
    }
    env['OMP_NUM_THREADS'] = '2'
    return env


def run(args, cwd, python=sys.executable, timeout=900):
    out = subprocess.run([python, *args],
                         cwd=cwd,
                         env=clean_env(),
                         capture_output=True,
                         text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def metric(log, name):
    values = re.findall(rf'{re.escape(name)}: ([0-9.]+)', log)
    assert values, f'no {name} in the log'
    return float(values[-1])


def seg_round_trip(project, python=sys.executable):
    """mmseg's train.py (4 iterations) then test.py on its checkpoint."""
    from mmdynopool.datasets import build_digits_voc
    build_digits_voc(
        str(project / 'data' / 'digits_voc'), num_train=16, num_val=4)
    cfg = user_config(
        project / 'my_demo.py',
        'demo/fcn_hr16-slim_dynopool_1xb8-600iter_digits-voc-96x96.py')
    opts = [
        '--cfg-options', 'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
        'default_hooks.checkpoint.interval=4', 'train_dataloader.batch_size=2',
        'default_hooks.logger.interval=1'
    ]
    train = run(
        [osp.join(SEG_TOOLS, 'train.py'), cfg, '--work-dir', 'wd', *opts],
        project, python)
    assert 'GMACsLossHook' in train and 'loss_gmacs' in train
    test = run([
        osp.join(SEG_TOOLS, 'test.py'), cfg, 'wd/iter_4.pth', '--work-dir',
        'wd_test'
    ], project, python)
    # The same weights on the same images: the same mIoU.
    assert metric(test, 'mIoU') == metric(train, 'mIoU')
    return test


@pytest.mark.slow
def test_mmseg_tools_from_a_user_project(tmp_path):
    seg_round_trip(tmp_path)


@pytest.mark.slow
def test_our_tools_from_a_user_project(tmp_path):
    """Our train.py / test.py, as installed (``<package>/.mim/tools``), run
    from the user's directory: they import mmdynopool first, so the plain
    ``_base_ = 'mmdynopool::...'`` line works."""
    import mmdynopool
    from mmdynopool.datasets import build_digits_voc
    tools = osp.join(osp.dirname(mmdynopool.__file__), '.mim', 'tools')
    build_digits_voc(
        str(tmp_path / 'data' / 'digits_voc'), num_train=16, num_val=4)
    (tmp_path / 'my_demo.py').write_text(
        "_base_ = 'mmdynopool::demo/"
        "fcn_hr16-slim_dynopool_1xb8-600iter_digits-voc-96x96.py'\n")
    opts = [
        '--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2', 'train_dataloader.batch_size=2',
        'default_hooks.logger.interval=1'
    ]
    train = run(
        [osp.join(tools, 'train.py'), 'my_demo.py', '--work-dir', 'wd', *opts],
        tmp_path)
    assert 'loss_gmacs' in train
    test = run([
        osp.join(tools, 'test.py'), 'my_demo.py', 'wd/iter_2.pth',
        '--work-dir', 'wd_test'
    ], tmp_path)
    assert metric(test, 'mIoU') == metric(train, 'mIoU')


@pytest.mark.slow
def test_mmpretrain_tools_from_a_user_project(tmp_path):
    cfg = user_config(tmp_path / 'my_toy.py',
                      'toy/vgg11-slim_dynopool_1xb64-20e_digits-stretch-v.py')
    data = [
        f'{loader}_dataloader.dataset.{k}={v}'
        for loader in ('train', 'val', 'test')
        for k, v in (('num_train', 100), ('num_val', 20))
    ]
    opts = [
        '--cfg-options', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        *data
    ]
    train = run(
        [osp.join(CLS_TOOLS, 'train.py'), cfg, '--work-dir', 'wd', *opts],
        tmp_path)
    test = run([osp.join(CLS_TOOLS, 'test.py'), cfg, 'wd/epoch_1.pth', *opts],
               tmp_path)
    assert metric(test, 'accuracy/top1') == metric(train, 'accuracy/top1')


@pytest.mark.slow
def test_non_editable_install(tmp_path):
    """``pip install .`` (a wheel, configs inside the package) into a fresh
    virtualenv that sees the dev environment's other packages but not the
    editable mmdynopool, then the mmseg round trip."""
    wheels = tmp_path / 'wheels'
    run([
        '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w',
        str(wheels), ROOT
    ], tmp_path)
    venv = tmp_path / 'venv'
    run(['-m', 'venv', str(venv)], tmp_path)
    py = str(venv / 'bin' / 'python')
    site = run(
        ['-c', 'import sysconfig; print(sysconfig.get_paths()'
         '["purelib"])'], tmp_path, py).strip().splitlines()[-1]
    # The dev packages, appended after the venv's own (their .pth files,
    # the editable finder among them, are not processed from there).
    with open(osp.join(site, 'dev_env.pth'), 'w') as f:
        f.write(sysconfig.get_paths()['purelib'] + '\n')
    wheel = next(wheels.glob('mmdynopool-*.whl'))
    run(['-m', 'pip', 'install', '--no-deps', '--no-index', '-q',
         str(wheel)], tmp_path, py)
    where = run([
        '-c', 'import mmdynopool, os.path as o; '
        'print(o.dirname(mmdynopool.__file__))'
    ], tmp_path, py).strip().splitlines()[-1]
    assert where == osp.join(site, 'mmdynopool')  # not the clone
    assert osp.isfile(
        osp.join(where, '.mim', 'configs', 'demo',
                 'fcn_hr16-slim_dynopool_1xb8-600iter_digits-voc-96x96.py'))
    project = tmp_path / 'project'
    project.mkdir()
    seg_round_trip(project, py)
