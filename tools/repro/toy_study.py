"""The CPU-scale evidence for DynOPool: toy studies with controls.

One call, :func:`run_toy_studies`, trains every run of three studies on the
toy digits (:class:`~mmdynopool.datasets.ToyDigits`) with the slim VGG-11
configs of ``configs/toy/`` and writes the tables and figures of
``docs/studies/``:

* **control** (stretch-V and its transpose stretch-H): human vs DynOPool with
  both alpha-derivative conventions (``position_grad`` ``'central'`` and
  ``'one_sided'``). DynOPool's first two layers must pool height harder than
  width on stretch-V (wide maps, the paper's Fig. 1(a)) and the reverse on
  stretch-H, in every seed, or the shapes are not data-driven.
* **sweep** (Fig. 5, on the unsaturated ``pairs`` variant): DynOPool at
  several lambdas (multiples of the config's), plus the config's lambda with
  ``GMACsLossHook(count='image')`` (the loss-scale ablation), against the
  human model trained at several input resolutions.
* **dynopool_s** (``pairs``): DynOPool-S, the swept lambda whose final GMACs
  are closest to the human model's (within +-5 % is the target), against the
  human model, paired by seed.
* **target** (``pairs``, ``stretch-v``, ``stretch-h``; seeds 0-9 by default):
  DynOPool with ``GMACsLossHook(target_gmacs=X)``, ``X`` the human model's
  exact cost at 32x32 (computed), against the human model, against the
  human family fed non-square inputs of about that cost on ``pairs``
  (:data:`TARGET_FAMILY`), and a Fix (Final) retrain of every learned target
  shape (frozen, same seed and schedule, no GMACs loss). On stretch-V /
  stretch-H the target runs are the transposition control. Its report is
  :mod:`toy_target_report`'s.

Every run is :func:`run_experiment` (resumable; finished runs are read back),
runs go to ``jobs`` worker processes with a progress bar
(:func:`~mmdynopool.analysis.parallel.run_parallel`), each pinned to
``threads`` torch threads and recording them, the DynOPool backend and the
torch version (:func:`~mmdynopool.analysis.parallel.runtime_record`); the alpha
trajectories come from each run's ``ShapeLoggingHook`` scalars. The tables,
figures and the report file come from :mod:`toy_report`
(:mod:`toy_target_report` for ``target``). The command is
``tools/repro/toy_studies.py``; this folder must be on ``sys.path`` (the
command puts it there).
"""
import glob
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence

from toy_report import (CONTROL_MODELS, LAMBDA_FACTORS, RESOLUTIONS,
                        SWEEP_DATASET, s_lambda_from_sweep, summarise_control,
                        summarise_s, summarise_sweep, write_toy_report)
from toy_target import (TARGET_DATASETS, TARGET_FAMILY, configure_target,
                        target_needs, target_plan)

from mmdynopool.analysis.complexity import exact_config_gmacs
from mmdynopool.analysis.parallel import run_parallel, runtime_record
from mmdynopool.engine import (gmacs_loss_hook, set_gmacs_loss_weight,
                               set_input_resolution)

__all__ = [
    'run_toy_studies', 'toy_study_plan', 'build_run_cfg',
    'alpha_gradient_noise', 'human_cost', 'STUDIES', 'ALL_STUDIES'
]

# The pairs variant trains 60 epochs, the others 20 (the config names say).
CONFIG = osp.join('toy', 'vgg11-slim_{kind}_1xb64-{epochs}e_digits-{data}.py')
STUDIES = ('control', 'sweep', 'dynopool_s')
#: Every study: the three above (docs/studies/toy_studies.md) and issue 21's
#: ``target``.
ALL_STUDIES = STUDIES + ('target', )
# model name -> (config kind, cfg options)
MODELS = {
    'human': ('human', {}),
    'central': ('dynopool', {}),
    'one_sided': ('dynopool', {
        'model.backbone.dynopool_cfg':
        dict(position_grad='one_sided')
    }),
    # 'central' at 4x the config's lambda: the control where the GMACs loss
    # holds the alphas back.
    'central_x4': ('dynopool', {}),
    # 'central' with the paper's plain SGD step on alpha
    # (AlphaGradHook(space='alpha')), the ablation of the configs' 'log'.
    'central_alpha': ('dynopool', {}),
    # 'central' with GMACsLossHook(target_gmacs=the human cost).
    'target': ('dynopool', {}),
    # Fix (Final): a 'target' run's learned shape, frozen, from scratch.
    'target_fixfinal': ('dynopool', {}),
}
#: Per model: overrides of the config's custom hooks, by hook type.
HOOK_OPTIONS = {'central_alpha': {'AlphaGradHook': dict(space='alpha')}}


