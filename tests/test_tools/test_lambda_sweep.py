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
    opts = ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
            'param_scheduler.T_max=1', 'train_dataloader.batch_size=10',
            'val_dataloader.batch_size=10', 'log_level=WARNING']
    for loader in ('train', 'val', 'test'):
        opts += [f'{loader}_dataloader.dataset.num_train={num_train}',
                 f'{loader}_dataloader.dataset.num_val={num_val}']
    return opts


def slim_vgg11_macs(size):
    """Textbook MACs of the slim VGG-11 (widths 8..64, 10 classes)."""
    widths = [8, 16, 32, 32, 64, 64, 64, 64]
    sizes = [size, size // 2, size // 4, size // 4, size // 8, size // 8,
             size // 16, size // 16]
    cin = [3] + widths[:-1]
    return sum(s * s * co * ci * 9
               for s, co, ci in zip(sizes, widths, cin)) + 64 * 10


@pytest.mark.slow
def test_lambda_sweep_end_to_end(tmp_path, monkeypatch):
    tool = load_tool('tools/analysis/lambda_sweep.py')
    work = str(tmp_path / 'sweep')
    argv = [TOY.format('dynopool'), '--lambdas', '0', '5',
            '--human-config', TOY.format('human'), '--resolutions', '16',
            '32', '--work-dir', work, '--cfg-options', *tiny_options()]
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
        tool.parse_args([TOY.format('dynopool'), '--lambdas', '0',
                         '--resolutions', '16'])
    assert '--resolutions needs --human-config' in capsys.readouterr().err
    from mmengine.config import Config

    from mmdynopool.analysis import lambda_sweep
    cfg = Config.fromfile(TOY.format('dynopool'))
    with pytest.raises(ValueError, match='lambdas must hold'):
        lambda_sweep(cfg, [], 'unused')
    with pytest.raises(ValueError, match=r'lambda .* got -0.1'):
        lambda_sweep(cfg, [-0.1], 'unused')
