"""Every figure writes a PNG (one matplotlib set-up for all)."""
import os.path as osp

from mmdynopool.analysis import (plot_learned_shapes, plot_oracle, plot_shapes,
                                 plot_tradeoff)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs', 'demo',
                'fcn_hr16-slim_dynopool_1xb8-600iter_digits-voc-96x96.py')
PNG = b'\x89PNG\r\n\x1a\n'


def is_png(path):
    with open(path, 'rb') as f:
        return f.read(8) == PNG


def test_plot_writes_png(tmp_path):
    out = plot_shapes([[(32, 32), (16, 16),
                        (8, 8)], [(32, 32), (21, 14),
                                  (10, 7)]], ['human', 'DynOPool'],
                      str(tmp_path / 'shapes.png'),
                      ['0.31 GMACs', '0.36 GMACs'])
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert osp.getsize(out) > 5000


def test_plot_learned_shapes(tmp_path):
    out = plot_learned_shapes([(DEMO, None)], (96, 96),
                              str(tmp_path / 'sub' / 'shapes.png'))
    assert is_png(out)  # its folder created


def test_plot_tradeoff(tmp_path):
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
    png = plot_tradeoff(
        dict(dynopool=dyno, human=human), str(tmp_path / 'sweep.png'), 'test')
    with open(png, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_plot_oracle(tmp_path):
    summary = dict(
        static=50.0,
        unique_predictions={
            1: 3,
            2: 5
        },
        preferences=dict(A={
            '1': 40.0,
            '2': 60.0
        }, B={'1x2': 100.0}))
    greedy = dict(order=[1, 0], accuracy=[60.0, 75.0])
    assert is_png(plot_oracle(str(tmp_path / 'o.png'), greedy, summary, 't'))
    assert is_png(
        plot_oracle(
            str(tmp_path / 'seg.png'), None,
            dict(summary, unique_predictions=None)))
