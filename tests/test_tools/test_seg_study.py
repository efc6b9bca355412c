"""tools/repro/seg_study.py and its modules (seg_study_runs.py: the runs and
their configs; seg_study_report.py: the tables, by hand, and their
recomputation from the runs JSON)."""
import json
import math
import os.path as osp
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'repro'))

import seg_study  # noqa: E402
import seg_study_report as rep  # noqa: E402
import seg_study_runs as runs_mod  # noqa: E402

#: Tiny data: 16 training and 4 validation mosaics.
TINY = [
    'train_dataloader.dataset.generate.num_train=16',
    'train_dataloader.dataset.generate.num_val=4'
]


def test_parse_args(capsys):
    for argv, msg in ((['--iters', '0'], '--iters must be >= 1, got 0'),
                      (['--seeds', '0'], '--seeds must be >= 1, got 0'),
                      (['--jobs', '0'], '--jobs must be >= 1, got 0')):
        with pytest.raises(SystemExit):
            seg_study.parse_args(argv)
        assert msg in capsys.readouterr().err
    args = seg_study.parse_args([])
    assert (args.seeds, args.jobs, args.threads,
            args.out_dir) == (8, 1, 1, 'docs/studies')
    with pytest.raises(ValueError, match='jobs must be an integer >= 1'):
        runs_mod.run_seg_study('w', 'o', jobs=0)


def test_plan_and_needs():
    plan = runs_mod.seg_plan(8)
    assert len(plan) == 80
    dirs = {runs_mod.run_dir('w', s) for s in plan}
    assert len(dirs) == 80
    for expected in ('w/digits/human/seed7', 'w/digits/dynopool_target/seed0',
                     'w/digits/dynopool_lambda/seed3',
                     'w/digits/fixfinal/seed5', 'w/digits/human_88x88/seed1',
                     'w/digits/human_104x104/seed2',
                     'w/digits/human_80x116/seed6',
                     'w/digits/human_116x80/seed4',
                     'w/stretch-v/dynopool_target/seed0',
                     'w/stretch-h/dynopool_target/seed7'):
        assert expected in dirs, expected
    sizes = {s['condition']: s['input_size'] for s in plan}
    assert sizes['human_80x116'] == [80, 116]
    assert sizes['human'] == sizes['fixfinal'] == [96, 96]
    needs = runs_mod.seg_needs(plan)
    for spec, need in zip(plan, needs):
        if spec['condition'] == 'fixfinal':
            assert plan[need] == dict(spec, condition='dynopool_target')
        else:
            assert need is None
    with pytest.raises(ValueError, match='needs the dynopool_target run'):
        runs_mod.seg_needs(
            [dict(condition='fixfinal', seed=0, dataset='digits')])


def test_run_cfgs_of_every_condition():
    spec = runs_mod._spec
    fixed = dict(init_scales=[[0.4, 0.6]] * 5, dynopool_cfg=dict(fixed=True))
    cfgs = {
        s['dataset'] + '/' + s['condition']:
        runs_mod.build_seg_cfg(s, f'root-{s["dataset"]}', 0.1217, 7, None,
                               fixed if s['condition'] == 'fixfinal' else None)
        for s in runs_mod.seg_plan(1)
    }
    for name, cfg in cfgs.items():
        assert cfg.randomness.seed == 0
        assert cfg.train_cfg.max_iters == 7 == cfg.train_cfg.val_interval
        assert cfg.param_scheduler[0].end == 7
        assert cfg.default_hooks.checkpoint.interval == 7
        dataset = name.split('/')[0]
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader'):
            ds = cfg[loader].dataset
            assert ds.data_root == f'root-{dataset}'
            assert ds.variant == runs_mod.DATASETS[dataset]
    hooks = {
        n: [h for h in c.custom_hooks if h.type == 'GMACsLossHook']
        for n, c in cfgs.items()
    }
    for name in ('digits/dynopool_target', 'stretch-v/dynopool_target',
                 'stretch-h/dynopool_target'):
        assert hooks[name][0].target_gmacs == 0.1217
        assert hooks[name][0].loss_weight == 0.0125
    lam = hooks['digits/dynopool_lambda'][0]
    assert lam.loss_weight == 0.0125 and lam.get('target_gmacs') is None
    assert hooks['digits/fixfinal'] == [] and hooks['digits/human'] == []
    backbones = {n: c.model.backbone for n, c in cfgs.items()}
    assert backbones['digits/human'].type == 'HRNet'
    assert backbones['digits/fixfinal'].type == 'DynOPoolHRNet'
    assert backbones['digits/fixfinal'].init_scales == fixed['init_scales']
    assert backbones['digits/fixfinal'].dynopool_cfg == dict(fixed=True)
    # The human family: Resize after LoadAnnotations in training (labels
    # resized with the image), before it in testing (labels kept).
    cfg = cfgs['digits/human_80x116']
    resize = dict(
        type='Resize', scale=(116, 80), keep_ratio=False, _scope_='mmseg')
    train = cfg.train_dataloader.dataset.pipeline
    test = cfg.val_dataloader.dataset.pipeline
    assert [t['type'] for t in train] == [
        'LoadImageFromFile', 'LoadAnnotations', 'Resize', 'RandomFlip',
        'PackSegInputs'
    ]
    assert [t['type'] for t in test] == [
        'LoadImageFromFile', 'Resize', 'LoadAnnotations', 'PackSegInputs'
    ]
    assert train[2] == resize and test[1] == resize
    assert cfg.test_dataloader.dataset.pipeline == test
    assert cfg.model.data_preprocessor.size == (80, 116)
    assert cfgs['digits/human'].model.data_preprocessor.size == (96, 96)
    # Applying the size twice does not stack two Resizes.
    again = runs_mod.set_seg_input_size(cfg, (88, 88))
    assert [t['type'] for t in again.val_dataloader.dataset.pipeline
            ].count('Resize') == 1
    with pytest.raises(ValueError, match='target_gmacs'):
        runs_mod.build_seg_cfg(spec('digits', 'dynopool_target', 0), 'r')
    with pytest.raises(ValueError, match='fixed_backbone'):
        runs_mod.build_seg_cfg(spec('digits', 'fixfinal', 0), 'r')


