"""complexity_report against hand counts."""
import os.path as osp

import pytest
import torch

from mmdynopool.analysis import (complexity_report, config_complexity,
                                 count_macs, format_complexity_report)
from mmdynopool.models import DynOPoolVGG

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs', 'demo',
                'fcn_hr16-slim_dynopool_1xb8-600iter_digits-voc-96x96.py')


def test_totals_and_resizing_cost_by_hand():
    model = DynOPoolVGG(16, out_indices=(4, ))
    model.eval()
    r = complexity_report(model, (224, 224), backbone=model)
    x = torch.zeros(1, 3, 224, 224)
    assert r['gmacs'] == pytest.approx(
        sum(count_macs(model, x).values()) / 1e9)
    # Each DynOPool output value: 4 queries x 4 MACs + 3 comparisons.
    outputs = [(64, 112), (128, 56), (256, 28), (512, 14), (512, 7)]
    by_hand = sum(c * s * s * 19 for c, s in outputs) / 1e9
    assert r['resize_gmacs'] == pytest.approx(by_hand)
    assert r['resolutions'] == [(224, 224), (112, 112), (56, 56), (28, 28),
                                (14, 14), (7, 7)]
    assert r['params'] == pytest.approx(
        sum(p.numel() for p in model.parameters()) / 1e6)


def test_config_complexity_and_text():
    # The demo's human-shaped start at 96 x 96: the input, the stem's /2,
    # then the four streams at /4 ... /32.
    r = config_complexity(DEMO, (96, 96))
    assert r['resolutions'] == [(96, 96), (48, 48), (24, 24), (12, 12), (6, 6),
                                (3, 3)]
    text = format_complexity_report(r, 'demo')
    assert text.splitlines()[0] == 'demo'
    assert f'GMACs (conv + linear): {r["gmacs"]:.4f}' in text
    assert 'feature map sizes: [96,96] [48,48] [24,24] [12,12] [6,6] [3,3]' \
        in text
    with pytest.raises(ValueError, match=r'shape must be \(H, W\)'):
        config_complexity(DEMO, (0, 96))


def test_model_mode_restored():
    model = DynOPoolVGG(11, out_indices=(4, ))
    model.train()  # mmpretrain's backbones return None from train()
    complexity_report(model, (32, 32), backbone=model)
    assert model.training


def test_exact_config_gmacs_leaves_the_rng():
    """The cost of a config's model, built without moving the global RNG
    (a seeded run that follows starts where it would have)."""
    from mmengine.config import Config

    from mmdynopool.analysis.complexity import (complexity_report,
                                                exact_config_gmacs)
    from mmdynopool.utils import build_model_from_cfg, config_path
    path = config_path('toy/vgg11-slim_human_1xb64-20e_digits-plain.py')
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    gmacs = exact_config_gmacs(Config.fromfile(path), (24, 40), 'mmpretrain')
    assert torch.equal(torch.rand(3), expected)
    _, model = build_model_from_cfg(path)
    assert gmacs == complexity_report(
        model, (24, 40), forward=lambda t: model(t, mode='tensor'))['gmacs']