def _spec(study, dataset, model, seed, **extra) -> Dict:
    return dict(study=study, dataset=dataset, model=model, seed=seed, **extra)


def toy_study_plan(
        studies: Sequence[str] = STUDIES,
        seeds: int = 5,
        sweep_seeds: int = 5,
        s_lambda: Optional[float] = None,
        target_seeds: int = 10,
        target_gmacs: Optional[Dict[str, float]] = None) -> List[Dict]:
    """The runs of ``studies`` (``dynopool_s`` needs ``s_lambda``,
    ``target`` needs ``target_gmacs``: per dataset, the GMACs to aim at).

    Args:
        studies (Sequence[str]): Of :data:`ALL_STUDIES`. Default:
            :data:`STUDIES`.
        seeds (int): Seeds of the control and DynOPool-S studies. Default: 5.
        sweep_seeds (int): Seeds per sweep point. Default: 5.
        s_lambda (float, optional): DynOPool-S's lambda.
        target_seeds (int): Seeds of the target study. Default: 10.
        target_gmacs (dict, optional): Per dataset, the target study's GMACs.

    Returns:
        list[dict]: One spec per run: ``study``, ``dataset``, ``model``,
        ``seed`` and, where they apply, ``lambda_factor``, ``count``,
        ``resolution`` (an int for square inputs, ``[H, W]`` otherwise),
        ``loss_weight``, ``target_gmacs``. Runs shared by two studies (the
        sweep's factor-1 DynOPool and 32 px human runs are the ``pairs``
        runs; the target study's human baselines are the sweep's and the
        control's) appear once. A ``target_fixfinal`` run needs the
        ``target`` run of its dataset and seed (:func:`target_needs`).
    """
    plan, baselines = [], []
    if 'target' in studies:
        # The runs others wait for first, then their Fix (Final) retrains.
        plan, baselines = target_plan(target_seeds, target_gmacs)
    if 'control' in studies:
        for dataset in ('stretch-v', 'stretch-h'):
            for model in CONTROL_MODELS:
                extra = dict(lambda_factor=4.0) if model == 'central_x4' \
                    else {}
                plan += [
                    _spec('control', dataset, model, s, **extra)
                    for s in range(seeds)
                ]
    if 'sweep' in studies:
        for f in LAMBDA_FACTORS:
            plan += [
                _spec(
                    'sweep',
                    SWEEP_DATASET,
                    'central',
                    s,
                    lambda_factor=f,
                    count='batch') for s in range(sweep_seeds)
            ]
        plan += [
            _spec(
                'sweep',
                SWEEP_DATASET,
                'central',
                s,
                lambda_factor=1.0,
                count='image') for s in range(sweep_seeds)
        ]
        for res in RESOLUTIONS:
            plan += [
                _spec('sweep', SWEEP_DATASET, 'human', s, resolution=res)
                for s in range(seeds if res == 32 else sweep_seeds)
            ]
    if 'dynopool_s' in studies:
        if s_lambda is None:
            raise ValueError('the dynopool_s study needs s_lambda (from the '
                             'sweep)')
        # Its baseline: the sweep's 32 px human runs.
        plan += [
            _spec('sweep', SWEEP_DATASET, 'human', s, resolution=32)
            for s in range(seeds)
        ]
        plan += [
            _spec(
                'dynopool_s',
                SWEEP_DATASET,
                'central',
                s,
                loss_weight=float(s_lambda)) for s in range(seeds)
        ]
    plan += baselines
    unique = {}
    for spec in plan:
        unique.setdefault(_run_dir('', spec), spec)
    return list(unique.values())


def _size(spec: Dict) -> tuple:
    """``(H, W)`` of a spec's input (32x32 unless ``resolution`` says)."""
    res = spec.get('resolution', 32)
    return tuple(res) if isinstance(res, (list, tuple)) else (res, res)