def test_human_cost():
    # The demo README's 0.1217 GMACs of the human model at 96x96.
    assert runs_mod.human_cost() == pytest.approx(0.12174336, rel=1e-9)


@pytest.fixture(scope='module')
def tiny_root(tmp_path_factory):
    from mmdynopool.datasets import build_digits_voc
    return build_digits_voc(
        str(tmp_path_factory.mktemp('seg') / 'd'), num_train=16, num_val=4)


@pytest.mark.parametrize('size', [(80, 116), (116, 80), (88, 88)])
def test_family_scored_at_original_labels(tiny_root, size):
    """The model sees H x W; the labels IoUMetric reads, and the
    prediction mmseg gives it, stay 96x96."""
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import Runner
    spec = runs_mod._spec('digits', f'human_{size[0]}x{size[1]}', 0, size)
    cfg = runs_mod.build_seg_cfg(spec, tiny_root)
    init_default_scope('mmseg')
    batch = next(iter(Runner.build_dataloader(cfg.val_dataloader)))
    sample = batch['data_samples'][0]
    assert tuple(batch['inputs'][0].shape[1:]) == size
    assert tuple(sample.gt_sem_seg.data.shape[1:]) == (96, 96)
    assert tuple(sample.ori_shape) == (96, 96)
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        out = model.val_step(batch)[0]
    assert tuple(out.pred_sem_seg.data.shape[1:]) == (96, 96)
    train = next(iter(Runner.build_dataloader(cfg.train_dataloader)))
    data = model.data_preprocessor(train, True)
    assert tuple(data['inputs'].shape[2:]) == size
    assert tuple(data['data_samples'][0].gt_sem_seg.data.shape[1:]) == size


class _Stop(Exception):
    pass


def _initial_parameters(cfg, work_dir):
    """The model's parameters as the Runner starts training (after
    building, initialising and loading), captured in before_train."""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    class Grab(Hook):
        priority = 'HIGHEST'

        def before_train(self, runner):
            self.params = {
                k: v.detach().clone()
                for k, v in runner.model.named_parameters()
            }
            raise _Stop

    cfg.work_dir, cfg.log_level = str(work_dir), 'WARNING'
    runner = Runner.from_cfg(cfg)
    grab = Grab()
    runner.register_hook(grab)
    with pytest.raises(_Stop):
        runner.train()
    return grab.params


