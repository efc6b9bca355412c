"""The CPU-scale evidence for DynOPool: toy studies with controls.

One call, :func:`run_toy_studies`, trains every run of three studies on the
toy digits (:class:`~mmdynopool.datasets.ToyDigits`) with the slim VGG-11
configs of ``configs/toy/`` and writes the tables and figures of the README:

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

Every run is :func:`run_experiment` (resumable; finished runs are read
back), runs go to ``jobs`` worker processes with a progress bar, and the
alpha trajectories come from each run's ``ShapeLoggingHook`` scalars.
"""
import glob
import json
import math
import os
import os.path as osp
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Dict, List, Optional, Sequence

__all__ = ['run_toy_studies', 'toy_study_plan', 'STUDIES']

CONFIG = osp.join('toy', 'vgg11-slim_{}_digits-{}.py')
STUDIES = ('control', 'sweep', 'dynopool_s')
# model name -> (config kind, cfg options)
MODELS = {
    'human': ('human', {}),
    'central': ('dynopool', {}),
    'one_sided': ('dynopool', {
        'model.backbone.dynopool_cfg': dict(position_grad='one_sided')
    }),
    # 'central' at 4x the config's lambda: the control where the GMACs loss
    # holds the alphas back.
    'central_x4': ('dynopool', {}),
    # 'central' with the paper's plain SGD step on alpha
    # (AlphaGradHook(space='alpha')), the ablation of the configs' 'log'.
    'central_alpha': ('dynopool', {}),
}
#: Per model: overrides of the config's custom hooks, by hook type.
HOOK_OPTIONS = {'central_alpha': {'AlphaGradHook': dict(space='alpha')}}
CONTROL_MODELS = ('human', 'central', 'one_sided', 'central_x4',
                  'central_alpha')
LAMBDA_FACTORS = (0.0, 1.0, 4.0, 8.0, 16.0, 64.0)
RESOLUTIONS = (24, 28, 32, 40)
SWEEP_DATASET = 'pairs'


def _spec(study, dataset, model, seed, **extra) -> Dict:
    return dict(study=study, dataset=dataset, model=model, seed=seed,
                **extra)


def toy_study_plan(studies: Sequence[str] = STUDIES,
                   seeds: int = 5,
                   sweep_seeds: int = 5,
                   s_lambda: Optional[float] = None) -> List[Dict]:
    """The runs of ``studies`` (``dynopool_s`` needs ``s_lambda``).

    Returns:
        list[dict]: One spec per run: ``study``, ``dataset``, ``model``,
        ``seed`` and, where they apply, ``lambda_factor``, ``count``,
        ``resolution``, ``loss_weight``. Runs shared by two studies (the
        sweep's factor-1 DynOPool and 32 px human runs are the ``pairs``
        runs) appear once.
    """
    plan = []
    if 'control' in studies:
        for dataset in ('stretch-v', 'stretch-h'):
            for model in CONTROL_MODELS:
                extra = dict(lambda_factor=4.0) if model == 'central_x4' \
                    else {}
                plan += [_spec('control', dataset, model, s, **extra)
                         for s in range(seeds)]
    if 'sweep' in studies:
        for f in LAMBDA_FACTORS:
            plan += [_spec('sweep', SWEEP_DATASET, 'central', s,
                           lambda_factor=f, count='batch')
                     for s in range(sweep_seeds)]
        plan += [_spec('sweep', SWEEP_DATASET, 'central', s,
                       lambda_factor=1.0, count='image')
                 for s in range(sweep_seeds)]
        for res in RESOLUTIONS:
            plan += [_spec('sweep', SWEEP_DATASET, 'human', s,
                           resolution=res) for s in range(seeds if res == 32
                                                          else sweep_seeds)]
    if 'dynopool_s' in studies:
        if s_lambda is None:
            raise ValueError('the dynopool_s study needs s_lambda (from the '
                             'sweep)')
        # Its baseline: the sweep's 32 px human runs.
        plan += [_spec('sweep', SWEEP_DATASET, 'human', s, resolution=32)
                 for s in range(seeds)]
        plan += [_spec('dynopool_s', SWEEP_DATASET, 'central', s,
                       loss_weight=float(s_lambda)) for s in range(seeds)]
    unique = {}
    for spec in plan:
        unique.setdefault(_run_dir('', spec), spec)
    return list(unique.values())


