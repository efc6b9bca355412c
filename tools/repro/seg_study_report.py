"""The segmentation study's report (``tools/repro/seg_study.py``): tables
and a figure from the per-run results alone, so that
:func:`recompute_report` gives the committed markdown back from the
committed ``segmentation_runs.json``.

Comparisons are paired by seed (mean difference, 95 % t interval, paired
t-test: :func:`mmdynopool.analysis.stats.paired_difference`). "The human
family at the DynOPool cost" reads the square-input human runs (88, 96 and
104 px) at each target run's own cost, linearly in log GMACs between the
two resolutions that bracket it.

Streams are numbered as in the README's demo table: the stem map (after
``dynopools.0``), then streams 1-4 (stream 1, the highest-resolution one,
is ``dynopools.1``'s map: after the stem pool and the first stream pool,
24x24 in the human design at 96x96).
"""
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional

from mmdynopool.analysis.stats import (cost_within, format_paired,
                                       interpolate_log_cost, mean_std,
                                       paired_difference)

__all__ = [
    'format_report', 'write_report', 'recompute_report', 'plot_report',
    'pool_sizes', 'stream_orientation', 'REPORT_FILE', 'RUNS_FILE',
    'FIGURE_FILE'
]

REPORT_FILE = 'segmentation.md'
RUNS_FILE = 'segmentation_runs.json'
FIGURE_FILE = 'segmentation.png'
COST_TOLERANCE = 0.05
TARGET = 'dynopool_target'
SQUARE = 'human square family at the run cost'


def _conds(runs: List[Dict], dataset: str) -> Dict[str, Dict[int, Dict]]:
    """``{condition: {seed: run}}`` of one dataset (failed runs too)."""
    out = {}
    for r in runs:
        if r['dataset'] == dataset:
            out.setdefault(r['condition'], {})[r['seed']] = r
    return out


def _ok(runs: Dict[int, Dict]) -> Dict[int, Dict]:
    return {s: r for s, r in runs.items() if not r.get('failed')}


def _values(runs: Dict[int, Dict]) -> Dict[int, float]:
    return {s: r['value'] for s, r in _ok(runs).items()}


def _paired(a: Dict[int, float], b: Dict[int, float]) -> Optional[Dict]:
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    return paired_difference([a[s] for s in seeds], [b[s] for s in seeds])


def pool_sizes(run: Dict) -> List[List[int]]:
    """Output ``[h, w]`` of ``dynopools.0, 1, ...`` (the stem, then
    streams 1-4) at the run's input size, from its ``layers`` rows."""
    sizes = {}
    for row in run.get('layers', []):
        name = row['name']
        if name.startswith('dynopools.') and name not in sizes:
            sizes[name] = list(row['out'])
    return [sizes[k] for k in sorted(sizes, key=lambda k: int(k[10:]))]


def stream_orientation(size) -> str:
    """'wide' (w > h), 'tall' (h > w) or 'square'."""
    h, w = size
    return 'wide' if w > h else 'tall' if h > w else 'square'


def _square_at_cost(conds: Dict, family: List) -> Dict[int, float]:
    """Per seed, the square human family's mIoU at that seed's target run
    cost (seeds whose cost it does not bracket are left out)."""
    names = ['human'] + [f'human_{h}x{w}' for h, w in family if h == w]
    out = {}
    for s, run in _ok(conds.get(TARGET, {})).items():
        pts = [(conds[n][s]['gmacs'], conds[n][s]['value']) for n in names
               if s in _ok(conds.get(n, {}))]
        v = interpolate_log_cost(pts, run['gmacs']) if len(pts) > 1 else None
        if v is not None:
            out[s] = v
    return out


def _order(family) -> List[str]:
    return (['human'] + [f'human_{h}x{w}' for h, w in family] +
            [TARGET, 'dynopool_lambda', 'fixfinal'])


def _rank(cond: str, family) -> tuple:
    order = _order(family)
    return (order.index(cond) if cond in order else len(order), cond)


def _condition_table(runs, target, family) -> List[str]:
    lines = [
        '| dataset | condition | input | seeds (failed) | mIoU (%) | '
        'GMACs | cost / X | within ±5 % of X | train s / run |',
        '|---|---|---|---|---|---|---|---|---|'
    ]
    for dataset in ('digits', 'stretch-v', 'stretch-h'):
        conds = _conds(runs, dataset)
        for cond in sorted(conds, key=lambda c: _rank(c, family)):
            all_runs = conds[cond]
            ok = list(_ok(all_runs).values())
            size = 'x'.join(
                map(str,
                    next(iter(all_runs.values()))['input_size']))
            head = (f'| {dataset} | {cond} | {size} | {len(ok)} '
                    f'({len(all_runs) - len(ok)}) |')
            if not ok:
                lines.append(head + ' | | | | |')
                continue
            miou = mean_std([r['value'] for r in ok])
            g = mean_std([r['gmacs'] for r in ok])
            within = sum(
                cost_within(r['gmacs'], target, COST_TOLERANCE) for r in ok)
            secs = mean_std([r['train_seconds'] for r in ok])[0]
            lines.append(f'{head} {miou[0]:.2f} ± {miou[1]:.2f} | '
                         f'{g[0]:.4f} ± {g[1]:.4f} | {g[0] / target:.3f} | '
                         f'{within}/{len(ok)} | {secs:.0f} |')
    return lines


