"""tools/repro/toy_studies.py (the plan and summaries are tested in
tests/test_analysis/test_toy_study.py and test_toy_report.py)."""
import importlib.util
import json
import os.path as osp

import pytest
import toy_study as ts

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'toy_studies', osp.join(ROOT, 'tools', 'repro', 'toy_studies.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    argv = [
        '--work-dir', work, '--studies', 'control', 'dynopool_s', '--seeds',
        '1', '--epochs', '1', '--s-lambda', '0.02', '--cfg-options'
    ] + TINY
    md = tool.main(argv)
    with open(osp.join(work, 'toy_studies.json')) as f:
        out = json.load(f)
    runs = {(r['dataset'], r['model'], r['study']): r for r in out['runs']}
    assert sorted(runs) == sorted([(d, m, 'control')
                                   for d in ('stretch-v', 'stretch-h')
                                   for m in ('human', 'central', 'one_sided',
                                             'central_x4', 'central_alpha')] +
                                  [('pairs', 'human', 'sweep'),
                                   ('pairs', 'central', 'dynopool_s')])
    human = runs['stretch-h', 'human', 'control']
    assert human['resolutions'] == [[32, 32], [16, 16], [8, 8], [4, 4], [2, 2]]
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
    assert [r['value']
            for r in again['runs']] == [r['value'] for r in out['runs']]


@pytest.mark.slow
def test_toy_target_study_tiny_end_to_end(tmp_path):
    """The target study at 1 seed, 1 epoch, 100 digits: every condition
    trains, records its environment, the Fix (Final) retrain runs at the
    learned sizes, the report recomputes from its JSON and a second call
    reads every run back."""
    from toy_target_report import RUNS_FILE, recompute_target_report
    tool = load_tool()
    work, docs = str(tmp_path / 'toy'), str(tmp_path / 'docs')
    argv = [
        '--work-dir', work, '--report-dir', docs, '--studies', 'target',
        '--target-seeds', '1', '--epochs', '1', '--cfg-options'
    ] + TINY
    md = tool.main(argv)
    assert md == osp.join(docs, 'toy_target.md')
    with open(osp.join(docs, RUNS_FILE)) as f:
        out = json.load(f)
    runs = {
        (r['dataset'], r['model'], str(r.get('resolution'))): r
        for r in out['runs']
    }
    assert sorted(runs) == sorted(
        [(d, m, 'None') for d in ('stretch-v', 'stretch-h')
         for m in ('human', 'target', 'target_fixfinal')] +
        [('pairs', 'human', '32'), ('pairs', 'human', '[24, 46]'),
         ('pairs', 'human', '[24, 48]'), ('pairs', 'target', 'None'),
         ('pairs', 'target_fixfinal', 'None')])
    x = out['settings']['target_gmacs']
    for r in runs.values():
        assert r['threads'] == 1 and r['torch'] and r['dynopool_path'] in (
            'fused-cpu', 'generic')
        assert 'MMDYNOPOOL_NO_EXT' in r and r['train_seconds'] > 0
    for d in ('pairs', 'stretch-v', 'stretch-h'):
        target = runs[d, 'target', 'None']
        assert target['target_gmacs'] == x[d]
        assert abs(target['gmacs'] / x[d] - 1) <= 0.05
        fix = runs[d, 'target_fixfinal', 'None']
        assert fix['fixed_backbone'] == target['fixed_backbone']
        assert [r['out'] for r in fix['layers']
                ] == [r['out'] for r in target['layers']]
        assert fix['gmacs'] == target['gmacs']
    assert runs['pairs', 'human', '[24, 48]']['resolutions'][0] == [24, 48]
    with open(md) as f:
        report = f.read()
    assert recompute_target_report(osp.join(docs, RUNS_FILE)) == report
    again = ts.run_toy_studies(
        work, ['target'],
        epochs=1,
        cfg_options=tool.parse_args(argv).cfg_options,
        target_seeds=1,
        report_dir=docs)
    assert sorted((r['work_dir'], r['value']) for r in again['runs']) == \
        sorted((r['work_dir'], r['value']) for r in out['runs'])
