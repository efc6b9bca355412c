"""tools/repro/toy_report.py: the studies' tables and verdicts from
hand-made run results, its figures (toy_plots.py), and the committed
report recomputed from its JSON."""
import json
import os.path as osp

import pytest
import toy_report as tr
from toy_plots import plot_sweep, plot_trajectories

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PNG = b'\x89PNG\r\n\x1a\n'


def is_png(path):
    with open(path, 'rb') as f:
        return f.read(8) == PNG


def run(study,
        dataset,
        model,
        seed,
        scales=(),
        gmacs=1e-3,
        value=50.0,
        **extra):
    return dict(
        study=study,
        dataset=dataset,
        model=model,
        seed=seed,
        scales=[list(s) for s in scales],
        gmacs=gmacs,
        value=value,
        metric='accuracy/top1',
        resolutions=[[32, 32], [16, 16]],
        **extra)


def test_control_summary_counts_flips_per_seed():
    wide, tall = [(0.3, 0.5), (0.4, 0.6)], [(0.5, 0.3), (0.6, 0.4)]
    mixed = [(0.3, 0.5), (0.6, 0.4)]
    results = []
    for seed in range(3):
        for d in ('stretch-v', 'stretch-h'):
            results.append(run('control', d, 'human', seed, value=90 + seed))
        results.append(run('control', 'stretch-v', 'central', seed, wide))
        results.append(run('control', 'stretch-h', 'central', seed, tall))
        # one_sided: seed 1 does not flip (mixed on stretch-H).
        results.append(run('control', 'stretch-v', 'one_sided', seed, wide))
        results.append(
            run('control', 'stretch-h', 'one_sided', seed,
                mixed if seed == 1 else tall))
    # Seed 3 of central diverged on stretch-H: reported, not counted.
    results.append(run('control', 'stretch-v', 'central', 3, wide))
    results.append(
        dict(
            study='control',
            dataset='stretch-h',
            model='central',
            seed=3,
            failed=True,
            value=None,
            gmacs=None,
            error='ValueError: alpha ...'))
    out = tr.summarise_control(results)
    assert out['control'] == dict(
        central=dict(flipped=3, seeds=4), one_sided=dict(flipped=2, seeds=3))
    assert 'diverged (seed 3)' in out['table']
    assert 'central: 3/4 seeds, one_sided: 2/3 seeds' in out['table']
    row = next(r for r in out['rows']
               if r['model'] == 'one_sided' and r['dataset'] == 'stretch-h')
    assert row['orientation'] == ['tall', 'mixed', 'tall']
    # Paired difference: 50 - (90, 91, 92) = -41 on average.
    line = next(line for line in out['table'].splitlines()
                if '| stretch-v | central |' in line)
    assert '-41.00 (p=' in line


def sweep_results(gmacs_by_factor, human_by_res):
    out = []
    for f, g in gmacs_by_factor.items():
        for seed in range(2):
            out.append(
                run('sweep',
                    'pairs',
                    'central',
                    seed,
                    gmacs=g,
                    lambda_factor=f,
                    count='batch',
                    loss_weight=0.05 * f))
    for res, g in human_by_res.items():
        for seed in range(2):
            out.append(
                run('sweep', 'pairs', 'human', seed, gmacs=g, resolution=res))
    return out


def test_sweep_summary_monotone_pull_and_s_lambda():
    results = sweep_results(
        {
            0.0: 4e-3,
            1.0: 2e-3,
            4.0: 1e-3,
            16.0: 5e-4,
            64.0: 3e-4
        }, {
            24: 1e-3,
            32: 1.5e-3
        })
    out = tr.summarise_sweep(results)
    assert out['monotone'] is True
    assert out['pull_vs_zero'] == pytest.approx(0.5)
    assert 'ends 50.0 % below lambda = 0 in mean GMACs' in out['table']
    # The human 32 px cost 1.5e-3: x1 (2e-3, ratio 1.33) is closer than x4
    # (1e-3, ratio 1.5), so DynOPool-S takes x1's lambda, 0.05.
    assert tr.s_lambda_from_sweep(out['points']) == pytest.approx(0.05)
    out['points']['human'][-1]['gmacs'] = 1.1e-3  # now x4 is closer
    assert tr.s_lambda_from_sweep(out['points']) == pytest.approx(0.2)
    bumpy = tr.summarise_sweep(
        sweep_results({
            0.0: 4e-3,
            1.0: 4.2e-3,
            4.0: 2e-3
        }, {32: 1e-3}))
    assert bumpy['monotone'] is False


def test_toy_figures(tmp_path):
    traj = {
        'step': [10, 20],
        'scale/f.1/h': [0.5, 0.4],
        'scale/f.1/w': [0.5, 0.6],
        'scale/f.3/h': [0.5, 0.5],
        'scale/f.3/w': [0.5, 0.5]
    }
    runs = [
        dict(study='control', dataset=d, model=m, seed=0, trajectory=traj)
        for d in ('stretch-v', 'stretch-h') for m in ('central', 'one_sided')
    ]
    runs.append(
        dict(
            study='control',
            dataset='stretch-v',
            model='central',
            seed=1,
            failed=True))  # diverged: not drawn
    assert is_png(plot_trajectories(runs, str(tmp_path / 'traj.png')))
    point = dict(gmacs=1e-3, gmacs_std=1e-4, value=80.0, value_std=1.0)
    points = dict(
        human=[dict(point, resolution=32)],
        dynopool=[dict(point, lambda_factor=1.0)],
        image_count=[])
    assert is_png(plot_sweep(points, str(tmp_path / 'sweep.png')))
    assert osp.getsize(str(tmp_path / 'sweep.png')) > 5000


def test_committed_toy_report_recomputes(tmp_path):
    """docs/studies/toy_studies.md is what write_toy_report makes of the
    summary and runs in docs/studies/toy_studies.json."""
    docs = osp.join(ROOT, 'docs', 'studies')
    with open(osp.join(docs, 'toy_studies.json')) as f:
        data = json.load(f)
    md = tr.write_toy_report(
        str(tmp_path), data['summary'], data['runs'], data['settings'])
    with open(md) as f, open(osp.join(docs, 'toy_studies.md')) as g:
        assert f.read() == g.read()
