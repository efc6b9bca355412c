"""Learned-shape reports (mmdynopool.analysis.shapes)."""
from mmdynopool.analysis import (feature_map_sizes, format_resizing_report,
                                 resizing_report)
from mmdynopool.analysis.shapes import format_layer_row
from mmdynopool.models import DynOPoolVGG


def test_format_and_training_mode_restored():
    model = DynOPoolVGG(11, out_indices=(4, ))
    model.train()
    text = format_resizing_report(resizing_report(model, (32, 48)))
    assert model.training
    lines = text.splitlines()
    assert len(lines) == 1 + 5 + 1  # header, five pools, outputs
    # The first row is the first DynOPool, under its module name.
    first = next(n for n, m in model.named_modules()
                 if m is model.dynopools[0])
    assert lines[1].split()[:2] == [first, 'DynOPool2d']
    # 32x48 halves four times, then the 1.5 floor keeps 2x3 -> 2x2.
    assert lines[-2].split()[-4:] == ['(2,', '3)', '(2,', '2)']
    assert lines[-1] == 'outputs: 2x2'


def test_feature_map_sizes_are_the_distinct_outputs_in_order():
    model = DynOPoolVGG(11, out_indices=(4, ))
    report = resizing_report(model, (32, 48))
    # By hand: 32x48 halves four times, then the 1.5 floor keeps 2x3 -> 2x2.
    assert feature_map_sizes(report, (32, 48)) == [(32, 48), (16, 24), (8, 12),
                                                   (4, 6), (2, 3), (2, 2)]


def test_layer_row_columns():
    row = dict(
        name='a',
        type='DynOPool2d',
        scale=(0.5, 1 / 3),
        out=(16, 8),
        **{'in': (32, 24)})
    line = format_layer_row(row)
    assert line[:40].rstrip() == 'a' and line[40:54].rstrip() == 'DynOPool2d'
    assert line[54:72].rstrip() == '(0.500, 0.333)'
    assert line[72:84].rstrip() == '(32, 24)' and line[84:] == '(16, 8)'