def _run_dir(work_dir: str, spec: Dict) -> str:
    parts = [spec['dataset'], spec['model']]
    if 'resolution' in spec and spec['resolution'] != 32:
        parts[-1] += f'_{spec["resolution"]}px'
    if spec.get('lambda_factor', 1.0) != 1.0:
        parts[-1] += f'_lambda-x{spec["lambda_factor"]:g}'
    if spec.get('count', 'batch') != 'batch':
        parts[-1] += f'_count-{spec["count"]}'
    if 'loss_weight' in spec:
        parts[-1] += f'_S-lambda-{spec["loss_weight"]:.4g}'
    return osp.join(work_dir, *parts, f'seed{spec["seed"]}')


def build_run_cfg(spec: Dict, epochs: Optional[int] = None,
                  cfg_options: Optional[Dict] = None):
    """The mmengine ``Config`` of one run spec."""
    from mmengine.config import Config

    from .sweep import set_gmacs_loss_weight, set_input_resolution
    kind, options = MODELS[spec['model']]
    from ..utils import config_path
    cfg = Config.fromfile(config_path(CONFIG.format(kind, spec['dataset'])))
    cfg.merge_from_dict(dict(options, randomness=dict(seed=spec['seed'])))
    if epochs is not None:
        cfg.merge_from_dict({
            'train_cfg.max_epochs': epochs,
            'train_cfg.val_interval': epochs,
            'param_scheduler.T_max': epochs
        })
    if kind == 'dynopool':
        hook = next(h for h in cfg.custom_hooks
                    if h['type'] == 'GMACsLossHook')
        lam = spec.get('loss_weight',
                       hook['loss_weight'] * spec.get('lambda_factor', 1.0))
        cfg = set_gmacs_loss_weight(cfg, lam)
        hook = next(h for h in cfg.custom_hooks
                    if h['type'] == 'GMACsLossHook')
        hook['count'] = spec.get('count', 'batch')
        # Log scales every 10 iterations for the alpha trajectories.
        for h in cfg.custom_hooks:
            if h['type'] == 'ShapeLoggingHook':
                h['interval'] = 10
            h.update(HOOK_OPTIONS.get(spec['model'], {}).get(h['type'], {}))
    if spec.get('resolution', 32) != 32:
        res = spec['resolution']
        cfg = set_input_resolution(cfg, (res, res))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def _input_size(spec: Dict) -> tuple:
    res = spec.get('resolution', 32)
    return (res, res)


def _run_one(task):
    """One run in a worker process (top level, so it pickles)."""
    import torch

    import mmdynopool  # noqa: F401  (registrations)

    from ..models.layers.dynopool import AlphaDivergedError
    from .sweep import run_experiment
    spec, work_dir, epochs, cfg_options, threads = task
    torch.set_num_threads(threads)
    cfg = build_run_cfg(spec, epochs, cfg_options)
    cfg.log_level = 'WARNING'
    hook = [h for h in cfg.get('custom_hooks', [])
            if h['type'] == 'GMACsLossHook']
    extra = dict(spec)
    if hook:
        extra['loss_weight'] = hook[0]['loss_weight']
    run_dir = _run_dir(work_dir, spec)
    failed = osp.join(run_dir, 'failed.json')
    if osp.isfile(failed):  # deterministic: it would fail again
        with open(failed) as f:
            return json.load(f)
    try:
        result = run_experiment(cfg, run_dir, _input_size(spec), extra=extra)
    except AlphaDivergedError as e:
        # A diverged run (an alpha through 0 or past the scale cap) is a
        # result, not a crash of the study: recorded, counted in the report,
        # left out of means. Any other error stops the study.
        result = dict(extra, failed=True, error=f'{type(e).__name__}: {e}',
                      value=None, gmacs=None, work_dir=run_dir)
        with open(failed, 'w') as f:
            json.dump(result, f, indent=1)
        return result
    result['trajectory'] = _trajectory(result['work_dir'])
    return result


def _trajectory(run_dir: str) -> Dict[str, List[float]]:
    """``step`` and the first two resizing layers' ``(r_h, r_w)`` over
    training, from the ShapeLoggingHook scalars of the newest log dir."""
    files = sorted(glob.glob(osp.join(run_dir, '*', 'vis_data',
                                      'scalars.json')))
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


