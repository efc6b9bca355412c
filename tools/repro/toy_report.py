"""Tables, figures and the report file of the toy studies
(:mod:`toy_study`): per-seed summaries with paired tests, the transposition
control's verdict, the lambda sweep's points and DynOPool-S's lambda.
"""
import json
import math
import os.path as osp
import statistics
from typing import Dict, List, Optional, Sequence

from toy_plots import plot_sweep, plot_trajectories

__all__ = [
    'summarise_control', 'summarise_sweep', 'summarise_s',
    's_lambda_from_sweep', 'summarise_noise', 'write_toy_report',
    'CONTROL_MODELS', 'LAMBDA_FACTORS', 'RESOLUTIONS', 'SWEEP_DATASET'
]

CONTROL_MODELS = ('human', 'central', 'one_sided', 'central_x4',
                  'central_alpha')
LAMBDA_FACTORS = (0.0, 1.0, 4.0, 8.0, 16.0, 64.0)
RESOLUTIONS = (24, 28, 32, 40)
SWEEP_DATASET = 'pairs'


def _std_ratios(a, b):
    """Ratios ``a / b`` of the first two layers' std, per axis, as text."""
    h = ', '.join(f'{a[i][0] / b[i][0]:.2f}x' for i in range(2))
    w = ', '.join(f'{a[i][1] / b[i][1]:.2f}x' for i in range(2))
    return h, w


def summarise_noise(noise: Dict[str, Dict]) -> str:
    """The alpha-gradient noise table: per convention and layer, the std
    of the gradient over batches and the share agreeing with its sign.

    Args:
        noise (dict): :func:`toy_study.alpha_gradient_noise`'s result.

    Returns:
        str: The markdown table and the std ratios.
    """
    lines = [
        '| convention | layer | std of d/d alpha (h, w) over batches | '
        'batches agreeing with the mean sign (h, w) |', '|---|---|---|---|'
    ]
    for conv, st in noise.items():
        for i, (sd, agree) in enumerate(zip(st['std'], st['sign_agreement'])):
            lines.append(f'| {conv} | {i + 1} | {sd[0]:.3g}, {sd[1]:.3g} | '
                         f'{agree[0]:.0%}, {agree[1]:.0%} |')
    h, w = _std_ratios(noise['one_sided']['std'], noise['central']['std'])
    return '\n'.join(lines) + (
        f'\n\nOne-sided / central std, layers 1-2: {h} (h) and {w} (w).')


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
    return sorted((r
                   for r in results if bool(r.get('failed')) == failed and all(
                       r.get(k) == v for k, v in match.items())),
                  key=lambda r: r['seed'])


def _paired_by_seed(a_runs, b_runs):
    """Values of the seeds both lists finished, in seed order."""
    b = {r['seed']: r['value'] for r in b_runs}
    seeds = [r['seed'] for r in a_runs if r['seed'] in b]
    a = {r['seed']: r['value'] for r in a_runs}
    return [a[s] for s in seeds], [b[s] for s in seeds]