def _comparisons(conds, family) -> List[tuple]:
    t = _values(conds.get(TARGET, {}))
    human = _values(conds.get('human', {}))
    out = [(f'{TARGET} - human (96x96)', _paired(t, human))]
    for h, w in family:
        name = f'human_{h}x{w}'
        out.append(
            (f'{TARGET} - {name}', _paired(t, _values(conds.get(name, {})))))
    out.append((f'{TARGET} - {SQUARE} (interpolated per seed)',
                _paired(t, _square_at_cost(conds, family))))
    lam = _values(conds.get('dynopool_lambda', {}))
    fix = _values(conds.get('fixfinal', {}))
    out += [(f'{TARGET} - dynopool_lambda', _paired(t, lam)),
            (f'{TARGET} - fixfinal', _paired(t, fix)),
            ('fixfinal - human (96x96)', _paired(fix, human)),
            ('dynopool_lambda - human (96x96)', _paired(lam, human))]
    return [(n, p) for n, p in out if p is not None]


def _strongest(conds, family, target) -> str:
    """The human baseline at matched cost with the best mean mIoU: the 96
    px model (cost X), the square family read at each run's cost, and the
    non-square inputs whose mean cost is within 5 % of the target runs'."""
    t_runs = _ok(conds.get(TARGET, {}))
    if not t_runs:
        return ''
    t_cost = mean_std([r['gmacs'] for r in t_runs.values()])[0]
    cands = [('human (96x96)', _values(conds.get('human', {}))),
             (SQUARE, _square_at_cost(conds, family))]
    for h, w in family:
        runs = _ok(conds.get(f'human_{h}x{w}', {}))
        if h != w and runs and cost_within(
                mean_std([r['gmacs']
                          for r in runs.values()])[0], t_cost, COST_TOLERANCE):
            cands.append((f'human_{h}x{w}', _values(runs)))
    cands = [(n, v) for n, v in cands if v]
    if not cands:
        return ''
    name, best = max(cands, key=lambda c: mean_std(list(c[1].values()))[0])
    p = _paired(_values(t_runs), best)
    return (f'Strongest human at matched cost (chosen on the mean among '
            f'{", ".join(n for n, _ in cands)}): **{name}**, '
            f'{mean_std(list(best.values()))[0]:.2f} mIoU; {TARGET} - it: '
            f'{format_paired(p)}, {p["n"]} seeds. (Target cost X = '
            f'{target:.4f} GMACs; the target runs average {t_cost:.4f}.)')


def _transposition(runs) -> List[str]:
    v = _ok(_conds(runs, 'stretch-v').get(TARGET, {}))
    h = _ok(_conds(runs, 'stretch-h').get(TARGET, {}))
    lines = [
        '| seed | stretch-v: stem, streams 1-4 (h x w) | stream 1 | '
        'stretch-h: stem, streams 1-4 (h x w) | stream 1 | flipped |',
        '|---|---|---|---|---|---|'
    ]
    seeds = sorted(set(v) & set(h))
    flipped = 0
    for s in seeds:
        pv, ph = pool_sizes(v[s]), pool_sizes(h[s])
        ov, oh = stream_orientation(pv[1]), stream_orientation(ph[1])
        ok = ov == 'wide' and oh == 'tall'
        flipped += ok
        lines.append(f'| {s} | {" ".join(f"{a}x{b}" for a, b in pv)} | {ov} | '
                     f'{" ".join(f"{a}x{b}" for a, b in ph)} | {oh} | '
                     f'{"yes" if ok else "no"} |')
    # The weaker, relative reading: the stretch-v map's h / w below the
    # stretch-h one's in the same seed (one-sided sign test).
    lower = sum(
        pool_sizes(v[s])[1][0] /
        pool_sizes(v[s])[1][1] < pool_sizes(h[s])[1][0] /
        pool_sizes(h[s])[1][1] for s in seeds)
    sign_p = sum(
        math.comb(len(seeds), k)
        for k in range(lower,
                       len(seeds) + 1)) / 2**len(seeds)
    lines.append(f'\nStream 1 wider than tall on stretch-v and taller than '
                 f'wide on stretch-h: **{flipped} of {len(seeds)} seeds** '
                 f'(seeds with both runs finished). Relative reading: stream '
                 f'1 flatter (lower h / w) on stretch-v than on stretch-h in '
                 f'{lower} of {len(seeds)} seeds (one-sided sign test '
                 f'p={sign_p:.2g}).')
    return lines


