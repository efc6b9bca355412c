"""Config surgery and output of the sweep helpers (no training here; the
end-to-end run is in tests/test_tools/test_lambda_sweep.py)."""
import csv
import json
import os.path as osp

import pytest
from mmengine.config import Config

from mmdynopool.analysis import (plot_tradeoff, set_gmacs_loss_weight,
                                 set_input_resolution, write_rows)
from mmdynopool.analysis.sweep import _pick_metric

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY = osp.join(ROOT, 'configs', 'toy', 'vgg11-slim_{}_digits-{}.py')


def test_set_gmacs_loss_weight():
    cfg = Config.fromfile(TOY.format('dynopool', 'tile'))
    new = set_gmacs_loss_weight(cfg, 0.5)
    assert new.custom_hooks[0].loss_weight == 0.5
    # Not modified, and the toy rule: the paper's CIFAR-tile lambda x 242.6.
    assert cfg.custom_hooks[0].loss_weight == pytest.approx(7.21e-5 * 242.6,
                                                            abs=1e-4)
    with pytest.raises(ValueError, match=r'lambda .* >= 0, got -1'):
        set_gmacs_loss_weight(cfg, -1)
    with pytest.raises(ValueError, match='exactly one GMACsLossHook.*found 0'):
        set_gmacs_loss_weight(Config.fromfile(TOY.format('human', 'tile')), 1)


def test_set_input_resolution_resizes_after_the_crop():
    cfg = Config.fromfile(TOY.format('human', 'stretch-v'))
    new = set_input_resolution(cfg, (24, 20))
    for loader in ('train', 'val', 'test'):
        pipe = new[f'{loader}_dataloader'].dataset.pipeline
        assert pipe[-2] == dict(type='Resize', scale=(20, 24))  # (w, h)
        assert pipe[-1].type == 'PackInputs'
        assert pipe[0].type.endswith('Crop')
    assert len(cfg.train_dataloader.dataset.pipeline) == 2
    with pytest.raises(ValueError, match=r'resolution must be \(H, W\)'):
        set_input_resolution(cfg, (0, 20))
    cfg.val_dataloader.dataset.pipeline = [dict(type='CenterCrop',
                                                crop_size=4)]
    with pytest.raises(ValueError, match='val_dataloader.dataset.pipeline '
                       'must end with a Pack'):
        set_input_resolution(cfg, (24, 24))


def test_pick_metric():
    assert _pick_metric({'mIoU': 3.0, 'aAcc': 1.0}, None) == 'mIoU'
    assert _pick_metric({'accuracy/top1': 3.0}, None) == 'accuracy/top1'
    with pytest.raises(KeyError, match="'top5' is not among"):
        _pick_metric({'accuracy/top1': 3.0}, 'top5')
    with pytest.raises(KeyError, match='no known metric'):
        _pick_metric({'loss': 3.0}, None)


def test_write_rows_and_plot(tmp_path):
    dyno = [dict(kind='dynopool', metric='accuracy/top1', value=v, gmacs=g,
                 resolutions=[[32, 32]], **{'lambda': lam})
            for v, g, lam in [(90.0, 0.002, 0.1), (92.5, 0.003, 0.01)]]
    human = [dict(kind='human', metric='accuracy/top1', value=v, gmacs=g,
                  resolutions=[[r, r]], resolution=r)
             for v, g, r in [(80.0, 0.001, 16), (93.0, 0.0026, 32)]]
    files = write_rows(dyno + human, str(tmp_path / 'sweep'))
    with open(files[0]) as f:
        assert json.load(f) == dyno + human
    with open(files[1]) as f:
        rows = list(csv.DictReader(f))
    assert [r['kind'] for r in rows] == ['dynopool'] * 2 + ['human'] * 2
    assert rows[1]['lambda'] == '0.01' and rows[3]['resolution'] == '32'
    assert 'resolutions' not in rows[0]  # lists stay in the JSON
    png = plot_tradeoff(dict(dynopool=dyno, human=human),
                        str(tmp_path / 'sweep.png'), 'test')
    with open(png, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
