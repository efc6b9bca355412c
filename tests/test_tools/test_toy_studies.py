"""tools/repro/toy_studies.py and mmdynopool.analysis.toy_study."""
import importlib.util
import json
import os.path as osp

import pytest

from mmdynopool.analysis import toy_study as ts

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'toy_studies', osp.join(ROOT, 'tools', 'repro', 'toy_studies.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plan_counts():
    # control: 2 datasets x 5 models (human, central, one_sided, central at
    # 4x lambda, central with the paper's plain alpha step) x 5 seeds;
    # sweep: 6 lambdas x 3 seeds + 3 count='image' + human (32 px: 5 seeds,
    # 24/28/40 px: 3 each);
    # dynopool_s: 5 seeds (its human baseline is the sweep's 32 px runs).
    plan = ts.toy_study_plan(ts.STUDIES, 5, 3, s_lambda=0.01)
    by_study = {}
    for spec in plan:
        by_study[spec['study']] = by_study.get(spec['study'], 0) + 1
    assert by_study == dict(control=50, sweep=18 + 3 + 5 + 9, dynopool_s=5)
    dirs = {ts._run_dir('w', s) for s in plan}
    # Hand-written: where each kind of run lives (the README points there).
    for expected in ('w/stretch-v/human/seed4', 'w/stretch-h/one_sided/seed0',
                     'w/stretch-h/central_x4_lambda-x4/seed2',
                     'w/stretch-v/central_alpha/seed1',
                     'w/pairs/central/seed2',  # the sweep's x1 point
                     'w/pairs/central_lambda-x0/seed0',
                     'w/pairs/central_count-image/seed1',
                     'w/pairs/human_24px/seed2', 'w/pairs/human/seed4',
                     'w/pairs/central_S-lambda-0.01/seed4'):
        assert expected in dirs, expected
    # dynopool_s alone brings its baseline with it.
    alone = ts.toy_study_plan(['dynopool_s'], 2, 3, s_lambda=0.01)
    assert sorted((s['model'], s['study']) for s in alone) == [
        ('central', 'dynopool_s')] * 2 + [('human', 'sweep')] * 2
    with pytest.raises(ValueError, match='s_lambda'):
        ts.toy_study_plan(['dynopool_s'])


def test_run_cfg_overrides():
    spec = dict(study='control', dataset='stretch-h', model='one_sided',
                seed=3)
    cfg = ts.build_run_cfg(spec, epochs=2)
    assert cfg.randomness.seed == 3 and cfg.train_cfg.max_epochs == 2
    assert cfg.model.backbone.dynopool_cfg == dict(position_grad='one_sided')
    assert cfg.train_dataloader.dataset.variant == 'stretch_h'
    hook = next(h for h in cfg.custom_hooks if h.type == 'GMACsLossHook')
    assert hook.count == 'batch' and hook.loss_weight == 0.0565
    # The configs step alpha in log space; the ablation takes the paper's.
    spaces = {}
    for model in ('one_sided', 'central_alpha'):
        cfg = ts.build_run_cfg(dict(spec, model=model))
        spaces[model] = [h.space for h in cfg.custom_hooks
                         if h.type == 'AlphaGradHook']
    assert spaces == dict(one_sided=['log'], central_alpha=['alpha'])
    spec = dict(study='sweep', dataset='pairs', model='central', seed=0,
                lambda_factor=4.0, count='image')
    hook = next(h for h in ts.build_run_cfg(spec).custom_hooks
                if h.type == 'GMACsLossHook')
    assert hook.count == 'image' and hook.loss_weight == pytest.approx(
        4 * 0.0534)
    spec = dict(study='sweep', dataset='pairs', model='human', seed=0,
                resolution=24)
    cfg = ts.build_run_cfg(spec)
    assert cfg.model.head.num_classes == 100
    assert dict(type='Resize', scale=(24, 24)) in \
        cfg.train_dataloader.dataset.pipeline


def run(study, dataset, model, seed, scales=(), gmacs=1e-3, value=50.0,
        **extra):
    return dict(study=study, dataset=dataset, model=model, seed=seed,
                scales=[list(s) for s in scales], gmacs=gmacs, value=value,
                metric='accuracy/top1', resolutions=[[32, 32], [16, 16]],
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
        results.append(run('control', 'stretch-h', 'one_sided', seed,
                           mixed if seed == 1 else tall))
    # Seed 3 of central diverged on stretch-H: reported, not counted.
    results.append(run('control', 'stretch-v', 'central', 3, wide))
    results.append(dict(study='control', dataset='stretch-h',
                        model='central', seed=3, failed=True, value=None,
                        gmacs=None, error='ValueError: alpha ...'))
    out = ts.summarise_control(results)
    assert out['control'] == dict(central=dict(flipped=3, seeds=4),
                                  one_sided=dict(flipped=2, seeds=3))
    assert 'diverged (seed 3)' in out['table']
    assert 'central: 3/4 seeds, one_sided: 2/3 seeds' in out['table']
    row = next(r for r in out['rows'] if r['model'] == 'one_sided'
               and r['dataset'] == 'stretch-h')
    assert row['orientation'] == ['tall', 'mixed', 'tall']
    # Paired difference: 50 - (90, 91, 92) = -41 on average.
    line = next(line for line in out['table'].splitlines()
                if '| stretch-v | central |' in line)
    assert '-41.00 (p=' in line


def sweep_results(gmacs_by_factor, human_by_res):
    out = []
    for f, g in gmacs_by_factor.items():
        for seed in range(2):
            out.append(run('sweep', 'pairs', 'central', seed, gmacs=g,
                           lambda_factor=f, count='batch',
                           loss_weight=0.05 * f))
    for res, g in human_by_res.items():
        for seed in range(2):
            out.append(run('sweep', 'pairs', 'human', seed, gmacs=g,
                           resolution=res))
    return out


def test_sweep_summary_monotone_pull_and_s_lambda():
    results = sweep_results({0.0: 4e-3, 1.0: 2e-3, 4.0: 1e-3, 16.0: 5e-4,
                             64.0: 3e-4}, {24: 1e-3, 32: 1.5e-3})
    out = ts.summarise_sweep(results)
    assert out['monotone'] is True
    assert out['pull_vs_zero'] == pytest.approx(0.5)
    assert 'ends 50.0 % below lambda = 0 in mean GMACs' in out['table']
    # The human 32 px cost 1.5e-3: x1 (2e-3, ratio 1.33) is closer than x4
    # (1e-3, ratio 1.5), so DynOPool-S takes x1's lambda, 0.05.
    assert ts.s_lambda_from_sweep(out['points']) == pytest.approx(0.05)
    out['points']['human'][-1]['gmacs'] = 1.1e-3  # now x4 is closer
    assert ts.s_lambda_from_sweep(out['points']) == pytest.approx(0.2)
    bumpy = ts.summarise_sweep(sweep_results(
        {0.0: 4e-3, 1.0: 4.2e-3, 4.0: 2e-3}, {32: 1e-3}))
    assert bumpy['monotone'] is False


def test_toy_studies_rejects_bad_arguments(capsys, tmp_path):
    tool = load_tool()
    for argv, msg in ((['--epochs', '0'], '--epochs must be >= 1, got 0'),
                      (['--seeds', '0'], '--seeds must be >= 1, got 0'),
                      (['--s-lambda', '-1'], '--s-lambda must be >= 0'),
                      (['--studies', 'mnist'], "invalid choice: 'mnist'")):
        with pytest.raises(SystemExit):
            tool.parse_args(argv)
        assert msg in capsys.readouterr().err
    with pytest.raises(ValueError, match='studies must be'):
        ts.run_toy_studies(str(tmp_path), studies=['tile'])
    with pytest.raises(ValueError, match='jobs must be an integer >= 1'):
        ts.run_toy_studies(str(tmp_path), jobs=0)


TINY = [
    f'{loader}_dataloader.dataset.{k}={v}'
    for loader in ('train', 'val', 'test')
    for k, v in (('num_train', 100), ('num_val', 10))
] + ['train_dataloader.batch_size=10']


@pytest.mark.slow
def test_toy_studies_tiny_end_to_end(tmp_path):
    """The control and DynOPool-S studies at 1 seed, 1 epoch, 100 digits:
    runs train, are read back on a second call, and the report has them."""
    tool = load_tool()
    work = str(tmp_path / 'toy')
    argv = ['--work-dir', work, '--studies', 'control', 'dynopool_s',
            '--seeds', '1', '--epochs', '1', '--s-lambda', '0.02',
            '--cfg-options'] + TINY
    md = tool.main(argv)
    with open(osp.join(work, 'toy_studies.json')) as f:
        out = json.load(f)
    runs = {(r['dataset'], r['model'], r['study']): r for r in out['runs']}
    assert sorted(runs) == sorted(
        [(d, m, 'control') for d in ('stretch-v', 'stretch-h')
         for m in ('human', 'central', 'one_sided', 'central_x4',
                   'central_alpha')] +
        [('pairs', 'human', 'sweep'), ('pairs', 'central', 'dynopool_s')])
    human = runs['stretch-h', 'human', 'control']
    assert human['resolutions'] == [[32, 32], [16, 16], [8, 8], [4, 4],
                                    [2, 2]]
    s_run = runs['pairs', 'central', 'dynopool_s']
    assert s_run['loss_weight'] == 0.02
    assert s_run['trajectory']['step'][0] == 10  # ShapeLoggingHook, 10 its
    assert len(s_run['trajectory']) == 1 + 2 * 4  # step + (h, w) x 4 layers
    with open(md) as f:
        report = f.read()
    assert 'Transposition control' in report and 'DynOPool-S' in report
    for png in ('toy_trajectories.png', ):
        assert osp.isfile(osp.join(work, png))
    # A second call reads every run back: same numbers.
    again = ts.run_toy_studies(work, ['control', 'dynopool_s'], 1, 3, 1, 1,
                               0.02, None)
    assert [r['value'] for r in again['runs']] == [
        r['value'] for r in out['runs']]
