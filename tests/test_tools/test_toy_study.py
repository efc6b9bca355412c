"""tools/repro/toy_study.py: the plan of runs and their configs."""
import pytest
import toy_study as ts


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
    for expected in (
            'w/stretch-v/human/seed4',
            'w/stretch-h/one_sided/seed0',
            'w/stretch-h/central_x4_lambda-x4/seed2',
            'w/stretch-v/central_alpha/seed1',
            'w/pairs/central/seed2',  # the sweep's x1 point
            'w/pairs/central_lambda-x0/seed0',
            'w/pairs/central_count-image/seed1',
            'w/pairs/human_24px/seed2',
            'w/pairs/human/seed4',
            'w/pairs/central_S-lambda-0.01/seed4'):
        assert expected in dirs, expected
    # dynopool_s alone brings its baseline with it.
    alone = ts.toy_study_plan(['dynopool_s'], 2, 3, s_lambda=0.01)
    assert sorted(
        (s['model'], s['study']) for s in
        alone) == [('central', 'dynopool_s')] * 2 + [('human', 'sweep')] * 2
    with pytest.raises(ValueError, match='s_lambda'):
        ts.toy_study_plan(['dynopool_s'])


def test_run_cfg_overrides():
    spec = dict(
        study='control', dataset='stretch-h', model='one_sided', seed=3)
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
        spaces[model] = [
            h.space for h in cfg.custom_hooks if h.type == 'AlphaGradHook'
        ]
    assert spaces == dict(one_sided=['log'], central_alpha=['alpha'])
    spec = dict(
        study='sweep',
        dataset='pairs',
        model='central',
        seed=0,
        lambda_factor=4.0,
        count='image')
    hook = next(
        h for h in ts.build_run_cfg(spec).custom_hooks
        if h.type == 'GMACsLossHook')
    assert hook.count == 'image' and hook.loss_weight == pytest.approx(
        4 * 0.0534)
    spec = dict(
        study='sweep', dataset='pairs', model='human', seed=0, resolution=24)
    cfg = ts.build_run_cfg(spec)
    assert cfg.model.head.num_classes == 100
    assert dict(type='Resize', scale=(24, 24)) in \
        cfg.train_dataloader.dataset.pipeline