def test_same_seed_same_initial_weights(tiny_root, tmp_path):
    """For one seed, the human and DynOPool runs the harness builds start
    from identical values in every parameter they share (the same conv
    weights: pairing by seed shares more than the data order)."""
    spec = runs_mod._spec
    fixed = dict(init_scales=[[0.4, 0.6]] * 5, dynopool_cfg=dict(fixed=True))
    params = {
        cond:
        _initial_parameters(
            runs_mod.build_seg_cfg(
                spec('digits', cond, 3), tiny_root, 0.1217, 2, None, fixed),
            tmp_path / cond)
        for cond in ('human', 'dynopool_target', 'fixfinal')
    }
    human = params['human']
    for cond in ('dynopool_target', 'fixfinal'):
        other = params[cond]
        # Every human parameter keeps its name; DynOPool adds the alphas.
        assert set(other) - set(human) == {
            f'backbone.dynopools.{i}.alpha'
            for i in range(5)
        }
        assert set(human) <= set(other)
        differ = [k for k in human if not torch.equal(human[k], other[k])]
        assert differ == [], f'{cond}: {len(differ)} tensors differ'


# ---------------------------------------------------------------- report
X = 0.12
RT = dict(
    threads=1,
    dynopool_path='fused-cpu',
    MMDYNOPOOL_NO_EXT=None,
    torch='2.x',
    train_seconds=10.0,
    iters=600)


def layers(*sizes):
    return [
        dict(
            name=f'dynopools.{i}',
            type='DynOPool2d',
            scale=[0.5, 0.5],
            out=list(s),
            **{'in': [96, 96]}) for i, s in enumerate(sizes)
    ]


LEARNED = layers((40, 56), (16, 30), (8, 16), (4, 8), (2, 4))


def run(condition, seed, value, gmacs, dataset='digits', size=(96, 96), **kw):
    return dict(
        RT,
        dataset=dataset,
        condition=condition,
        seed=seed,
        value=value,
        gmacs=gmacs,
        input_size=list(size),
        **kw)


def study_runs():
    """Seed 0's target run costs exactly X, seed 1's sqrt(1.2) X and seed
    2's X / sqrt(1.2): halfway in log between the 96 px human (X) and the
    104 / 88 px one (1.2 X, X / 1.2), so the square family at those costs
    is the mean of the two."""
    r = []
    for cond, size, g, vals in (('human', (96, 96), X, (20, 21, 22)),
                                ('human_88x88', (88, 88), X / 1.2,
                                 (18, 19, 20)), ('human_104x104', (104, 104),
                                                 X * 1.2, (22, 23, 24)),
                                ('human_80x116', (80, 116), X * 1.03,
                                 (21, 22, 23)), ('human_116x80', (116, 80),
                                                 X * 1.03, (19, 20, 21))):
        r += [run(cond, s, v, g, size=size) for s, v in enumerate(vals)]
    costs = (X, X * math.sqrt(1.2), X / math.sqrt(1.2))
    r += [
        run('dynopool_target', s, v, g, layers=LEARNED, target_gmacs=X)
        for s, (v, g) in enumerate(zip((23, 22, 26), costs))
    ]
    r += [
        run('dynopool_lambda', s, v, g, layers=LEARNED)
        for s, (v, g) in enumerate(zip((20, 25, 21), (X * 0.9, X * 1.5, X)))
    ]
    r += [
        run('fixfinal', 0, 22, X, layers=LEARNED),
        run('fixfinal', 1, 22, X, layers=LEARNED),
        run('fixfinal',
            2,
            25,
            X,
            layers=layers((48, 48), (24, 24), (12, 12), (6, 6), (3, 3)))
    ]
    r += [
        run('dynopool_target', 0, 30, X, 'stretch-v', layers=LEARNED),
        run('dynopool_target',
            1,
            30,
            X,
            'stretch-v',
            layers=layers((48, 40), (24, 24), (12, 12), (6, 6), (3, 3))),
        run('dynopool_target',
            0,
            30,
            X * 1.02,
            'stretch-h',
            layers=layers((56, 40), (30, 16), (16, 8), (8, 4), (4, 2))),
        run('dynopool_target',
            1,
            30,
            X * 1.02,
            'stretch-h',
            layers=layers((56, 40), (30, 20), (16, 8), (8, 4), (4, 2))),
        dict(
            RT,
            dataset='stretch-h',
            condition='dynopool_target',
            seed=2,
            failed=True,
            value=None,
            gmacs=None,
            input_size=[96, 96])
    ]
    return r


def settings():
    return dict(
        seeds=3,
        iters=None,
        threads=1,
        jobs=2,
        target_gmacs=X,
        crop=[96, 96],
        family=[list(s) for s in runs_mod.FAMILY],
        configs=['human.py', 'dynopool.py'],
        cfg_options={},
        wall_seconds=1.0)


