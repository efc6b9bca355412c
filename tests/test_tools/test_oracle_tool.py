"""The Untapped Potential workflow as a user runs it (slow): train the small
CNN on the shipped digits, oracle-evaluate it, fine-tune with ROF, combine
attributes under a budget."""
import csv
import json
import os.path as osp
import re
import sys

import numpy as np
import pytest

from .test_tools import ROOT, run

CFG = osp.join(ROOT, 'configs', 'untapped',
               'resnet18-slim_untapped_1xb64-10e_digits-plain.py')
ROF = osp.join(ROOT, 'configs', 'untapped',
               'resnet18-slim_rof-stride_1xb64-3e_digits-plain.py')
SMALL = [
    'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
    'train_dataloader.dataset.indices=48', 'val_dataloader.dataset.indices=8',
    'default_hooks.checkpoint.interval=1'
]


def load_tool():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'oracle_tool', osp.join(ROOT, 'tools', 'analysis', 'oracle.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def oracle(*args):
    return run([
        sys.executable, 'tools/analysis/oracle.py', *args, '--max-samples',
        '8', '--batch-size', '4', '--no-progress'
    ])


@pytest.mark.slow
def test_train_oracle_rof_and_combined(tmp_path):
    work = str(tmp_path / 'train')
    log = run([
        sys.executable, 'tools/train.py', CFG, '--work-dir', work,
        '--cfg-options', *SMALL
    ])
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
    assert summary['greedy']['accuracy'][-1] == pytest.approx(summary['best'])
    eff = summary['efficiency']
    assert eff['mean_gmacs'] <= eff['target_gmacs'] + 1e-12
    assert eff['accuracy'] == pytest.approx(summary['static'])
    rows = list(csv.DictReader(open(osp.join(stride_dir, 'permutations.csv'))))
    assert len(rows) == 16 and sum(int(r['preferred_by']) for r in rows) == 8
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
    out = run([
        sys.executable, 'tools/train.py', ROF, '--work-dir', rof,
        '--cfg-options', *SMALL, f'load_from={ckpt}', 'train_cfg.max_epochs=1'
    ])
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
        '              options=dict(stride=(1, 2), kernel_size=(1, 3)),\n'
        "              efficiency='static')\n")
    eff_dir = str(tmp_path / 'efficiency')
    oracle(str(preset), ckpt, '--work-dir', eff_dir)
    summary = json.load(open(osp.join(eff_dir, 'summary.json')))
    assert summary['attributes'] == ['stride', 'kernel_size']
    assert summary['num_permutations'] == 4**4  # (2 strides x 2 sizes)^4
    assert summary['efficiency']['target'] == 'static'
    assert summary['static'] == pytest.approx(val_top1)


def test_format_oracle_summary():
    summary = dict(
        static=50.0,
        best=75.0,
        median=50.0,
        worst=25.0,
        num_samples=8,
        num_permutations=16,
        unique_predictions={1: 8},
        preferences=dict(A={
            '1': 25.0,
            '2': 75.0
        }),
        efficiency=dict(
            target='static',
            accuracy=50.0,
            target_gmacs=0.004,
            mean_gmacs=0.002,
            reduction=2.0))
    lines = load_tool().format_oracle_summary(summary).splitlines()
    assert lines[0] == ('top-1 (%)  static 50.00  best 75.00  median 50.00 '
                        ' worst 25.00  (8 samples, 16 permutations)')
    assert lines[1] == '  preferred options in A: 1: 25.0%, 2: 75.0%'
    assert lines[2].startswith('efficiency: emulating the static model '
                               '(50.00% top-1, 0.0040 GMACs) costs 0.0020')
    del summary['unique_predictions'], summary['efficiency']
    assert load_tool().format_oracle_summary(summary).startswith(
        'mean per-image mIoU (%)')


def test_permutation_rows_count_ties_as_the_summary_does():
    """permutations.csv's preferred_by counts the first best permutation of
    each sample, as the summary's preferences do."""
    q = np.array([[0.5, 2.0, 2.0, 0.5], [1.0, 1.0, 0.2, 0.2]])
    perms = [((1, ), ), ((2, ), ), ((3, ), ), ((4, ), )]
    rows = load_tool()._permutation_rows(perms, np.zeros(4), q, None)
    assert [r[2] for r in rows] == [1, 1, 0, 0]
