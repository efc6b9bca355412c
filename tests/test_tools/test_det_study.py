"""tools/repro/det_study.py: the runs' configs, the report by hand, its
recomputation from the committed runs JSON, and a tiny end-to-end study."""
import json
import os.path as osp
import statistics

import pytest

pytest.importorskip('mmdet')

import det_study  # noqa: E402  (tools/repro on sys.path: conftest.py)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HUMAN_GMACS = 0.1326464  # the DynOPool config's target, checked below


def test_parse_args(capsys):
    for argv, msg in ((['--iters', '0'], '--iters must be >= 1, got 0'),
                      (['--seeds', '0'], '--seeds must be >= 1, got 0'),
                      (['--jobs', '0'], '--jobs must be >= 1, got 0')):
        with pytest.raises(SystemExit):
            det_study.parse_args(argv)
        assert msg in capsys.readouterr().err
    args = det_study.parse_args([])
    assert (args.seeds, args.jobs, args.threads,
            args.out_dir) == (5, 1, 1, 'docs/studies')
    with pytest.raises(ValueError, match='threads must be an integer >= 1'):
        det_study.run_det_study('w', 'o', threads=0)


def test_plan():
    plan = det_study.det_plan(3)
    assert len(plan) == 6
    assert {(s['condition'], s['seed'])
            for s in plan} == {(c, s)
                               for c in ('human', 'dynopool_target')
                               for s in range(3)}


def test_run_cfgs(tmp_path):
    root = str(tmp_path / 'data')
    human = det_study.build_det_cfg(dict(condition='human', seed=3), root)
    dyn = det_study.build_det_cfg(
        dict(condition='dynopool_target', seed=3), root, 0.25, iters=7)
    for cfg in (human, dyn):
        assert cfg.randomness.seed == 3
        for name in ('train_dataloader', 'val_dataloader'):
            assert cfg[name].dataset.data_root == root + '/'
        assert cfg.val_evaluator.ann_file == \
            root + '/annotations/instances_val.json'
    assert human.model.backbone.type == 'ResNet'
    assert dyn.model.backbone.type == 'DynOPoolResNet'
    hooks = [h for h in dyn.custom_hooks if h['type'] == 'GMACsLossHook']
    assert len(hooks) == 1 and hooks[0]['target_gmacs'] == 0.25
    assert not [
        h
        for h in human.get('custom_hooks', []) if h['type'] == 'GMACsLossHook'
    ]
    assert dyn.train_cfg.max_iters == dyn.param_scheduler[1].end == 7
    assert human.train_cfg.max_iters == 1200
    with pytest.raises(ValueError, match='needs target_gmacs'):
        det_study.build_det_cfg(
            dict(condition='dynopool_target', seed=0), root)


def test_human_cost_is_the_configs_target():
    assert det_study.human_cost() == pytest.approx(HUMAN_GMACS, rel=1e-9)


def _run(cond, seed, value, gmacs, scales=((0.25, 0.25), (0.5, 0.5))):
    return dict(
        condition=cond,
        seed=seed,
        value=value,
        metrics={
            'coco/bbox_mAP': value,
            'coco/bbox_mAP_50': value + 0.1
        },
        gmacs=gmacs,
        scales=[list(s) for s in scales])


def test_report_by_hand():
    human = [0.30, 0.32, 0.28]
    dyn = [0.35, 0.33, 0.34]
    runs = [_run('human', s, v, 1.0) for s, v in enumerate(human)]
    runs += [
        _run('dynopool_target', s, v, g)
        for s, (v, g) in enumerate(zip(dyn, (0.97, 1.02, 1.08)))
    ]
    text = det_study.format_report(
        dict(
            settings=dict(
                seeds=3, jobs=2, threads=1, iters=None, target_gmacs=1.0),
            runs=runs))
    # Hand numbers: differences 5, 1, 6 points: mean 4, sd sqrt(7),
    # half width t(0.975, 2) sqrt(7 / 3) = 6.57, t = 2.619, p = 0.12.
    m, sd = statistics.mean(dyn) * 100, statistics.stdev(dyn) * 100
    assert f'| dynopool_target | 3 | {m:.2f} ± {sd:.2f} |' in text
    assert '| human | 3 | 30.00 ± 2.00 | 40.00 ± 2.00 | 1.000-1.000 | 3/3 |' \
        in text
    assert '| 0.970-1.080 | 2/3 |' in text  # 1.08 is outside 5 %
    assert 'over 3 seeds: +4.00 [-2.57, +10.57] (p=0.12)' in text
    assert '| 1 | 32.00 | 33.00 | 1.0200 | 0.250x0.250, 0.500x0.500 |' \
        in text


def test_committed_report_recomputes():
    runs = osp.join(ROOT, 'docs', 'studies', det_study.RUNS)
    report = osp.join(ROOT, 'docs', 'studies', det_study.REPORT)
    with open(report) as f:
        assert det_study.recompute_report(runs) == f.read()
    with open(runs) as f:
        data = json.load(f)
    assert data['settings']['seeds'] >= 5 and data['settings']['iters'] is None
    assert all(r['threads'] == 1 for r in data['runs'])


@pytest.mark.slow
def test_det_study_tiny_end_to_end(tmp_path):
    from mmdynopool.datasets import build_digits_coco
    work = tmp_path / 'w'
    # Built first, small: the study reuses data that is already there.
    build_digits_coco(str(work / 'digits_coco'), num_train=8, num_val=2)
    out = det_study.run_det_study(
        str(work),
        str(tmp_path / 'out'),
        seeds=2,
        iters=2,
        # Two iterations score below the configs' 0.05: keep every box.
        cfg_options={'model.test_cfg.score_thr': 0.0})
    assert len(out['runs']) == 4
    with open(tmp_path / 'out' / det_study.RUNS) as f:
        data = json.load(f)
    for r in data['runs']:
        assert r['threads'] == 1 and r['iters'] == 2
        assert r['metric'] == 'coco/bbox_mAP' and 0 <= r['value'] <= 1
    human = [r for r in data['runs'] if r['condition'] == 'human']
    assert all(r['gmacs'] == pytest.approx(HUMAN_GMACS) for r in human)
    with open(out['report']) as f:
        assert f.read() == det_study.recompute_report(
            str(tmp_path / 'out' / det_study.RUNS))
    # Resumable: a second call reads the finished runs back.
    again = det_study.run_det_study(
        str(work), str(tmp_path / 'out'), 2, iters=2)
    assert [r['value'] for r in again['runs']] == \
        [r['value'] for r in out['runs']]
