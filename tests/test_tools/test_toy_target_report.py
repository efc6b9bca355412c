"""tools/repro/toy_target_report.py: the tables against numbers
worked out by hand, and the report recomputed from its JSON alone."""
import math
import os.path as osp

import pytest
from toy_target_report import (RUNS_FILE, format_target_report,
                               recompute_target_report, write_target_report)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
X = 2.5e-3
RT = dict(
    threads=1, dynopool_path='fused-cpu', MMDYNOPOOL_NO_EXT=None, torch='2.x')
WIDE = [[0.3, 0.7], [0.4, 0.6], [0.5, 0.5], [0.5, 0.5]]
TALL = [[0.7, 0.3], [0.6, 0.4], [0.5, 0.5], [0.5, 0.5]]
MIXED = [[0.7, 0.3], [0.4, 0.6], [0.5, 0.5], [0.5, 0.5]]


def run(dataset, model, seed, value, gmacs, **kw):
    return dict(
        RT,
        dataset=dataset,
        model=model,
        seed=seed,
        value=value,
        gmacs=gmacs,
        **kw)


def study_runs():
    """pairs: the target runs sit exactly at X, the family at X / 1.1 and
    X * 1.1, so the family read at the target cost is the mean of its two
    members."""
    runs = []
    values = [(80, 81, 83, 84, 83), (82, 83, 85, 85, 85), (84, 85, 89, 90, 88)]
    for s, (h, lo, hi, t, fix) in enumerate(values):
        runs += [
            run('pairs', 'human', s, h, X, study='sweep', resolution=32),
            run('pairs',
                'human',
                s,
                lo,
                X / 1.1,
                study='target',
                resolution=[24, 46]),
            run('pairs',
                'human',
                s,
                hi,
                X * 1.1,
                study='target',
                resolution=[24, 48]),
            run('pairs',
                'target',
                s,
                t,
                X,
                study='target',
                scales=WIDE,
                target_gmacs=X),
            run('pairs',
                'target_fixfinal',
                s,
                fix,
                X,
                study='target',
                scales=WIDE)
        ]
    runs += [
        run('stretch-v', 'target', 0, 90, X * 1.04, scales=WIDE),
        run('stretch-v', 'target', 1, 91, X * 1.04, scales=WIDE),
        dict(
            RT,
            dataset='stretch-v',
            model='target',
            seed=2,
            failed=True,
            value=None,
            gmacs=None),
        run('stretch-h', 'target', 0, 92, X * 1.06, scales=TALL),
        run('stretch-h', 'target', 1, 93, X * 0.99, scales=MIXED),
        run('stretch-h', 'target', 2, 93, X, scales=TALL),
        run('stretch-v', 'human', 0, 95, X, study='control'),
        # Another study's run in the same work dir: left out.
        run('pairs', 'central', 0, 50.0, X, study='sweep', lambda_factor=4.0)
    ]
    return runs


def settings():
    return dict(
        target_seeds=3,
        epochs=None,
        family=[[24, 46], [24, 48]],
        target_gmacs={
            'pairs': X,
            'stretch-v': X,
            'stretch-h': X
        })


def p_df2(t):
    """Two-sided p of Student's t with 2 degrees of freedom (closed form)."""
    return 1 - abs(t) / math.sqrt(2 + t * t)


def line(md, start):
    return next(row for row in md.splitlines() if row.startswith(start))