def _run_all(plan, work_dir, epochs, cfg_options, jobs) -> List[Dict]:
    from mmengine.utils import ProgressBar
    threads = max(1, (os.cpu_count() or 1) // jobs)
    tasks = [(s, work_dir, epochs, cfg_options, threads) for s in plan]
    bar = ProgressBar(len(tasks))
    results = [None] * len(tasks)
    if jobs == 1:
        for i, t in enumerate(tasks):
            results[i] = _run_one(t)
            bar.update()
    else:
        import multiprocessing as mp
        with ProcessPoolExecutor(jobs,
                                 mp_context=mp.get_context('spawn')) as pool:
            futures = {pool.submit(_run_one, t): i
                       for i, t in enumerate(tasks)}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                bar.update()
    print()
    return results


def alpha_gradient_noise(dataset: str = 'stretch-v', batches: int = 32,
                         seed: int = 0) -> Dict[str, Dict]:
    """Per-batch alpha gradients at initialisation under both conventions.

    One DynOPool slim VGG-11 (the config's, seeded), ``batches`` training
    batches; for each ``position_grad`` the same weights and batches give
    one gradient of the task loss per batch and resizing layer.

    Returns:
        dict: per convention, ``mean`` and ``std`` over batches of each
        layer's ``(d/d alpha_h, d/d alpha_w)`` and ``sign_agreement``: the
        share of batches whose sign matches the mean's.
    """
    import torch
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner, set_random_seed
    from mmpretrain.registry import MODELS

    from ..models.layers import DynOPool2d
    cfg = build_run_cfg(dict(study='control', dataset=dataset,
                             model='central', seed=seed))
    init_default_scope('mmpretrain')
    set_random_seed(seed)  # python, numpy (the random crops) and torch
    model = MODELS.build(cfg.model)
    model.train()
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=seed)
    data = [model.data_preprocessor(b, True)
            for _, b in zip(range(batches), loader)]
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
            grads.append(torch.stack([p.alpha.grad.detach().clone()
                                      for p in pools]))
        g = torch.stack(grads)  # (batches, layers, 2)
        mean = g.mean(0)
        out[conv] = dict(mean=mean.tolist(), std=g.std(0).tolist(),
                         sign_agreement=(torch.sign(g) == torch.sign(mean))
                         .float().mean(0).tolist())
    return out


def _std_ratios(a, b):
    """Ratios ``a / b`` of the first two layers' std, per axis, as text."""
    h = ', '.join(f'{a[i][0] / b[i][0]:.2f}x' for i in range(2))
    w = ', '.join(f'{a[i][1] / b[i][1]:.2f}x' for i in range(2))
    return h, w


def summarise_noise(noise: Dict[str, Dict]) -> str:
    lines = ['| convention | layer | std of d/d alpha (h, w) over batches | '
             'batches agreeing with the mean sign (h, w) |',
             '|---|---|---|---|']
    for conv, st in noise.items():
        for i, (sd, agree) in enumerate(zip(st['std'],
                                            st['sign_agreement'])):
            lines.append(f'| {conv} | {i + 1} | {sd[0]:.3g}, {sd[1]:.3g} | '
                         f'{agree[0]:.0%}, {agree[1]:.0%} |')
    h, w = _std_ratios(noise['one_sided']['std'], noise['central']['std'])
    return '\n'.join(lines) + (
        f'\n\nOne-sided / central std, layers 1-2: {h} (h) and {w} (w).')