def summarise_control(results: List[Dict]) -> Dict:
    """The control table (stretch-V / stretch-H, every model, paired by
    seed against the human model) and the transposition verdict.

    Args:
        results (list[dict]): Every run's result
            (:func:`toy_study.run_toy_studies`).

    Returns:
        dict: ``table`` (markdown), ``rows`` and ``control``: per model, the
        seeds whose layers 1-2 were wide on stretch-V and tall on stretch-H
        (``flipped``) out of ``seeds``.
    """
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
            bad = _by(
                results,
                failed=True,
                study='control',
                dataset=dataset,
                model=model)
            if bad:
                orient += [f'diverged (seed {r["seed"]})' for r in bad]
            firsts = '<br>'.join(
                ' '.join(f'({h:.2f}, {w:.2f})' for h, w in _first_layers(r))
                for r in runs) if model != 'human' else '(0.50, 0.50) fixed'
            lines.append(f'| {dataset} | {model} | {_mean_std(acc)} | {vs} | '
                         f'{_mean_std(macs)} | {firsts} | '
                         f'{" ".join(orient) if model != "human" else ""} |')
            rows.append(
                dict(
                    dataset=dataset,
                    model=model,
                    seeds=len(runs),
                    diverged=len(bad),
                    top1=acc,
                    mmacs=macs,
                    orientation=orient))
        for model in CONTROL_MODELS[1:]:
            runs = _by(results, study='control', dataset=dataset, model=model)
            runs += _by(
                results,
                failed=True,
                study='control',
                dataset=dataset,
                model=model)
            if not runs:
                continue
            flips.setdefault(model, {})[dataset] = {
                r['seed']: 'diverged' if r.get('failed') else _orientation(r)
                for r in runs
            }
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
        runs = _by(
            results, model='central', lambda_factor=f, count='batch', **sweep)
        bad = _by(
            results,
            True,
            model='central',
            lambda_factor=f,
            count='batch',
            **sweep)
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
    return dict(
        key,
        seeds=len(runs),
        gmacs=statistics.mean(g),
        gmacs_std=sd(g),
        value=statistics.mean(v),
        value_std=sd(v),
        loss_weight=runs[0].get('loss_weight'),
        metric=runs[0]['metric'],
        sizes=[r['resolutions'] for r in runs])


def summarise_sweep(results: List[Dict]) -> Dict:
    """The lambda sweep table on digits-pairs (DynOPool per lambda, the
    ``count='image'`` ablation, the human model per resolution).

    Args:
        results (list[dict]): Every run's result
            (:func:`toy_study.run_toy_studies`).

    Returns:
        dict: ``table``, ``points`` (DynOPool per lambda, ``image_count``,
        human per resolution), ``monotone`` (mean GMACs fall with lambda) and
        ``pull_vs_zero``.
    """
    pts = _sweep_points(results)
    lines = [
        '| model | lambda (x config) | GMACs loss count | MMACs | '
        'top-1 (%) | seeds (diverged) |', '|---|---|---|---|---|---|'
    ]
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
    cfg_pt = next((p for p in pts['dynopool'] if p['lambda_factor'] == 1.0),
                  None)
    pull = None if base is None or cfg_pt is None else \
        1 - cfg_pt['gmacs'] / base
    text = '\n'.join(lines) + (
        f'\n\nMean GMACs fall monotonically with lambda: {monotone}. ' +
        ('' if pull is None else
         f'The config lambda ends {100 * abs(pull):.1f} % '
         f'{"below" if pull >= 0 else "above"} lambda = 0 in mean GMACs.'))
    return dict(table=text, points=pts, monotone=monotone, pull_vs_zero=pull)


def s_lambda_from_sweep(points: Dict[str, List[Dict]]) -> Optional[float]:
    """DynOPool-S's lambda: the swept lambda whose mean GMACs are closest
    (in ratio) to the 32 px human model's. Not an interpolation: final
    GMACs vary by tens of per cent between seeds at one lambda, so only
    a measured point is trusted.

    Args:
        points (dict): ``summarise_sweep(...)['points']``.

    Returns:
        float | None: The lambda, or None without a human 32 px point or a
        lambda > 0.
    """
    human = next((p for p in points['human'] if p['resolution'] == 32), None)
    dyn = [p for p in points['dynopool'] if p['loss_weight'] > 0]
    if human is None or not dyn:
        return None
    return min(
        dyn, key=lambda p: abs(math.log(p['gmacs'] / human['gmacs']))
    )['loss_weight']