def test_tables_by_hand():
    md = format_target_report(dict(settings=settings(), runs=study_runs()))
    # target - human: d = 4, 3, 6: mean 4.33, sd sqrt(7/3), t = 4.914.
    t = (13 / 3) / (math.sqrt(7 / 3) / math.sqrt(3))
    half = 4.302653 * math.sqrt(7 / 3) / math.sqrt(3)  # t_{0.975, 2}
    assert line(md, '| pairs | DynOPool target - human 32x32 |') == (
        f'| pairs | DynOPool target - human 32x32 | 3 | +4.33 '
        f'[{13 / 3 - half:+.2f}, {13 / 3 + half:+.2f}] '
        f'(p={p_df2(t):.2g}) |')
    # The family at the target cost: (81 + 83) / 2, (83 + 85) / 2,
    # (85 + 89) / 2 = 82, 84, 87; target - it: d = 2, 1, 3: mean 2, sd 1.
    half = 4.302653 / math.sqrt(3)
    assert line(md, '| pairs | DynOPool target - human family') == (
        '| pairs | DynOPool target - human family at the target cost '
        f'(interpolated per seed) | 3 | +2.00 [{2 - half:+.2f}, '
        f'{2 + half:+.2f}] (p={p_df2(2 * math.sqrt(3)):.2g}) |')
    assert '+2.00 [-0.48, +4.48] (p=0.074)' in md
    # target - Fix (Final): d = 1, 0, 2.
    assert f'| 3 | +1.00 [-1.48, +3.48] (p={p_df2(math.sqrt(3)):.2g}) |' in \
        line(md, '| pairs | DynOPool target - Fix (Final) |')
    assert '**human family at the target cost**, 84.33 %' in md
    assert line(md, '| 2 | 84.00 | 85.00 | 89.00 | 87.00 | 90.00 | 88.00 |')
    # Conditions: mean ± sample std; the human at X / 1.1 is 0.909 X.
    assert line(md, '| pairs | human 32x32 |') == \
        '| pairs | human 32x32 | 3 (0) | 82.00 ± 2.00 | 2.500 ± 0.000 | ' \
        '1.000 | 3/3 |'
    assert line(
        md,
        '| pairs | human 24x46 |').endswith('| 2.273 ± 0.000 | 0.909 | 0/3 |')
    assert line(md, '| stretch-v | DynOPool target |') == \
        '| stretch-v | DynOPool target | 2 (1) | 90.50 ± 0.71 | ' \
        '2.600 ± 0.000 | 1.040 | 2/2 |'
    # Cost: 3 (pairs) + 2 (stretch-v) + 2 of 3 (stretch-h: 1.06x is out).
    assert 'Cost: 7 of 9 target runs end within ±5 % of X (1 failed). ' \
        "Fix (Final) ran at its target run's sizes in 3 of 3 runs." in md
    # Transposition: seed 0 flips; seed 1 is mixed on stretch-h; seed 2
    # diverged on stretch-v.
    assert line(md, '| 0 | (0.30, 0.70)').endswith('| tall | yes |')
    assert line(md, '| 1 | (0.30, 0.70)').endswith('| mixed | no |')
    assert line(md, '| 2 | diverged | diverged |').endswith('| no |')
    assert '1/3 seeds.' in md
    assert 'lambda_factor' not in md and '50.00' not in md
    assert 'threads: 1; dynopool_path: fused-cpu' in md


def test_recompute_from_json(tmp_path):
    runs = study_runs()
    runs[0]['trajectory'] = {'step': [10]}  # not kept in the JSON
    md_file = write_target_report(str(tmp_path), settings(), runs)
    with open(md_file) as f:
        written = f.read()
    assert recompute_target_report(str(tmp_path / RUNS_FILE)) == written
    assert 'trajectory' not in open(tmp_path / RUNS_FILE).read()
    assert written == format_target_report(
        dict(settings=settings(), runs=study_runs()))


def test_committed_report_recomputes():
    """docs/studies/toy_target.md is what its JSON gives (once the study
    has been run and committed)."""
    runs_json = osp.join(ROOT, 'docs', 'studies', RUNS_FILE)
    if not osp.isfile(runs_json):
        pytest.skip('the toy target study has not been committed yet')
    with open(osp.join(ROOT, 'docs', 'studies', 'toy_target.md')) as f:
        assert recompute_target_report(runs_json) == f.read()