# ----------------------------------------------------------------- summaries
def _mean_std(values: Sequence[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f'{statistics.mean(values):.2f} ± {sd:.2f}'


def _paired(a: Sequence[float], b: Sequence[float]) -> str:
    """Mean difference a - b and the paired t-test's two-sided p."""
    from scipy import stats
    d = [x - y for x, y in zip(a, b)]
    if len(d) < 2:
        return f'{d[0]:+.2f}' if d else ''
    p = stats.ttest_rel(a, b).pvalue
    return f'{statistics.mean(d):+.2f} (p={p:.2g})'


def _first_layers(result: Dict, n: int = 2) -> List[List[float]]:
    return result['scales'][:n]


def _orientation(result: Dict) -> str:
    """'wide' if the first two layers pool height harder than width
    (r_h < r_w in both), 'tall' for the reverse, else 'mixed'."""
    layers = _first_layers(result)
    if all(h < w for h, w in layers):
        return 'wide'
    if all(h > w for h, w in layers):
        return 'tall'
    return 'mixed'


def _by(results, failed=False, **match):
    """Runs matching ``match``, by seed; finished ones (``failed=False``) or
    the diverged ones (``failed=True``)."""
    return sorted((r for r in results
                   if bool(r.get('failed')) == failed
                   and all(r.get(k) == v for k, v in match.items())),
                  key=lambda r: r['seed'])


def _paired_by_seed(a_runs, b_runs):
    """Values of the seeds both lists finished, in seed order."""
    b = {r['seed']: r['value'] for r in b_runs}
    seeds = [r['seed'] for r in a_runs if r['seed'] in b]
    a = {r['seed']: r['value'] for r in a_runs}
    return [a[s] for s in seeds], [b[s] for s in seeds]


def summarise_control(results: List[Dict]) -> Dict:
    lines = [
        '| dataset | model | top-1 (%) | vs human, paired (p) | MMACs | '
        'layers 1-2 (r_h, r_w) per seed | orientation per seed |',
        '|---|---|---|---|---|---|---|'
    ]
    rows, flips = [], {}
    for dataset in ('stretch-v', 'stretch-h'):
        human = _by(results, study='control', dataset=dataset, model='human')
        for model in CONTROL_MODELS:
            runs = _by(results, study='control', dataset=dataset, model=model)
            if not runs:
                continue
            acc = [r['value'] for r in runs]
            macs = [r['gmacs'] * 1e3 for r in runs]
            vs = '' if model == 'human' else _paired(
                *_paired_by_seed(runs, human))
            orient = [_orientation(r) for r in runs]
            bad = _by(results, failed=True, study='control', dataset=dataset,
                      model=model)
            if bad:
                orient += [f'diverged (seed {r["seed"]})' for r in bad]
            firsts = '<br>'.join(
                ' '.join(f'({h:.2f}, {w:.2f})' for h, w in _first_layers(r))
                for r in runs) if model != 'human' else '(0.50, 0.50) fixed'
            lines.append(
                f'| {dataset} | {model} | {_mean_std(acc)} | {vs} | '
                f'{_mean_std(macs)} | {firsts} | '
                f'{" ".join(orient) if model != "human" else ""} |')
            rows.append(dict(dataset=dataset, model=model, seeds=len(runs),
                             diverged=len(bad), top1=acc, mmacs=macs,
                             orientation=orient))
        for model in CONTROL_MODELS[1:]:
            runs = _by(results, study='control', dataset=dataset, model=model)
            runs += _by(results, failed=True, study='control',
                        dataset=dataset, model=model)
            if not runs:
                continue
            flips.setdefault(model, {})[dataset] = {
                r['seed']: 'diverged' if r.get('failed') else
                _orientation(r) for r in runs}
    verdict = {}
    for model, per in flips.items():
        v, h = per.get('stretch-v', {}), per.get('stretch-h', {})
        seeds = sorted(set(v) & set(h))
        ok = [v[s] == 'wide' and h[s] == 'tall' for s in seeds]
        verdict[model] = dict(flipped=sum(ok), seeds=len(ok))
    text = '\n'.join(lines) + '\n\nTransposition control (stretch-V wide ' \
        'and stretch-H tall in layers 1-2, same seed): ' + ', '.join(
            f'{m}: {v["flipped"]}/{v["seeds"]} seeds'
            for m, v in verdict.items())
    return dict(table=text, rows=rows, control=verdict)


def _sweep_points(results: List[Dict]) -> Dict[str, List[Dict]]:
    """Per lambda factor / resolution: the mean and std of GMACs and top-1
    over seeds (the pairs DynOPool and 32 px human runs included)."""
    points = dict(dynopool=[], human=[], image_count=[])
    sweep = dict(dataset=SWEEP_DATASET, study='sweep')
    for f in LAMBDA_FACTORS:
        runs = _by(results, model='central', lambda_factor=f, count='batch',
                   **sweep)
        bad = _by(results, True, model='central', lambda_factor=f,
                  count='batch', **sweep)
        if runs:
            points['dynopool'].append(
                _point(runs, lambda_factor=f, diverged=len(bad)))
    runs = _by(results, model='central', count='image', **sweep)
    bad = _by(results, True, model='central', count='image', **sweep)
    if runs:
        points['image_count'].append(
            _point(runs, lambda_factor=1.0, diverged=len(bad)))
    for res in RESOLUTIONS:
        runs = _by(results, model='human', resolution=res, **sweep)
        if runs:
            points['human'].append(_point(runs, resolution=res))
    return points


def _point(runs: List[Dict], **key) -> Dict:
    g = [r['gmacs'] for r in runs]
    v = [r['value'] for r in runs]
    sd = statistics.stdev if len(runs) > 1 else (lambda x: 0.0)
    return dict(key, seeds=len(runs), gmacs=statistics.mean(g),
                gmacs_std=sd(g), value=statistics.mean(v), value_std=sd(v),
                loss_weight=runs[0].get('loss_weight'),
                metric=runs[0]['metric'],
                sizes=[r['resolutions'] for r in runs])


def summarise_sweep(results: List[Dict]) -> Dict:
    pts = _sweep_points(results)
    lines = ['| model | lambda (x config) | GMACs loss count | MMACs | '
             'top-1 (%) | seeds (diverged) |', '|---|---|---|---|---|---|']
    for p in pts['dynopool']:
        lines.append(f'| DynOPool | {p["loss_weight"]:.4g} '
                     f'(x{p["lambda_factor"]:g}) | batch | '
                     f'{p["gmacs"] * 1e3:.3f} ± {p["gmacs_std"] * 1e3:.3f} | '
                     f'{p["value"]:.2f} ± {p["value_std"]:.2f} | '
                     f'{p["seeds"]} ({p["diverged"]}) |')
    for p in pts['image_count']:
        lines.append(f'| DynOPool | {p["loss_weight"]:.4g} (x1) | image | '
                     f'{p["gmacs"] * 1e3:.3f} ± {p["gmacs_std"] * 1e3:.3f} | '
                     f'{p["value"]:.2f} ± {p["value_std"]:.2f} | '
                     f'{p["seeds"]} ({p["diverged"]}) |')
    for p in pts['human']:
        lines.append(f'| human at {p["resolution"]} px | | | '
                     f'{p["gmacs"] * 1e3:.3f} ± {p["gmacs_std"] * 1e3:.3f} | '
                     f'{p["value"]:.2f} ± {p["value_std"]:.2f} | '
                     f'{p["seeds"]} |')
    g = [p['gmacs'] for p in pts['dynopool']]
    monotone = all(a > b for a, b in zip(g, g[1:]))
    base = pts['dynopool'][0]['gmacs'] if pts['dynopool'] and \
        pts['dynopool'][0]['lambda_factor'] == 0 else None
    cfg_pt = next((p for p in pts['dynopool']
                   if p['lambda_factor'] == 1.0), None)
    pull = None if base is None or cfg_pt is None else \
        1 - cfg_pt['gmacs'] / base
    text = '\n'.join(lines) + (
        f'\n\nMean GMACs fall monotonically with lambda: {monotone}. '
        + ('' if pull is None else
           f'The config lambda ends {100 * abs(pull):.1f} % '
           f'{"below" if pull >= 0 else "above"} lambda = 0 in mean GMACs.'))
    return dict(table=text, points=pts, monotone=monotone,
                pull_vs_zero=pull)


def s_lambda_from_sweep(points: Dict[str, List[Dict]]) -> Optional[float]:
    """DynOPool-S's lambda: the swept lambda whose mean GMACs are closest
    (in ratio) to the 32 px human model's. Not an interpolation: final
    GMACs vary by tens of per cent between seeds at one lambda, so only
    a measured point is trusted."""
    human = next((p for p in points['human'] if p['resolution'] == 32), None)
    dyn = [p for p in points['dynopool'] if p['loss_weight'] > 0]
    if human is None or not dyn:
        return None
    return min(dyn, key=lambda p: abs(math.log(p['gmacs'] / human['gmacs'])))[
        'loss_weight']


def summarise_s(results: List[Dict]) -> Dict:
    s_runs = _by(results, study='dynopool_s')
    human = _by(results, study='sweep', dataset=SWEEP_DATASET,
                model='human', resolution=32)
    if not s_runs or not human:
        return dict(table='', rows=[])
    acc_s, acc_h = _paired_by_seed(s_runs, human)
    g_s = statistics.mean(r['gmacs'] for r in s_runs)
    g_h = statistics.mean(r['gmacs'] for r in human)
    lines = ['| model | lambda | MMACs | GMACs vs human | top-1 (%) | '
             'vs human, paired (p) | learned sizes (seed 0) |',
             '|---|---|---|---|---|---|---|',
             f'| human 32 px | | {g_h * 1e3:.3f} | | {_mean_std(acc_h)} | | '
             f'{" ".join(f"{h}x{w}" for h, w in human[0]["resolutions"][1:])}'
             ' |',
             f'| DynOPool-S | {s_runs[0]["loss_weight"]:.4g} | '
             f'{g_s * 1e3:.3f} | {100 * (g_s / g_h - 1):+.1f} % | '
             f'{_mean_std(acc_s)} | {_paired(acc_s, acc_h)} | '
             f'{" ".join(f"{h}x{w}" for h, w in s_runs[0]["resolutions"][1:])}'
             ' |']
    return dict(table='\n'.join(lines), gmacs_ratio=g_s / g_h,
                top1_s=acc_s, top1_human=acc_h)


# ------------------------------------------------------------------- figures
def plot_trajectories(results: List[Dict], out_file: str) -> str:
    """Layer-1 and layer-2 r_h / r_w over training, every control run."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 2, figsize=(9, 6), sharex=True, sharey=True)
    colours = {'central': 'tab:red', 'one_sided': 'tab:blue',
               'central_alpha': 'tab:grey'}
    for row, dataset in enumerate(('stretch-v', 'stretch-h')):
        for col, layer in enumerate((0, 1)):
            ax = axes[row, col]
            for model, colour in colours.items():
                for r in _by(results, study='control', dataset=dataset,
                             model=model):
                    t = r.get('trajectory') or {}
                    # Layers in logged (forward) order, not text order.
                    keys = list(dict.fromkeys(
                        k.rsplit('/', 1)[0] for k in t
                        if k.startswith('scale/')))
                    if len(keys) <= layer:
                        continue
                    k = keys[layer]
                    ax.plot(t['step'], t[k + '/h'], '-', color=colour,
                            alpha=0.6, lw=1)
                    ax.plot(t['step'], t[k + '/w'], ':', color=colour,
                            alpha=0.6, lw=1)
            ax.set_title(f'{dataset}, resizing layer {layer + 1}',
                         fontsize=9)
            ax.set_yscale('log')
            ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel('iteration')
    for ax in axes[:, 0]:
        ax.set_ylabel('scale r')
    from matplotlib.lines import Line2D
    fig.legend([Line2D([], [], color=c, ls=ls) for c in colours.values()
                for ls in ('-', ':')],
               [f'{m} {a}' for m in colours for a in ('r_h', 'r_w')],
               loc='lower center', ncol=6, fontsize=7)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(out_file, dpi=100)
    plt.close(fig)
    return out_file


def plot_sweep(points: Dict[str, List[Dict]], out_file: str) -> str:
    """Top-1 against MMACs: DynOPool per lambda, human per resolution (mean
    +- std over seeds), the paper's Fig. 5 at toy scale."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, fmt, colour, label in (
            ('human', 'o--', 'tab:gray', 'human (input resolution)'),
            ('dynopool', 's-', 'tab:red', 'DynOPool (lambda)'),
            ('image_count', 'x', 'tab:blue', "DynOPool, count='image'")):
        pts = sorted(points.get(name, []), key=lambda p: p['gmacs'])
        if not pts:
            continue
        ax.errorbar([p['gmacs'] * 1e3 for p in pts],
                    [p['value'] for p in pts],
                    xerr=[p['gmacs_std'] * 1e3 for p in pts],
                    yerr=[p['value_std'] for p in pts], fmt=fmt,
                    color=colour, label=label, capsize=2)
        for p in pts:
            tag = f'{p["resolution"]}px' if name == 'human' else \
                f'x{p["lambda_factor"]:g}'
            ax.annotate(tag, (p['gmacs'] * 1e3, p['value']),
                        textcoords='offset points', xytext=(4, 4),
                        fontsize=7, color=colour)
    ax.set_xlabel('MMACs per image')
    ax.set_ylabel('top-1 (%)')
    ax.set_title('digits-pairs: accuracy vs cost', fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_file, dpi=100)
    plt.close(fig)
    return out_file


def run_toy_studies(work_dir: str,
                    studies: Sequence[str] = STUDIES,
                    seeds: int = 5,
                    sweep_seeds: int = 5,
                    epochs: Optional[int] = None,
                    jobs: int = 1,
                    s_lambda: Optional[float] = None,
                    cfg_options: Optional[Dict] = None) -> Dict:
    """Run (or read back) the studies and write their report.

    Args:
        work_dir (str): Runs go below it; ``toy_studies.md`` / ``.json``,
            ``toy_trajectories.png`` and ``toy_sweep.png`` next to them.
        studies (Sequence[str]): Any of :data:`STUDIES`.
        seeds (int): Seeds of the control and DynOPool-S studies.
            Default: 5.
        sweep_seeds (int): Seeds per sweep point. Default: 5.
        epochs (int, optional): Override the configs' schedule (tests).
        jobs (int): Runs in parallel. Default: 1.
        s_lambda (float, optional): DynOPool-S's lambda; by default the
            sweep's closest to the human cost (the sweep then runs first).
        cfg_options (dict, optional): Merged into every run's config.

    Returns:
        dict: ``report`` (the markdown file), ``summary`` and ``runs``.
    """
    unknown = set(studies) - set(STUDIES)
    if unknown or not studies:
        raise ValueError(f'studies must be a non-empty subset of {STUDIES}, '
                         f'got {list(studies)!r}')
    for name, v in (('seeds', seeds), ('sweep_seeds', sweep_seeds),
                    ('jobs', jobs)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f'{name} must be an integer >= 1, got {v!r}')
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(
            epochs, int) or epochs < 1):
        raise ValueError(f'epochs must be an integer >= 1, got {epochs!r}')
    work_dir = osp.abspath(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    start = time.time()
    first = [s for s in studies if s != 'dynopool_s']
    if 'dynopool_s' in studies and s_lambda is None and 'sweep' not in first:
        first.append('sweep')
    results = _run_all(toy_study_plan(first, seeds, sweep_seeds), work_dir,
                       epochs, cfg_options, jobs) if first else []
    summary = {}
    if any(r['study'] == 'sweep' for r in results):
        summary['sweep'] = summarise_sweep(results)
    if 'dynopool_s' in studies:
        if s_lambda is None:
            s_lambda = s_lambda_from_sweep(summary['sweep']['points'])
        done = {r['work_dir'] for r in results}
        results += [
            r for r in _run_all(
                toy_study_plan(('dynopool_s', ), seeds, sweep_seeds,
                               s_lambda), work_dir, epochs, cfg_options, jobs)
            if r['work_dir'] not in done
        ]
        summary['dynopool_s'] = summarise_s(results)
    if 'control' in studies:
        summary['control'] = summarise_control(results)
        summary['gradient_noise'] = alpha_gradient_noise('stretch-v')
    parts = ['# Toy studies (slim VGG-11 on the shipped digits)\n']
    if 'control' in summary:
        parts += ['## Control: stretch-V vs its transpose, both derivative '
                  'conventions\n', summary['control']['table'],
                  '\n![alpha trajectories](toy_trajectories.png)\n',
                  '### Alpha-gradient noise at initialisation (stretch-V, '
                  '32 batches of 64, same weights)\n',
                  summarise_noise(summary['gradient_noise']), '']
        plot_trajectories(results, osp.join(work_dir,
                                            'toy_trajectories.png'))
    if 'sweep' in summary:
        parts += ['## Lambda sweep on digits-pairs (Fig. 5)\n',
                  summary['sweep']['table'], '\n![sweep](toy_sweep.png)\n']
        plot_sweep(summary['sweep']['points'],
                   osp.join(work_dir, 'toy_sweep.png'))
    if summary.get('dynopool_s', {}).get('table'):
        parts += ['## DynOPool-S at the human cost on digits-pairs\n',
                  summary['dynopool_s']['table'], '']
    settings = dict(studies=list(studies), seeds=seeds,
                    sweep_seeds=sweep_seeds, epochs=epochs,
                    cfg_options=cfg_options or {},
                    wall_seconds=round(time.time() - start, 1))
    parts.append(f'\n{len(results)} runs; {settings["wall_seconds"]:.0f} s '
                 'wall clock for what ran now (finished runs are read '
                 'back).\n')
    report = osp.join(work_dir, 'toy_studies.md')
    with open(report, 'w') as f:
        f.write('\n'.join(parts))
    with open(osp.join(work_dir, 'toy_studies.json'), 'w') as f:
        json.dump(dict(settings=settings, summary=summary, runs=results), f,
                  indent=1, default=str)
    return dict(report=report, summary=summary, runs=results)
