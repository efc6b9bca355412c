"""The Untapped Potential workflow as a user runs it (slow): train the small
CNN on the shipped digits, oracle-evaluate it, fine-tune with ROF, combine
attributes under a budget."""
import csv
import json
import os.path as osp
import re
import sys

import pytest

from .test_tools import ROOT, run

CFG = osp.join(ROOT, 'configs', 'untapped',
               'resnet18-slim_untapped_1xb64-10e_digits-plain.py')
ROF = osp.join(ROOT, 'configs', 'untapped',
               'resnet18-slim_rof-stride_1xb64-3e_digits-plain.py')
SMALL = ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
         'train_dataloader.dataset.indices=48',
         'val_dataloader.dataset.indices=8',
         'default_hooks.checkpoint.interval=1']


def oracle(*args):
    return run([sys.executable, 'tools/analysis/oracle.py', *args,
                '--max-samples', '8', '--batch-size', '4',
                '--no-progress'])


@pytest.mark.slow
def test_train_oracle_rof_and_combined(tmp_path):
    work = str(tmp_path / 'train')
    log = run([sys.executable, 'tools/train.py', CFG, '--work-dir', work,
               '--cfg-options', *SMALL])
    ckpt = osp.join(work, 'epoch_1.pth')
    # The runner's validation of the same 8 digits (mmpretrain Accuracy).
    val_top1 = float(re.findall(r'accuracy/top1: ([0-9.]+)', log)[-1])

    stride_dir = str(tmp_path / 'stride')
    out = oracle(CFG, ckpt, '--attributes', 'stride', '--options',
                 'stride=1,2', '--efficiency', 'static', '--work-dir',
                 stride_dir)
    assert 'static' in out and 'efficiency' in out
    summary = json.load(open(osp.join(stride_dir, 'summary.json')))
    assert summary['num_permutations'] == 16
    assert summary['default'] == '1 2 2 2'
    # The trained configuration scores what the runner measured.
    assert summary['static'] == pytest.approx(val_top1)
    assert summary['best'] >= summary['median'] >= summary['worst']
    assert summary['best'] >= summary['static']
    # The greedy curve ends at the best case; the static model is a
    # candidate, so emulating it never costs more than it does.
    assert summary['greedy']['accuracy'][-1] == pytest.approx(
        summary['best'])
    eff = summary['efficiency']
    assert eff['mean_gmacs'] <= eff['target_gmacs'] + 1e-12
    assert eff['accuracy'] == pytest.approx(summary['static'])
    rows = list(csv.DictReader(open(osp.join(stride_dir,
                                             'permutations.csv'))))
    assert len(rows) == 16 and sum(int(r['preferred_by'])
                                   for r in rows) == 8
    assert osp.getsize(osp.join(stride_dir, 'oracle.png')) > 10_000

    size_dir = str(tmp_path / 'size')
    oracle(CFG, ckpt, '--attributes', 'kernel_size', '--options',
           'kernel_size=1,3', '--work-dir', size_dir)
    both = str(tmp_path / 'both')
    oracle(CFG, ckpt, '--attributes', 'stride', 'kernel_size', '--ranked',
           f'stride={stride_dir}', f'kernel_size={size_dir}', '--budget', '9',
           '--work-dir', both)
    combined = json.load(open(osp.join(both, 'summary.json')))
    # Eq. 2: 3 x 3 permutations (+ the trained one if not among them).
    assert combined['num_permutations'] in (9, 10)

    rof = str(tmp_path / 'rof')
    out = run([sys.executable, 'tools/train.py', ROF, '--work-dir', rof,
               '--cfg-options', *SMALL, f'load_from={ckpt}',
               'train_cfg.max_epochs=1'])
    assert 'RandomOptionHook: 400 permutations' in out
    oracle(CFG, osp.join(rof, 'epoch_1.pth'), '--attributes', 'stride',
           '--options', 'stride=1,2', '--work-dir', str(tmp_path / 'after'))

    # A study's settings in the config (as
    # resnet50_untapped-efficiency_8xb32-100e_in1k.py carries Sec. 4.6's):
    # no --attributes / --options / --efficiency.
    preset = tmp_path / 'preset.py'
    preset.write_text(
        f'_base_ = {CFG!r}\n'
        "oracle = dict(attributes=('stride', 'kernel_size'),\n"
        "              options=dict(stride=(1, 2), kernel_size=(1, 3)),\n"
        "              efficiency='static')\n")
    eff_dir = str(tmp_path / 'efficiency')
    oracle(str(preset), ckpt, '--work-dir', eff_dir)
    summary = json.load(open(osp.join(eff_dir, 'summary.json')))
    assert summary['attributes'] == ['stride', 'kernel_size']
    assert summary['num_permutations'] == 4**4  # (2 strides x 2 sizes)^4
    assert summary['efficiency']['target'] == 'static'
    assert summary['static'] == pytest.approx(val_top1)