def _run_dir(work_dir: str, spec: Dict) -> str:
    parts = [spec['dataset'], spec['model']]
    res = spec.get('resolution', 32)
    if isinstance(res, (list, tuple)):
        parts[-1] += f'_{res[0]}x{res[1]}px'
    elif res != 32:
        parts[-1] += f'_{res}px'
    if spec.get('lambda_factor', 1.0) != 1.0:
        parts[-1] += f'_lambda-x{spec["lambda_factor"]:g}'
    if spec.get('count', 'batch') != 'batch':
        parts[-1] += f'_count-{spec["count"]}'
    if 'loss_weight' in spec:
        parts[-1] += f'_S-lambda-{spec["loss_weight"]:.4g}'
    return osp.join(work_dir, *parts, f'seed{spec["seed"]}')


def build_run_cfg(spec: Dict,
                  epochs: Optional[int] = None,
                  cfg_options: Optional[Dict] = None):
    """The mmengine ``Config`` of one run spec (a ``target_fixfinal`` spec
    carries ``fixed_backbone``, from its target run's result).

    Args:
        spec (dict): A :func:`toy_study_plan` entry.
        epochs (int, optional): Overrides the config's schedule.
        cfg_options (dict, optional): Merged last.

    Returns:
        Config: The run's config.
    """
    from mmengine.config import Config

    from mmdynopool.utils import config_path
    kind, options = MODELS[spec['model']]
    cfg = Config.fromfile(
        config_path(
            CONFIG.format(
                kind=kind,
                data=spec['dataset'],
                epochs=60 if spec['dataset'] == 'pairs' else 20)))
    cfg.merge_from_dict(dict(options, randomness=dict(seed=spec['seed'])))
    if epochs is not None:
        cfg.merge_from_dict({
            'train_cfg.max_epochs': epochs,
            'train_cfg.val_interval': epochs,
            'param_scheduler.T_max': epochs
        })
    if kind == 'dynopool':
        lam = spec.get(
            'loss_weight',
            gmacs_loss_hook(cfg)['loss_weight'] *
            spec.get('lambda_factor', 1.0))
        cfg = set_gmacs_loss_weight(cfg, lam)
        gmacs_loss_hook(cfg)['count'] = spec.get('count', 'batch')
        # Log scales every 10 iterations for the alpha trajectories.
        for h in cfg.custom_hooks:
            if h['type'] == 'ShapeLoggingHook':
                h['interval'] = 10
            h.update(HOOK_OPTIONS.get(spec['model'], {}).get(h['type'], {}))
        configure_target(cfg, spec)
    if _size(spec) != (32, 32):
        cfg = set_input_resolution(cfg, _size(spec))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def _run_one(task, needed=None):
    """One run in a worker process (top level, so it pickles); ``needed``:
    the result of the run it needs (a Fix (Final) retrain's target run)."""
    import mmdynopool  # noqa: F401  (registrations)
    from mmdynopool.analysis.experiments import run_experiment
    from mmdynopool.engine import gmacs_loss_hooks
    from mmdynopool.models.layers.dynopool import AlphaDivergedError
    spec, work_dir, epochs, cfg_options, threads = task
    run_dir = _run_dir(work_dir, spec)
    extra = dict(spec, **runtime_record(threads))
    failed = osp.join(run_dir, 'failed.json')
    if osp.isfile(failed):  # deterministic: it would fail again
        with open(failed) as f:
            return json.load(f)
    if spec['model'] == 'target_fixfinal':
        if not needed or needed.get('failed') or \
                'fixed_backbone' not in needed:
            return dict(
                extra,
                failed=True,
                value=None,
                gmacs=None,
                work_dir=run_dir,
                error='its target run has no learned shape (it '
                'diverged)')
        spec = extra = dict(extra, fixed_backbone=needed['fixed_backbone'])
    cfg = build_run_cfg(spec, epochs, cfg_options)
    cfg.log_level = 'WARNING'
    hook = gmacs_loss_hooks(cfg)
    if hook:
        extra['loss_weight'] = hook[0]['loss_weight']
    try:
        result = run_experiment(
            cfg,
            run_dir,
            _size(spec),
            extra=extra,
            export_fixed=spec['model'] == 'target')
    except AlphaDivergedError as e:
        # A diverged run (an alpha through 0 or past the scale cap) is a
        # result, not a crash of the study: recorded, counted in the report,
        # left out of means. Any other error stops the study.
        result = dict(
            extra,
            failed=True,
            error=f'{type(e).__name__}: {e}',
            value=None,
            gmacs=None,
            work_dir=run_dir)
        with open(failed, 'w') as f:
            json.dump(result, f, indent=1)
        return result
    result['trajectory'] = _trajectory(result['work_dir'])
    return result