def _per_seed(conds, family) -> List[str]:
    cols = [c for c in _order(family) if c in conds]
    vals = {c: _values(conds[c]) for c in cols}
    vals[SQUARE] = _square_at_cost(conds, family)
    cols.insert(cols.index(TARGET) if TARGET in cols else len(cols), SQUARE)
    seeds = sorted({s for runs in conds.values() for s in runs})
    cost = {c: _ok(conds.get(c, {})) for c in (TARGET, 'dynopool_lambda')}
    lines = [
        f'| seed | {" | ".join(cols)} | GMACs {TARGET} | GMACs '
        'dynopool_lambda |', '|---' * (len(cols) + 3) + '|'
    ]
    for s in seeds:
        cells = [f'{vals[c][s]:.2f}' if s in vals[c] else '-' for c in cols]
        cells += [
            f'{cost[c][s]["gmacs"]:.4f}' if s in cost[c] else '-'
            for c in (TARGET, 'dynopool_lambda')
        ]
        lines.append(f'| {s} | {" | ".join(cells)} |')
    return lines


def _runtime(runs) -> str:
    parts = []
    for key in ('threads', 'dynopool_path', 'MMDYNOPOOL_NO_EXT', 'torch'):
        seen = sorted({str(r.get(key, 'not recorded')) for r in runs})
        parts.append(f'{key}: {", ".join(seen)}')
    return '; '.join(parts)


def format_report(data: Dict) -> str:
    """The markdown report from ``data`` (``settings`` and ``runs``, as
    :func:`write_report` stores them)."""
    settings, runs = data['settings'], data['runs']
    target, family = settings['target_gmacs'], settings['family']
    digits = _conds(runs, 'digits')
    iters = sorted({r.get('iters') for r in runs}, key=str)
    out = [
        '# Segmentation at the human cost: demo-scale FCN-HRNet on '
        'digits-VOC\n',
        f'Configs `{settings["configs"][0]}` and `{settings["configs"][1]}`'
        f', seeds 0-{settings["seeds"] - 1}, '
        f'{", ".join(map(str, iters))} iterations, mIoU from mmseg '
        '`IoUMetric` on the validation images at their original 96x96 '
        f'labels. Target X = the human model\'s exact GMACs at 96x96: '
        f'**{target:.5f}**. `{TARGET}`: `GMACsLossHook(target_gmacs=X)` '
        '(adaptive lambda, sizes settled within 2 % of X and frozen at 80 % '
        'of the run); `dynopool_lambda`: the demo\'s lambda, no target; '
        '`fixfinal`: each seed\'s learned target shape retrained frozen '
        'from scratch (same seed and budget, no GMACs loss); `human_HxW`: '
        'the human model fed HxW inputs (mmseg `Resize`), scored at the '
        'original labels.\n', f'Runs: {_runtime(runs)}.\n',
        '## Conditions (mean ± std over seeds)\n'
    ]
    out += _condition_table(runs, target, family)
    out += [
        '\n## Paired differences by seed (mIoU points; mean [95 % t '
        'interval] (paired t-test p))\n',
        '| comparison | seeds | difference |', '|---|---|---|'
    ]
    out += [
        f'| {n} | {p["n"]} | {format_paired(p)} |'
        for n, p in _comparisons(digits, family)
    ]
    strongest = _strongest(digits, family, target)
    if strongest:
        out += ['', strongest]
    t_runs = [r for r in runs if r['condition'] == TARGET]
    ok = [r for r in t_runs if not r.get('failed')]
    within = sum(cost_within(r['gmacs'], target, COST_TOLERANCE) for r in ok)
    lam = [
        r['gmacs'] / target
        for r in _ok(digits.get('dynopool_lambda', {})).values()
    ]
    fix_same = [
        s for s, r in _ok(digits.get('fixfinal', {})).items()
        if s in _ok(digits.get(TARGET, {}))
        and pool_sizes(r) == pool_sizes(digits[TARGET][s])
    ]
    out += [
        f'\n**Cost:** {within} of {len(t_runs)} `{TARGET}` runs (digits and '
        f'stretch) end within ±5 % of X ({len(t_runs) - len(ok)} failed).' +
        (f' `dynopool_lambda` ends at {min(lam):.2f}-{max(lam):.2f}x X.'
         if lam else '') +
        f' `fixfinal` ran at its target run\'s sizes in {len(fix_same)} of '
        f'{len(_ok(digits.get("fixfinal", {})))} seeds.\n',
        '## Transposition control (DynOPool at X on stretch-v and its '
        'transpose)\n',
        'Cumulative output sizes at 96x96 of the stem pool and the four '
        'stream pools (stream 1: the README\'s numbering, after the stem '
        'and first stream pools, 24x24 in the human design).\n'
    ]
    out += _transposition(runs)
    out += ['\n## Per seed (digits, mIoU %)\n'] + _per_seed(digits, family)
    out += [
        '', f'![mIoU against GMACs; transposition control]'
        f'({FIGURE_FILE})'
    ]
    return '\n'.join(out) + '\n'