def p_df2(t):
    """Two-sided p of Student's t with 2 degrees of freedom (closed form)."""
    return 1 - abs(t) / math.sqrt(2 + t * t)


def paired_text(d):
    """mean [95 % interval] (p) of three differences, by hand."""
    m = sum(d) / 3
    sd = math.sqrt(sum((x - m)**2 for x in d) / 2)
    half = 4.302653 * sd / math.sqrt(3)  # t_{0.975, 2}
    return (f'{m:+.2f} [{m - half:+.2f}, {m + half:+.2f}] '
            f'(p={p_df2(m / (sd / math.sqrt(3))):.2g})')


def line(md, start):
    return next(row for row in md.splitlines() if row.startswith(start))


def test_report_tables_by_hand():
    md = rep.format_report(dict(settings=settings(), runs=study_runs()))
    assert line(md, '| digits | human |') == (
        '| digits | human | 96x96 | 3 (0) | 21.00 ± 1.00 | 0.1200 ± 0.0000 '
        '| 1.000 | 3/3 | 10 |')
    assert line(md, '| digits | human_88x88 |').endswith(
        '| 0.1000 ± 0.0000 | 0.833 | 0/3 | 10 |')
    assert line(md, '| stretch-h | dynopool_target |').startswith(
        '| stretch-h | dynopool_target | 96x96 | 2 (1) | 30.00 ± 0.00 |')
    # target - human: d = 3, 1, 4.
    assert line(md, '| dynopool_target - human (96x96) |') == \
        f'| dynopool_target - human (96x96) | 3 | {paired_text([3, 1, 4])} |'
    # The square family at the run costs: 20, (21 + 23) / 2, (20 + 22) / 2.
    assert line(md, '| dynopool_target - human square family') == (
        '| dynopool_target - human square family at the run cost '
        f'(interpolated per seed) | 3 | {paired_text([3, 0, 5])} |')
    assert line(md, '| 1 | 21.00 | 19.00 | 23.00 | 22.00 | 20.00 | 22.00 |')
    assert line(md, '| dynopool_target - dynopool_lambda |').endswith(
        f'| {paired_text([3, -3, 5])} |')
    assert line(md, '| dynopool_target - fixfinal |').endswith(
        f'| {paired_text([1, 0, 1])} |')
    assert line(md, '| dynopool_target - human_80x116 |').endswith(
        f'| {paired_text([2, 0, 3])} |')
    # Strongest: 80x116 (mean 22, its 1.03 X within 5 % of the target runs'
    # mean cost) beats the 96 px model and the square family (both 21).
    assert '**human_80x116**, 22.00 mIoU; dynopool_target - it: ' \
        f'{paired_text([2, 0, 3])}, 3 seeds' in md
    # Cost: digits seed 0 only (1.095 X and 0.913 X are out), stretch-v 2,
    # stretch-h 2 (1.02 X); one failed.
    assert '**Cost:** 5 of 8 `dynopool_target` runs (digits and stretch) ' \
        'end within ±5 % of X (1 failed).' in md
    assert '`dynopool_lambda` ends at 0.90-1.50x X.' in md
    assert "`fixfinal` ran at its target run's sizes in 2 of 3 seeds." in md
    # Transposition: seed 0 wide / tall; seed 1 square on stretch-v.
    assert line(md, '| 0 | 40x56 16x30 8x16 4x8 2x4 | wide |').endswith(
        '| 56x40 30x16 16x8 8x4 4x2 | tall | yes |')
    assert line(md, '| 1 | 48x40 24x24').endswith('| tall | no |')
    assert '**1 of 2 seeds**' in md
    assert 'threads: 1; dynopool_path: fused-cpu' in md


def test_report_recomputes_from_json(tmp_path):
    md_file = rep.write_report(str(tmp_path), settings(), study_runs())
    with open(md_file) as f:
        written = f.read()
    assert rep.recompute_report(str(tmp_path / rep.RUNS_FILE)) == written
    assert written == rep.format_report(
        dict(settings=settings(), runs=study_runs()))
    assert osp.getsize(tmp_path / rep.FIGURE_FILE) > 0


def test_pool_sizes_and_orientation():
    assert rep.pool_sizes(dict(layers=LEARNED[::-1] +
                               LEARNED[:1])) == [[40, 56], [16, 30], [8, 16],
                                                 [4, 8], [2, 4]]
    assert [rep.stream_orientation(s)
            for s in ([3, 4], [4, 3], [4, 4])] == ['wide', 'tall', 'square']


