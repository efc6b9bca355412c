"""Detection as a user works: a project directory outside the clone, the
installed package, mmdet's *own* train.py / test.py on a config that
inherits our DynOPool RetinaNet; CocoMetric (pycocotools) prints bbox mAP,
and the test tool reads back the same number from the checkpoint."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

mmdet = pytest.importorskip('mmdet')

DET_TOOLS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools')


def run(args, cwd, timeout=900):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ('PYTHONPATH', 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')
    }
    env['OMP_NUM_THREADS'] = '2'
    out = subprocess.run([sys.executable, *args],
                         cwd=cwd,
                         env=env,
                         capture_output=True,
                         text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def bbox_map(log):
    values = re.findall(r'coco/bbox_mAP: (-?[0-9.]+)', log)
    assert values, 'no coco/bbox_mAP in the log'
    return float(values[-1])


@pytest.mark.slow
def test_mmdet_tools_from_a_user_project(tmp_path):
    from mmdynopool.datasets import build_digits_coco
    build_digits_coco(
        str(tmp_path / 'data' / 'digits_coco'), num_train=16, num_val=4)
    (tmp_path / 'my_det.py').write_text(
        "_base_ = [__import__('mmdynopool').__name__ + '::digits_det/"
        "retinanet_r18-slim_dynopool_1xb8-1200iter_digits-coco-128x128.py']"
        "\ncustom_imports = dict(imports=['mmdynopool'], "
        'allow_failed_imports=False)\n')
    opts = [
        '--cfg-options',
        'train_cfg.max_iters=4',
        'train_cfg.val_interval=4',
        'default_hooks.checkpoint.interval=4',
        'train_dataloader.batch_size=2',
        'default_hooks.logger.interval=1',
        'param_scheduler.0.end=2',
        # Four iterations detect nothing above mmdet's 0.05: keep every
        # box so that CocoMetric has results to score.
        'model.test_cfg.score_thr=0.0'
    ]
    train = run([
        osp.join(DET_TOOLS, 'train.py'), 'my_det.py', '--work-dir', 'wd', *opts
    ], tmp_path)
    assert 'GMACsLossHook' in train and 'loss_gmacs' in train
    assert 'sizes settled' in train  # the target mode ran its course
    test = run([
        osp.join(DET_TOOLS,
                 'test.py'), 'my_det.py', 'wd/iter_4.pth', '--work-dir',
        'wd_test', '--cfg-options', 'model.test_cfg.score_thr=0.0'
    ], tmp_path)
    assert bbox_map(test) == bbox_map(train)