def _trajectory(run_dir: str) -> Dict[str, List[float]]:
    """``step`` and the first two resizing layers' ``(r_h, r_w)`` over
    training, from the ShapeLoggingHook scalars of the newest log dir."""
    files = sorted(
        glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json')))
    out = {'step': []}
    for path in files:  # a resumed run continues in a newer log dir
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                keys = [k for k in row if k.startswith('scale/')]
                if not keys:
                    continue
                out['step'].append(row['step'])
                for k in keys:
                    out.setdefault(k, []).append(row[k])
    return out


def _run_all(plan,
             work_dir,
             epochs,
             cfg_options,
             jobs,
             threads=1) -> List[Dict]:
    tasks = [(s, work_dir, epochs, cfg_options, threads) for s in plan]
    return run_parallel(_run_one, tasks, jobs, target_needs(plan))


def alpha_gradient_noise(dataset: str = 'stretch-v',
                         batches: int = 32,
                         seed: int = 0) -> Dict[str, Dict]:
    """Per-batch alpha gradients at initialisation under both conventions.

    One DynOPool slim VGG-11 (the config's, seeded), ``batches`` training
    batches; for each ``position_grad`` the same weights and batches give
    one gradient of the task loss per batch and resizing layer.

    Args:
        dataset (str): Toy variant. Default: ``'stretch-v'``.
        batches (int): Training batches. Default: 32.
        seed (int): Seed of the weights and batches. Default: 0.

    Returns:
        dict: per convention, ``mean`` and ``std`` over batches of each
        layer's ``(d/d alpha_h, d/d alpha_w)`` and ``sign_agreement``: the
        share of batches whose sign matches the mean's.
    """
    import torch
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner, set_random_seed
    from mmpretrain.registry import MODELS

    from mmdynopool.models.layers import DynOPool2d
    cfg = build_run_cfg(
        dict(study='control', dataset=dataset, model='central', seed=seed))
    init_default_scope('mmpretrain')
    set_random_seed(seed)  # python, numpy (the random crops) and torch
    model = MODELS.build(cfg.model)
    model.train()
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=seed)
    data = [
        model.data_preprocessor(b, True)
        for _, b in zip(range(batches), loader)
    ]
    pools = [m for m in model.modules() if isinstance(m, DynOPool2d)]
    out = {}
    for conv in ('central', 'one_sided'):
        for p in pools:
            p.position_grad = conv
        grads = []
        for d in data:
            model.zero_grad()
            losses = model(**d, mode='loss')
            sum(v for k, v in losses.items() if 'loss' in k).backward()
            grads.append(
                torch.stack([p.alpha.grad.detach().clone() for p in pools]))
        g = torch.stack(grads)  # (batches, layers, 2)
        mean = g.mean(0)
        out[conv] = dict(
            mean=mean.tolist(),
            std=g.std(0).tolist(),
            sign_agreement=(
                torch.sign(g) == torch.sign(mean)).float().mean(0).tolist())
    return out


def human_cost(dataset: str, cfg_options: Optional[Dict] = None) -> float:
    """Exact conv + linear GMACs of the human model of ``dataset`` (its
    config, ``cfg_options`` merged) on one 32x32 image: the target study's
    ``target_gmacs``. Computed, not written down: the head's classes differ
    between datasets (100 on pairs).

    Args:
        dataset (str): Toy variant.
        cfg_options (dict, optional): Merged into the config.

    Returns:
        float: GMACs of one image.
    """
    return exact_config_gmacs(
        build_run_cfg(
            dict(dataset=dataset, model='human', seed=0), None, cfg_options),
        (32, 32), 'mmpretrain')