def plot_report(data: Dict, out_file: str) -> str:
    """mIoU against GMACs per condition (mean ± std), and stream 1's size
    per seed on stretch-v and stretch-h."""
    from mmdynopool.analysis.plots import pyplot, save_figure
    plt = pyplot()
    runs, family = data['runs'], data['settings']['family']
    digits = _conds(runs, 'digits')
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))

    def point(cond):
        ok = list(_ok(digits.get(cond, {})).values())
        if not ok:
            return None
        return (mean_std([r['gmacs']
                          for r in ok]), mean_std([r['value'] for r in ok]))

    square = [c for c in ['human_88x88', 'human', 'human_104x104'] if point(c)]
    if square:
        pts = sorted((point(c) for c in square), key=lambda p: p[0][0])
        ax.plot([p[0][0] for p in pts], [p[1][0] for p in pts],
                '--',
                color='tab:gray',
                lw=1)
    styles = {
        TARGET: ('s', 'tab:red'),
        'dynopool_lambda': ('^', 'tab:blue'),
        'fixfinal': ('D', 'tab:purple')
    }
    for cond in _order(family):
        p = point(cond)
        if p is None:
            continue
        fmt, colour = styles.get(cond, ('o', 'tab:gray'))
        ax.errorbar(
            p[0][0],
            p[1][0],
            xerr=p[0][1],
            yerr=p[1][1],
            fmt=fmt,
            color=colour,
            capsize=2)
        ax.annotate(
            cond.replace('human_', ''), (p[0][0], p[1][0]),
            textcoords='offset points',
            xytext=(4, 4),
            fontsize=7,
            color=colour)
    ax.axvline(data['settings']['target_gmacs'], color='k', lw=0.5, ls=':')
    ax.set_xscale('log')
    from matplotlib.ticker import FormatStrFormatter
    ax.xaxis.set_major_formatter(FormatStrFormatter('%.3f'))
    ax.xaxis.set_minor_formatter(FormatStrFormatter('%.3f'))
    ax.tick_params(axis='x', which='minor', labelsize=7)
    ax.set_xlabel('GMACs per image (log)')
    ax.set_ylabel('mIoU (%)')
    ax.set_title('digits-VOC: mIoU vs cost (mean ± std)', fontsize=10)
    ax.grid(alpha=0.3)
    for dataset, colour in (('stretch-v', 'tab:blue'), ('stretch-h',
                                                        'tab:red')):
        sizes = [
            pool_sizes(r)[1]
            for r in _ok(_conds(runs, dataset).get(TARGET, {})).values()
        ]
        if sizes:
            bx.scatter([w for _, w in sizes], [h for h, _ in sizes],
                       color=colour,
                       label=dataset,
                       s=18)
    lim = max([24] + [
        max(pool_sizes(r)[1]) for r in runs if r['condition'] == TARGET
        and not r.get('failed') and r['dataset'] != 'digits'
    ])
    bx.plot([0, lim + 2], [0, lim + 2], color='k', lw=0.5)
    bx.set_xlabel('stream 1 width')
    bx.set_ylabel('stream 1 height')
    bx.set_title('transposition control: stream 1 per seed', fontsize=10)
    bx.legend(fontsize=8)
    bx.grid(alpha=0.3)
    return save_figure(fig, out_file)


def write_report(out_dir: str, settings: Dict, runs: List[Dict]) -> str:
    """Write ``segmentation_runs.json`` (settings and every run),
    ``segmentation.md`` (:func:`format_report` of that JSON) and
    ``segmentation.png`` to ``out_dir``; return the markdown's path."""
    os.makedirs(out_dir, exist_ok=True)
    runs = sorted(
        runs,
        key=lambda r:
        (r['dataset'], _rank(r['condition'], settings['family']), r['seed']))
    text = json.dumps(
        dict(settings=settings, runs=runs), indent=1, default=str)
    with open(osp.join(out_dir, RUNS_FILE), 'w') as f:
        f.write(text + '\n')
    data = json.loads(text)
    report = osp.join(out_dir, REPORT_FILE)
    with open(report, 'w') as f:
        f.write(format_report(data))
    plot_report(data, osp.join(out_dir, FIGURE_FILE))
    return report


def recompute_report(runs_json: str) -> str:
    """The report's markdown from a ``segmentation_runs.json`` alone."""
    with open(runs_json) as f:
        return format_report(json.load(f))