def summarise_s(results: List[Dict]) -> Dict:
    """DynOPool-S against the 32 px human model, paired by seed.

    Args:
        results (list[dict]): Every run's result
            (:func:`toy_study.run_toy_studies`).

    Returns:
        dict: ``table`` and the paired numbers (empty ``table`` without runs).
    """
    s_runs = _by(results, study='dynopool_s')
    human = _by(
        results,
        study='sweep',
        dataset=SWEEP_DATASET,
        model='human',
        resolution=32)
    if not s_runs or not human:
        return dict(table='', rows=[])
    acc_s, acc_h = _paired_by_seed(s_runs, human)
    g_s = statistics.mean(r['gmacs'] for r in s_runs)
    g_h = statistics.mean(r['gmacs'] for r in human)
    lines = [
        '| model | lambda | MMACs | GMACs vs human | top-1 (%) | '
        'vs human, paired (p) | learned sizes (seed 0) |',
        '|---|---|---|---|---|---|---|',
        f'| human 32 px | | {g_h * 1e3:.3f} | | {_mean_std(acc_h)} | | '
        f'{" ".join(f"{h}x{w}" for h, w in human[0]["resolutions"][1:])}'
        ' |', f'| DynOPool-S | {s_runs[0]["loss_weight"]:.4g} | '
        f'{g_s * 1e3:.3f} | {100 * (g_s / g_h - 1):+.1f} % | '
        f'{_mean_std(acc_s)} | {_paired(acc_s, acc_h)} | '
        f'{" ".join(f"{h}x{w}" for h, w in s_runs[0]["resolutions"][1:])}'
        ' |'
    ]
    return dict(
        table='\n'.join(lines),
        gmacs_ratio=g_s / g_h,
        top1_s=acc_s,
        top1_human=acc_h)


def write_toy_report(work_dir: str, summary: Dict, results: List[Dict],
                     settings: Dict) -> str:
    """Write ``toy_studies.md`` (the tables of ``docs/studies/``),
    ``toy_studies.json`` and the figures of the studies in ``summary`` to
    ``work_dir``.

    Args:
        work_dir (str): Where the files go.
        summary (dict): Per study, what :func:`summarise_control`,
            :func:`summarise_sweep`, :func:`summarise_s` and
            :func:`toy_study.alpha_gradient_noise`
            (``gradient_noise``) return.
        results (list[dict]): Every run's result.
        settings (dict): How the studies ran (``wall_seconds`` among them).

    Returns:
        str: The markdown report's path.
    """
    parts = ['# Toy studies (slim VGG-11 on the shipped digits)\n']
    if 'control' in summary:
        parts += [
            '## Control: stretch-V vs its transpose, both derivative '
            'conventions and the ablations (mean ± std over the '
            'seeds)\n', summary['control']['table'],
            '\n![alpha trajectories](toy_trajectories.png)\n',
            '### Alpha-gradient noise at initialisation (stretch-V, '
            '32 batches of 64, same weights)\n',
            summarise_noise(summary['gradient_noise']), ''
        ]
        plot_trajectories(results, osp.join(work_dir, 'toy_trajectories.png'))
    if 'sweep' in summary:
        parts += [
            '## Lambda sweep on digits-pairs (Fig. 5)\n',
            summary['sweep']['table'], '\n![sweep](toy_sweep.png)\n'
        ]
        plot_sweep(summary['sweep']['points'],
                   osp.join(work_dir, 'toy_sweep.png'))
    if summary.get('dynopool_s', {}).get('table'):
        parts += [
            '## DynOPool-S at the human cost on digits-pairs\n',
            summary['dynopool_s']['table'], ''
        ]
    parts.append(f'\n{len(results)} runs; {settings["wall_seconds"]:.0f} s '
                 'wall clock for what ran now (finished runs are read '
                 'back).\n')
    report = osp.join(work_dir, 'toy_studies.md')
    with open(report, 'w') as f:
        f.write('\n'.join(parts))
    with open(osp.join(work_dir, 'toy_studies.json'), 'w') as f:
        json.dump(
            dict(settings=settings, summary=summary, runs=results),
            f,
            indent=1,
            default=str)
    return report
