"""mmdynopool.utils.model: building a config's model for analysis."""
import os.path as osp

import pytest

from mmdynopool.utils import build_model_from_cfg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_built_model_runs_with_its_memory_penalty(tmp_path):
    # A Shape Adaptor config with a memory limit: the analysis tools see
    # the penalised shape the test tool evaluates (Eq. 8), not rho = 1.
    config = osp.join(ROOT, 'configs', 'toy',
                      'vgg11-slim_shape-adaptor_1xb64-20e_digits-plain.py')
    path = tmp_path / 'limited.py'
    path.write_text(
        f'_base_ = {config!r}\n'
        "custom_hooks = [dict(type='ShapeAdaptorHook', alpha_interval=2,\n"
        '                     input_size=32, d_limit=6)]\n')
    _, model = build_model_from_cfg(str(path))
    # Eq. 5 starts every adaptor at s = (8 / 32) ** (1 / 4): D_cout = 8 > 6.
    rho = (6 / 8)**0.25
    for sa in model.backbone.dynopools:
        assert sa.penalty == pytest.approx(rho, rel=1e-4)
