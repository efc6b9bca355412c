"""tools/analysis/lambda_sweep.py end to end on the toy digits (tiny)."""
import csv
import glob
import importlib.util
import json
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY = osp.join(ROOT, 'configs', 'toy',
               'vgg11-slim_{}_1xb64-20e_digits-plain.py')


def load_tool(rel):
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(rel))[0], osp.join(ROOT, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_options(num_train=20, num_val=10):
    opts = [
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'param_scheduler.T_max=1', 'train_dataloader.batch_size=10',
        'val_dataloader.batch_size=10', 'log_level=WARNING'
    ]
    for loader in ('train', 'val', 'test'):
        opts += [
            f'{loader}_dataloader.dataset.num_train={num_train}',
            f'{loader}_dataloader.dataset.num_val={num_val}'
        ]
    return opts


def slim_vgg11_macs(size):
    """Textbook MACs of the slim VGG-11 (widths 8..64, 10 classes)."""
    widths = [8, 16, 32, 32, 64, 64, 64, 64]
    sizes = [
        size, size // 2, size // 4, size // 4, size // 8, size // 8,
        size // 16, size // 16
    ]
    cin = [3] + widths[:-1]
    return sum(s * s * co * ci * 9
               for s, co, ci in zip(sizes, widths, cin)) + 64 * 10


@pytest.mark.slow
def test_lambda_sweep_end_to_end(tmp_path, monkeypatch):
    tool = load_tool('tools/analysis/lambda_sweep.py')
    work = str(tmp_path / 'sweep')
    argv = [
        TOY.format('dynopool'), '--lambdas', '0', '5', '--human-config',
        TOY.format('human'), '--resolutions', '16', '32', '--work-dir', work,
        '--cfg-options', *tiny_options()
    ]
    tool.main(argv)
    with open(osp.join(work, 'sweep.json')) as f:
        rows = json.load(f)
    assert [(r['kind'], r.get('lambda', r.get('resolution')))
            for r in rows] == [('dynopool', 0.0), ('dynopool', 5.0),
                               ('human', 16), ('human', 32)]
    for r in rows:
        assert r['metric'] == 'accuracy/top1' and 0 <= r['value'] <= 100
        assert r['metrics']['accuracy/top1'] == r['value']
    human16, human32 = rows[2:]
    assert human16['gmacs'] * 1e9 == pytest.approx(slim_vgg11_macs(16))
    assert human32['gmacs'] * 1e9 == pytest.approx(slim_vgg11_macs(32))
    assert human16['resolutions'][:2] == [[16, 16], [8, 8]]
    # The human run at 16 px really trained on resized images, the lambda=5
    # run really had the GMACs loss (the configs mmengine dumped).
    dumped = glob.glob(osp.join(work, 'human_16', '*.py'))
    assert dumped and "type='Resize'" in open(dumped[0]).read()
    dumped = open(glob.glob(osp.join(work, 'lambda_5', '*.py'))[0]).read()
    assert 'loss_weight=5.0' in dumped
    with open(osp.join(work, 'sweep.csv')) as f:
        assert len(list(csv.DictReader(f))) == 4
    with open(osp.join(work, 'sweep.png'), 'rb') as f:
        assert f.read(4) == b'\x89PNG'

    # Finished runs are read back, not trained again.
    from mmengine.runner import Runner

    def refuse(*args, **kwargs):
        raise AssertionError('a finished run was trained again')

    monkeypatch.setattr(Runner, 'from_cfg', refuse)
    tool.main(argv)
    with open(osp.join(work, 'sweep.json')) as f:
        assert json.load(f) == rows


def test_lambda_sweep_rejects_bad_arguments(capsys):
    tool = load_tool('tools/analysis/lambda_sweep.py')
    with pytest.raises(SystemExit):
        tool.parse_args(
            [TOY.format('dynopool'), '--lambdas', '0', '--resolutions', '16'])
    assert '--resolutions needs --human-config' in capsys.readouterr().err
    from mmengine.config import Config
    lambda_sweep = tool.lambda_sweep
    cfg = Config.fromfile(TOY.format('dynopool'))
    with pytest.raises(ValueError, match='lambdas must hold'):
        lambda_sweep(cfg, [], 'unused')
    with pytest.raises(ValueError, match=r'lambda .* got -0.1'):
        lambda_sweep(cfg, [-0.1], 'unused')


TOOL = 'tools/analysis/lambda_sweep.py'


def sweep_rows():
    dyno = [
        dict(
            kind='dynopool',
            metric='accuracy/top1',
            value=v,
            gmacs=g,
            resolutions=[[32, 32]],
            **{'lambda': lam})
        for v, g, lam in [(90.0, 0.002, 0.1), (92.5, 0.003, 0.01)]
    ]
    human = [
        dict(
            kind='human',
            metric='accuracy/top1',
            value=v,
            gmacs=g,
            resolutions=[[r, r]],
            resolution=r)
        for v, g, r in [(80.0, 0.001, 16), (93.0, 0.0026, 32)]
    ]
    return dyno, human


def test_write_rows(tmp_path):
    dyno, human = sweep_rows()
    files = load_tool(TOOL).write_rows(dyno + human, str(tmp_path / 'sweep'))
    with open(files[0]) as f:
        assert json.load(f) == dyno + human
    with open(files[1]) as f:
        rows = list(csv.DictReader(f))
    assert [r['kind'] for r in rows] == ['dynopool'] * 2 + ['human'] * 2
    assert rows[1]['lambda'] == '0.01' and rows[3]['resolution'] == '32'
    assert 'resolutions' not in rows[0]  # lists stay in the JSON


def test_format_sweep_rows():
    dyno, human = sweep_rows()
    lines = load_tool(TOOL).format_sweep_rows(dyno + human).splitlines()
    assert lines[0].split() == ['run', 'accuracy/top1', 'GMACs', 'sizes']
    assert lines[1].split() == ['lambda', '0.1', '90.00', '0.00200', '32x32']
    assert lines[4].split() == ['human', '32px', '93.00', '0.00260', '32x32']
