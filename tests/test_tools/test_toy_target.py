"""tools/repro/toy_target.py: the target study's runs and configs."""
import pytest
import toy_study as ts
from toy_target import (TARGET_DATASETS, TARGET_FAMILY, target_needs,
                        target_plan)

X = {'pairs': 2.5e-3, 'stretch-v': 2.4e-3, 'stretch-h': 2.3e-3}


def test_target_plan_and_needs():
    learned, baselines = target_plan(3, X)
    # target and Fix (Final) on 3 datasets; humans at 32x32 on 3 datasets
    # and at 24x46 / 24x48 on pairs.
    assert len(learned) == 2 * 3 * 3 and len(baselines) == 3 * 3 + 2 * 3
    plan = ts.toy_study_plan(['target'], target_seeds=3, target_gmacs=X)
    dirs = [ts._run_dir('w', s) for s in plan]
    for expected in (
            'w/pairs/target/seed2',
            'w/stretch-h/target/seed0',
            'w/stretch-v/target_fixfinal/seed1',
            'w/pairs/human/seed2',  # the sweep's 32 px run
            'w/stretch-v/human/seed0',  # the control's
            'w/pairs/human_24x46px/seed1',
            'w/pairs/human_24x48px/seed2'):
        assert expected in dirs, expected
    assert len(set(dirs)) == len(plan) == 33
    targets = [s for s in plan if s['model'] == 'target']
    assert {s['dataset']: s['target_gmacs'] for s in targets} == X
    needs = target_needs(plan)
    for spec, need in zip(plan, needs):
        if spec['model'] == 'target_fixfinal':
            other = plan[need]
            assert (other['model'], other['dataset'],
                    other['seed']) == ('target', spec['dataset'], spec['seed'])
        else:
            assert need is None
    # The target runs come first (others wait for them).
    assert [s['model'] for s in plan[:9]] == ['target'] * 9
    # Shared with the sweep and the control: labelled as they label them.
    human = {
        (s['dataset'], s['seed']): s
        for s in plan
        if s['model'] == 'human' and s.get('resolution', 32) == 32
    }
    assert human['pairs', 0]['study'] == 'sweep'
    assert human['stretch-v', 0]['study'] == 'control'
    with pytest.raises(ValueError, match='target_gmacs'):
        ts.toy_study_plan(['target'], target_gmacs={'pairs': 1e-3})
    with pytest.raises(ValueError, match='needs the target run'):
        target_needs([dict(model='target_fixfinal', dataset='pairs', seed=0)])
    # All four studies together: the target's baselines are not doubled.
    both = ts.toy_study_plan(
        ts.ALL_STUDIES, 5, 3, s_lambda=0.01, target_seeds=3, target_gmacs=X)
    alone = ts.toy_study_plan(ts.STUDIES, 5, 3, s_lambda=0.01)
    assert len(both) == len(alone) + 18 + 6  # pairs/stretch humans shared


def test_target_run_cfgs():
    spec = dict(
        study='target',
        dataset='pairs',
        model='target',
        seed=4,
        target_gmacs=2.5e-3)
    cfg = ts.build_run_cfg(spec)
    hook = next(h for h in cfg.custom_hooks if h.type == 'GMACsLossHook')
    assert hook.target_gmacs == 2.5e-3 and hook.loss_weight == 0.0534
    assert cfg.randomness.seed == 4
    assert cfg.model.backbone.type == 'DynOPoolSlimVGG'
    fixed = dict(
        init_scales=[[0.3, 0.7], [0.5, 0.4], [0.5, 0.5], [0.5, 0.5]],
        dynopool_cfg=dict(fixed=True))
    cfg = ts.build_run_cfg(
        dict(spec, model='target_fixfinal', fixed_backbone=fixed))
    assert not [h for h in cfg.custom_hooks if h.type == 'GMACsLossHook']
    assert cfg.model.backbone.init_scales == fixed['init_scales']
    assert cfg.model.backbone.dynopool_cfg == dict(fixed=True)
    with pytest.raises(ValueError, match='fixed_backbone'):
        ts.build_run_cfg(dict(spec, model='target_fixfinal'))
    for size in TARGET_FAMILY:
        cfg = ts.build_run_cfg(
            dict(
                study='target',
                dataset='pairs',
                model='human',
                seed=0,
                resolution=list(size)))
        # mmcv's Resize takes (W, H).
        assert dict(type='Resize', scale=size[::-1]) in \
            cfg.train_dataloader.dataset.pipeline
        assert cfg.model.backbone.type == 'SlimVGG'


def test_human_cost():
    # The pairs head has 100 classes, the stretch heads 10: 64 x 90 MACs
    # apart; the network's count is the README's 2.587 MMACs.
    costs = {d: ts.human_cost(d) for d in TARGET_DATASETS}
    assert costs['pairs'] == pytest.approx(2.587e-3, abs=1e-6)
    assert costs['pairs'] - costs['stretch-v'] == pytest.approx(64 * 90e-9)
    assert costs['stretch-v'] == costs['stretch-h']


def test_fixfinal_of_a_diverged_target(tmp_path):
    """A Fix (Final) whose target run diverged is recorded as failed (no
    shape to retrain) instead of stopping the study."""
    spec = dict(
        study='target',
        dataset='pairs',
        model='target_fixfinal',
        seed=1,
        target_gmacs=2.5e-3)
    out = ts._run_one((spec, str(tmp_path), 1, None, 1),
                      dict(failed=True, value=None))
    assert out['failed'] and out['value'] is None
    assert 'no learned shape' in out['error'] and out['threads'] == 1
