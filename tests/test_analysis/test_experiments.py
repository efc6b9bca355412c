"""run_experiment: the metric it picks, and a real 2-iteration run (the
lambda sweep built on it is tested in tests/test_tools/test_lambda_sweep.py).
"""
import json

import pytest

from mmdynopool.analysis.experiments import _pick_metric


def test_pick_metric():
    assert _pick_metric({'mIoU': 3.0, 'aAcc': 1.0}, None) == 'mIoU'
    assert _pick_metric({'accuracy/top1': 3.0}, None) == 'accuracy/top1'
    with pytest.raises(KeyError, match="'top5' is not among"):
        _pick_metric({'accuracy/top1': 3.0}, 'top5')
    with pytest.raises(KeyError, match='no known metric'):
        _pick_metric({'loss': 3.0}, None)


@pytest.mark.slow
def test_run_experiment_records_layers_and_fixed_shape(demo_cfg, tmp_path):
    """A real 2-iteration run: every resizing layer's sizes are recorded,
    and ``export_fixed`` keeps what export_fixed_config makes of the
    trained model (the final checkpoint's alphas)."""
    from mmengine.runner import load_checkpoint

    from mmdynopool.analysis.experiments import run_experiment
    from mmdynopool.engine import export_fixed_config
    from mmdynopool.utils import allow_mmengine_checkpoints
    from mmdynopool.utils.model import build_model_from_cfg
    work = tmp_path / 'run'
    cfg = demo_cfg(work, iters=2)
    result = run_experiment(cfg, str(work), (96, 96), export_fixed=True)
    assert [r['name']
            for r in result['layers']] == [f'dynopools.{i}' for i in range(5)]
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
    assert run_experiment(cfg, str(work),
                          (96, 96)) == json.loads(json.dumps(result))