def test_committed_report_recomputes():
    """docs/studies/segmentation.md is what its runs JSON gives (once the
    study has been run and committed)."""
    runs_json = osp.join(ROOT, 'docs', 'studies', rep.RUNS_FILE)
    if not osp.isfile(runs_json):
        pytest.skip('the segmentation study has not been committed yet')
    with open(osp.join(ROOT, 'docs', 'studies', rep.REPORT_FILE)) as f:
        assert rep.recompute_report(runs_json) == f.read()


@pytest.mark.slow
def test_seg_study_tiny_end_to_end(tmp_path):
    """Every condition at 1 seed, 2 iterations, 16 mosaics: each run
    records what it ran on, the target runs end at the human cost, Fix
    (Final) retrains the learned sizes, the report recomputes from its
    JSON, and a second call reads every run back."""
    work, out = str(tmp_path / 'work'), str(tmp_path / 'out')
    md = seg_study.main([
        '--seeds', '1', '--iters', '2', '--work-dir', work, '--out-dir', out,
        '--cfg-options'
    ] + TINY)
    with open(osp.join(out, rep.RUNS_FILE)) as f:
        data = json.load(f)
    runs = {(r['dataset'], r['condition']): r for r in data['runs']}
    assert len(runs) == 10
    x = data['settings']['target_gmacs']
    assert x == pytest.approx(0.12174336)
    for r in runs.values():
        assert r['seed'] == 0 and r['threads'] == 1 and r['iters'] == 2
        assert r['dynopool_path'] in ('fused-cpu', 'generic')
        assert r['torch'] == torch.__version__ and 'MMDYNOPOOL_NO_EXT' in r
        assert r['metric'] == 'mIoU' and 0 <= r['value'] <= 100
        assert r['train_seconds'] > 0 and r['gmacs'] > 0
        assert r['resolutions'][0] == r['input_size']
    assert runs['digits', 'human']['gmacs'] == pytest.approx(x)
    assert runs['digits', 'human_80x116']['input_size'] == [80, 116]
    for d in ('digits', 'stretch-v', 'stretch-h'):
        t = runs[d, 'dynopool_target']
        assert t['target_gmacs'] == x and abs(t['gmacs'] / x - 1) <= 0.05
        assert len(rep.pool_sizes(t)) == 5
    fix, target = runs['digits', 'fixfinal'], runs['digits', 'dynopool_target']
    assert fix['fixed_backbone'] == target['fixed_backbone']
    assert rep.pool_sizes(fix) == rep.pool_sizes(target)
    assert fix['gmacs'] == target['gmacs']
    with open(md) as f:
        assert rep.recompute_report(osp.join(out, rep.RUNS_FILE)) == f.read()
    assert osp.isfile(osp.join(out, rep.FIGURE_FILE))
    again = runs_mod.run_seg_study(
        work,
        str(tmp_path / 'again'),
        seeds=1,
        iters=2,
        cfg_options=seg_study.parse_args(['--cfg-options'] + TINY).cfg_options)
    assert sorted((r['work_dir'], r['value']) for r in again['runs']) == \
        sorted((r['work_dir'], r['value']) for r in data['runs'])


def test_diverged_run_is_recorded(tmp_path, monkeypatch):
    """A run whose alpha diverges is a result (failed.json, read back on
    resume), and its seed's Fix (Final) is recorded as failed, not run."""
    import mmdynopool.analysis.experiments
    from mmdynopool.models.layers.dynopool import AlphaDivergedError
    calls = []

    def diverge(cfg, work_dir, *args, **kwargs):
        calls.append(work_dir)
        raise AlphaDivergedError('alpha past the cap')

    monkeypatch.setattr(mmdynopool.analysis.experiments, 'run_experiment',
                        diverge)
    spec = runs_mod._spec('stretch-v', 'dynopool_target', 2)
    task = (spec, str(tmp_path), {'stretch-v': 'r'}, 0.12, 2, None, 1)
    out = runs_mod._run_one(task)
    assert out['failed'] and out['value'] is None and out['seed'] == 2
    assert out['error'] == 'AlphaDivergedError: alpha past the cap'
    assert out['threads'] == 1 and out['input_size'] == [96, 96]
    assert runs_mod._run_one(task) == out and len(calls) == 1  # read back
    fix = runs_mod._run_one(
        (runs_mod._spec('digits', 'fixfinal', 2), str(tmp_path), {
            'digits': 'r'
        }, 0.12, 2, None, 1), out)
    assert fix['failed'] and 'no learned shape' in fix['error']
    assert len(calls) == 1
