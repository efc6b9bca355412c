"""Output of the experiment helpers (no training here; the end-to-end run
is in tests/test_tools/test_lambda_sweep.py)."""
import csv
import json

import pytest

from mmdynopool.analysis import format_sweep_rows, write_rows
from mmdynopool.analysis.experiments import _pick_metric


def sweep_rows():
    dyno = [dict(kind='dynopool', metric='accuracy/top1', value=v, gmacs=g,
                 resolutions=[[32, 32]], **{'lambda': lam})
            for v, g, lam in [(90.0, 0.002, 0.1), (92.5, 0.003, 0.01)]]
    human = [dict(kind='human', metric='accuracy/top1', value=v, gmacs=g,
                  resolutions=[[r, r]], resolution=r)
             for v, g, r in [(80.0, 0.001, 16), (93.0, 0.0026, 32)]]
    return dyno, human


def test_pick_metric():
    assert _pick_metric({'mIoU': 3.0, 'aAcc': 1.0}, None) == 'mIoU'
    assert _pick_metric({'accuracy/top1': 3.0}, None) == 'accuracy/top1'
    with pytest.raises(KeyError, match="'top5' is not among"):
        _pick_metric({'accuracy/top1': 3.0}, 'top5')
    with pytest.raises(KeyError, match='no known metric'):
        _pick_metric({'loss': 3.0}, None)


def test_write_rows(tmp_path):
    dyno, human = sweep_rows()
    files = write_rows(dyno + human, str(tmp_path / 'sweep'))
    with open(files[0]) as f:
        assert json.load(f) == dyno + human
    with open(files[1]) as f:
        rows = list(csv.DictReader(f))
    assert [r['kind'] for r in rows] == ['dynopool'] * 2 + ['human'] * 2
    assert rows[1]['lambda'] == '0.01' and rows[3]['resolution'] == '32'
    assert 'resolutions' not in rows[0]  # lists stay in the JSON


def test_format_sweep_rows():
    dyno, human = sweep_rows()
    lines = format_sweep_rows(dyno + human).splitlines()
    assert lines[0].split() == ['run', 'accuracy/top1', 'GMACs', 'sizes']
    assert lines[1].split() == ['lambda', '0.1', '90.00', '0.00200', '32x32']
    assert lines[4].split() == ['human', '32px', '93.00', '0.00260', '32x32']


@pytest.mark.slow
def test_run_experiment_records_layers_and_fixed_shape(demo_cfg, tmp_path):
    """A real 2-iteration run: every resizing layer's sizes are recorded,
    and ``export_fixed`` keeps what export_fixed_config makes of the
    trained model (the final checkpoint's alphas)."""
    from mmengine.runner import load_checkpoint

    from mmdynopool.analysis import export_fixed_config, run_experiment
    from mmdynopool.utils import allow_mmengine_checkpoints
    from mmdynopool.utils.model import build_model_from_cfg
    work = tmp_path / 'run'
    cfg = demo_cfg(work, iters=2)
    result = run_experiment(cfg, str(work), (96, 96), export_fixed=True)
    assert [r['name'] for r in result['layers']] == [
        f'dynopools.{i}' for i in range(5)]
    assert result['layers'][0]['in'] == [96, 96]
    assert [r['out'] for r in result['layers']] == result['resolutions'][1:]
    assert [r['scale'] for r in result['layers']] == result['scales']
    cfg_file = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_file)
    allow_mmengine_checkpoints()
    _, model = build_model_from_cfg(cfg_file)
    load_checkpoint(model, str(work / 'iter_2.pth'), map_location='cpu')
    fixed = export_fixed_config(cfg, model).model.backbone
    assert result['fixed_backbone'] == dict(
        init_scales=[list(s) for s in fixed.init_scales],
        dynopool_cfg=dict(fixed.dynopool_cfg))
    assert result['fixed_backbone']['dynopool_cfg']['fixed'] is True
    # Read back, it is the same record.
    assert run_experiment(cfg, str(work), (96, 96)) == json.loads(
        json.dumps(result))