def run_toy_studies(work_dir: str,
                    studies: Sequence[str] = STUDIES,
                    seeds: int = 5,
                    sweep_seeds: int = 5,
                    epochs: Optional[int] = None,
                    jobs: int = 1,
                    s_lambda: Optional[float] = None,
                    cfg_options: Optional[Dict] = None,
                    target_seeds: int = 10,
                    threads: int = 1,
                    report_dir: Optional[str] = None) -> Dict:
    """Run (or read back) the studies and write their report.

    Args:
        work_dir (str): Runs go below it; ``toy_studies.md`` / ``.json``,
            ``toy_trajectories.png`` and ``toy_sweep.png`` next to them.
        studies (Sequence[str]): Any of :data:`ALL_STUDIES`.
        seeds (int): Seeds of the control and DynOPool-S studies.
            Default: 5.
        sweep_seeds (int): Seeds per sweep point. Default: 5.
        epochs (int, optional): Override the configs' schedule (tests).
        jobs (int): Runs in parallel. Default: 1.
        s_lambda (float, optional): DynOPool-S's lambda; by default the
            sweep's closest to the human cost (the sweep then runs first).
        cfg_options (dict, optional): Merged into every run's config.
        target_seeds (int): Seeds of the target study (0 ...
            ``target_seeds - 1``). Default: 10.
        threads (int): Torch threads of each run (recorded). Default: 1.
        report_dir (str, optional): Where the target study's report
            (``toy_target.md``, ``toy_target_runs.json``) goes. Default:
            ``work_dir``.

    Returns:
        dict: ``report`` (the markdown file), ``summary`` and ``runs``;
        with the target study also ``target_report``.
    """
    unknown = set(studies) - set(ALL_STUDIES)
    if unknown or not studies:
        raise ValueError('studies must be a non-empty subset of '
                         f'{ALL_STUDIES}, got {list(studies)!r}')
    for name, v in (('seeds', seeds), ('sweep_seeds', sweep_seeds),
                    ('jobs', jobs), ('target_seeds', target_seeds), ('threads',
                                                                     threads)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f'{name} must be an integer >= 1, got {v!r}')
    if epochs is not None and (isinstance(epochs, bool)
                               or not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f'epochs must be an integer >= 1, got {epochs!r}')
    work_dir = osp.abspath(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    start = time.time()
    first = [s for s in studies if s != 'dynopool_s']
    if 'dynopool_s' in studies and s_lambda is None and 'sweep' not in first:
        first.append('sweep')
    target_gmacs = {
        d: human_cost(d, cfg_options)
        for d in TARGET_DATASETS
    } if 'target' in studies else None
    results = _run_all(
        toy_study_plan(
            first,
            seeds,
            sweep_seeds,
            target_seeds=target_seeds,
            target_gmacs=target_gmacs), work_dir, epochs, cfg_options, jobs,
        threads) if first else []
    summary = {}
    if any(r['study'] == 'sweep' for r in results):
        summary['sweep'] = summarise_sweep(results)
    if 'dynopool_s' in studies:
        if s_lambda is None:
            s_lambda = s_lambda_from_sweep(summary['sweep']['points'])
        done = {r['work_dir'] for r in results}
        results += [
            r for r in _run_all(
                toy_study_plan(('dynopool_s', ), seeds, sweep_seeds, s_lambda),
                work_dir, epochs, cfg_options, jobs, threads)
            if r['work_dir'] not in done
        ]
        summary['dynopool_s'] = summarise_s(results)
    if 'control' in studies:
        summary['control'] = summarise_control(results)
        summary['gradient_noise'] = alpha_gradient_noise('stretch-v')
    settings = dict(
        studies=list(studies),
        seeds=seeds,
        sweep_seeds=sweep_seeds,
        epochs=epochs,
        cfg_options=cfg_options or {},
        threads=threads,
        wall_seconds=round(time.time() - start, 1))
    out = {}
    if 'target' in studies:
        from toy_target_report import write_target_report
        out['target_report'] = write_target_report(
            report_dir or work_dir,
            dict(
                settings,
                target_seeds=target_seeds,
                target_gmacs=target_gmacs,
                family=[list(s) for s in TARGET_FAMILY]), results)
        if set(studies) == {'target'}:
            return dict(
                out,
                report=out['target_report'],
                summary=summary,
                runs=results)
    report = write_toy_report(work_dir, summary, results, settings)
    return dict(out, report=report, summary=summary, runs=results)
