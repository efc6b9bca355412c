"""mmdynopool.analysis.oracle_study: the study's arithmetic against hand
counts (the end-to-end study is tests/test_tools/test_oracle_tool.py)."""
import numpy as np
import pytest
import torch
from torch import nn

from mmdynopool.analysis.oracle_study import (efficiency_summary,
                                              format_oracle_summary,
                                              permutation_macs)


def test_efficiency_summary_static_and_best_by_hand():
    # 3 samples x 3 permutations; permutation 0 is the trained one.
    pred = np.array([[3, 3, 1], [2, 5, 2], [7, 7, 7]])
    q = np.array([[1.9, 1.2, 0.1], [0.3, 1.8, 0.2], [1.5, 1.6, 1.7]])
    results = dict(pred=pred, q=q, labels=np.array([3, 5, 7]))
    macs = np.array([4e9, 1e9, 2e9])
    static = efficiency_summary(results, macs, 0, 'static')
    # Emulating permutation 0: cheapest matches 1, 2, 1 -> (1 + 2 + 1) / 3.
    assert static == pytest.approx(dict(
        target='static', accuracy=200 / 3, target_gmacs=4.0,
        mean_gmacs=4 / 3, reduction=3.0))
    best = efficiency_summary(results, macs, 0, 'best')
    # Best per sample: 0, 1, 2 (all correct), cost (4 + 1 + 2) / 3; the
    # cheapest with the same predictions: 1 (3), 1 (5), 1 (7).
    assert best == pytest.approx(dict(
        target='best', accuracy=100.0, target_gmacs=7 / 3, mean_gmacs=1.0,
        reduction=7 / 3))
    with pytest.raises(ValueError, match="'static' or 'best'"):
        efficiency_summary(results, macs, 0, 'worst')
    with pytest.raises(ValueError, match='needs class predictions'):
        efficiency_summary(dict(q=q), macs, 0, 'static')


class _Layers:
    """A stand-in for DynamicLayers: one conv whose stride a permutation
    sets."""

    def __init__(self, conv):
        self.conv, self.applied = conv, []

    def apply(self, p, attributes):
        self.applied.append(p)
        self.conv.stride = p[0]

    def reset(self):
        self.conv.stride = (1, 1)


class _Classifier(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x, mode='tensor'):
        return self.conv(x)


def test_permutation_macs_by_hand():
    model = _Classifier()
    dyn = _Layers(model.conv)
    macs = permutation_macs(model, dyn, [((1, 1), ), ((2, 2), ), ((1, 2), )],
                            ('stride', ), (8, 8))
    # 4 channels x 27 MACs per output value, 8x8, 4x4 and 8x4 outputs.
    np.testing.assert_array_equal(macs, np.array([64, 16, 32]) * 4 * 27)
    assert model.conv.stride == (1, 1)  # reset afterwards
    assert isinstance(macs, np.ndarray) and not torch.is_tensor(macs)


def test_format_oracle_summary():
    summary = dict(static=50.0, best=75.0, median=50.0, worst=25.0,
                   num_samples=8, num_permutations=16,
                   unique_predictions={1: 8},
                   preferences=dict(A={'1': 25.0, '2': 75.0}),
                   efficiency=dict(target='static', accuracy=50.0,
                                   target_gmacs=0.004, mean_gmacs=0.002,
                                   reduction=2.0))
    lines = format_oracle_summary(summary).splitlines()
    assert lines[0] == ('top-1 (%)  static 50.00  best 75.00  median 50.00 '
                        ' worst 25.00  (8 samples, 16 permutations)')
    assert lines[1] == '  preferred options in A: 1: 25.0%, 2: 75.0%'
    assert lines[2].startswith('efficiency: emulating the static model '
                               '(50.00% top-1, 0.0040 GMACs) costs 0.0020')
    del summary['unique_predictions'], summary['efficiency']
    assert format_oracle_summary(summary).startswith(
        'mean per-image mIoU (%)')
