"""The report of the toy ``target`` study (:mod:`toy_target`): tables from
the per-run results alone, so that :func:`recompute_target_report` gives
the committed markdown back from the committed JSON.

Every comparison is paired by seed
(:func:`~mmdynopool.analysis.stats.paired_difference`: mean difference, 95 % t
interval, paired t-test). The human family on ``pairs`` is read at each target
run's own cost, linearly in log GMACs between the two non-square inputs that
bracket it (:func:`~mmdynopool.analysis.stats.interpolate_log_cost`).
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional

from toy_target import TARGET_DATASETS

from mmdynopool.analysis.stats import (cost_within, format_paired,
                                       interpolate_log_cost, mean_std,
                                       paired_difference)

__all__ = [
    'format_target_report', 'write_target_report', 'recompute_target_report',
    'target_condition', 'REPORT_FILE', 'RUNS_FILE', 'COST_TOLERANCE'
]

REPORT_FILE = 'toy_target.md'
RUNS_FILE = 'toy_target_runs.json'
#: "At the target": final GMACs within this relative band (issue 21).
COST_TOLERANCE = 0.05
HUMAN = 'human 32x32'
TARGET = 'DynOPool target'
FIXFINAL = 'Fix (Final)'
FAMILY = 'human family at the target cost'
# Kept out of the runs JSON: not needed for any number of the report.
_DROP = ('trajectory', )


def target_condition(run: Dict) -> Optional[str]:
    """The report's name of a run's condition, None for runs of other
    studies.

    Args:
        run (dict): A run's result.

    Returns:
        str | None: The condition.
    """
    model = run.get('model')
    if model == 'target':
        return TARGET
    if model == 'target_fixfinal':
        return FIXFINAL
    if model != 'human' or 'lambda_factor' in run:
        return None
    res = run.get('resolution', 32)
    if isinstance(res, (list, tuple)):
        return f'human {res[0]}x{res[1]}'
    return HUMAN if res == 32 else None


def _by_condition(runs: List[Dict], dataset: str) -> Dict[str, Dict]:
    """``{condition: {seed: run}}`` of one dataset (failed runs too)."""
    out = {}
    for r in runs:
        cond = target_condition(r)
        if r['dataset'] == dataset and cond is not None:
            out.setdefault(cond, {})[r['seed']] = r
    return out


def _ok(runs: Dict[int, Dict]) -> Dict[int, Dict]:
    return {s: r for s, r in runs.items() if not r.get('failed')}


def _paired(a: Dict[int, float], b: Dict[int, float]) -> Optional[Dict]:
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    return paired_difference([a[s] for s in seeds], [b[s] for s in seeds])


def _family_at_cost(conds: Dict[str, Dict], family: List) -> Dict[int, float]:
    """Per seed, the human family's top-1 at that seed's target run cost
    (seeds whose cost the family does not bracket are left out)."""
    names = [f'human {h}x{w}' for h, w in family]
    out = {}
    for s, run in _ok(conds.get(TARGET, {})).items():
        pts = [(conds[n][s]['gmacs'], conds[n][s]['value']) for n in names
               if s in _ok(conds.get(n, {}))]
        if len(pts) == len(names):
            v = interpolate_log_cost(pts, run['gmacs'])
            if v is not None:
                out[s] = v
    return out


def _values(runs: Dict[int, Dict]) -> Dict[int, float]:
    return {s: r['value'] for s, r in _ok(runs).items()}


def _condition_rows(dataset, conds, target, family) -> List[str]:
    rows = []
    order = [HUMAN] + [f'human {h}x{w}'
                       for h, w in family] + [TARGET, FIXFINAL]
    for cond in (c for c in order if c in conds):
        runs = conds[cond]
        ok = _ok(runs)
        failed = len(runs) - len(ok)
        if not ok:
            rows.append(f'| {dataset} | {cond} | 0 ({failed}) | | | | |')
            continue
        acc = mean_std([r['value'] for r in ok.values()])
        mmacs = mean_std([r['gmacs'] * 1e3 for r in ok.values()])
        ratio = mean_std([r['gmacs'] / target for r in ok.values()])
        within = sum(
            cost_within(r['gmacs'], target, COST_TOLERANCE)
            for r in ok.values())
        rows.append(
            f'| {dataset} | {cond} | {len(ok)} ({failed}) | '
            f'{acc[0]:.2f} ± {acc[1]:.2f} | {mmacs[0]:.3f} ± {mmacs[1]:.3f} |'
            f' {ratio[0]:.3f} | {within}/{len(ok)} |')
    return rows


def _comparisons(dataset, conds, family) -> List[tuple]:
    """``(name, paired)`` of one dataset."""
    target = _values(conds.get(TARGET, {}))
    human = _values(conds.get(HUMAN, {}))
    pairs = [(f'{TARGET} - {HUMAN}', _paired(target, human))]
    if dataset == 'pairs':
        for h, w in family:
            name = f'human {h}x{w}'
            pairs.append((f'{TARGET} - {name}',
                          _paired(target, _values(conds.get(name, {})))))
        pairs.append((f'{TARGET} - {FAMILY} (interpolated per seed)',
                      _paired(target, _family_at_cost(conds, family))))
    fix = _values(conds.get(FIXFINAL, {}))
    pairs += [(f'{TARGET} - {FIXFINAL}', _paired(target, fix)),
              (f'{FIXFINAL} - {HUMAN}', _paired(fix, human))]
    return [(n, p) for n, p in pairs if p is not None]


def _strongest(conds, family) -> str:
    """The better (in mean) of the 32x32 human and the family read at the
    target cost: the strongest human at matched cost on pairs."""
    target = _values(conds.get(TARGET, {}))
    cands = [(HUMAN, _values(conds.get(HUMAN, {}))),
             (FAMILY, _family_at_cost(conds, family))]
    cands = [(n, v) for n, v in cands if v]
    if not cands or not target:
        return ''
    name, best = max(cands, key=lambda c: mean_std(list(c[1].values()))[0])
    p = _paired(target, best)
    return (f'Strongest human at matched cost on pairs (chosen on the mean): '
            f'**{name}**, {mean_std(list(best.values()))[0]:.2f} %; DynOPool '
            f'target - it: {format_paired(p)}, {p["n"]} seeds.')


def _sizes(run: Dict) -> List:
    return [row['out'] for row in run.get('layers', [])]


def _orientation(scales) -> str:
    """'wide' if layers 1-2 pool height harder than width, 'tall' for the
    reverse, else 'mixed' (as the control study reads them)."""
    first = scales[:2]
    if all(h < w for h, w in first):
        return 'wide'
    if all(h > w for h, w in first):
        return 'tall'
    return 'mixed'


def _transposition(runs) -> List[str]:
    v = _by_condition(runs, 'stretch-v').get(TARGET, {})
    h = _by_condition(runs, 'stretch-h').get(TARGET, {})
    lines = [
        '| seed | stretch-v layers 1-2 (r_h, r_w) | orientation | '
        'stretch-h layers 1-2 (r_h, r_w) | orientation | flipped |',
        '|---|---|---|---|---|---|'
    ]
    flipped = 0
    seeds = sorted(set(v) & set(h))

    def cell(run):
        if run.get('failed'):
            return 'diverged', 'diverged'
        return (' '.join(f'({a:.2f}, {b:.2f})' for a, b in run['scales'][:2]),
                _orientation(run['scales']))

    for s in seeds:
        (sv, ov), (sh, oh) = cell(v[s]), cell(h[s])
        ok = ov == 'wide' and oh == 'tall'
        flipped += ok
        lines.append(f'| {s} | {sv} | {ov} | {sh} | {oh} | '
                     f'{"yes" if ok else "no"} |')
    lines.append(f'\nTransposition control (stretch-v wide and stretch-h tall '
                 f'in layers 1-2, same seed): {flipped}/{len(seeds)} seeds.')
    return lines


def _per_seed(dataset, conds, family) -> List[str]:
    cols = [HUMAN] + ([f'human {h}x{w}' for h, w in family] + [FAMILY]
                      if dataset == 'pairs' else []) + [TARGET, FIXFINAL]
    vals = {c: _values(conds.get(c, {})) for c in cols if c != FAMILY}
    if dataset == 'pairs':
        vals[FAMILY] = _family_at_cost(conds, family)
    seeds = sorted({s for runs in conds.values() for s in runs})
    lines = [
        f'| seed | {" | ".join(cols)} | target MMACs |',
        '|---' * (len(cols) + 2) + '|'
    ]
    target = conds.get(TARGET, {})
    for s in seeds:
        cells = [f'{vals[c][s]:.2f}' if s in vals[c] else '-' for c in cols]
        cost = f'{target[s]["gmacs"] * 1e3:.3f}' if s in _ok(target) else '-'
        lines.append(f'| {s} | {" | ".join(cells)} | {cost} |')
    return lines


def _runtime(runs) -> str:
    parts = []
    for key in ('threads', 'dynopool_path', 'MMDYNOPOOL_NO_EXT', 'torch'):
        seen = sorted({str(r.get(key, 'not recorded')) for r in runs})
        parts.append(f'{key}: {", ".join(seen)}')
    return '; '.join(parts)


def format_target_report(data: Dict) -> str:
    """The markdown report from ``data`` (``settings`` and ``runs``, as
    :func:`write_target_report` stores them).

    Args:
        data (dict): ``settings`` and ``runs``.

    Returns:
        str: The markdown.
    """
    settings, runs = data['settings'], data['runs']
    family = settings['family']
    targets = settings['target_gmacs']
    epochs = settings.get('epochs')
    schedule = "the configs' schedules" if epochs is None else \
        f'{epochs} epochs'
    out = [
        '# DynOPool at the human cost on the toy digits (target study)\n',
        f'Slim VGG-11, seeds 0-{settings["target_seeds"] - 1}, {schedule}'
        f'. Target X = the human model\'s exact cost at 32x32: ' +
        ', '.join(f'{d} {targets[d] * 1e3:.4f} MMACs'
                  for d in TARGET_DATASETS) +
        '. DynOPool: `GMACsLossHook(target_gmacs=X)` (adaptive lambda, sizes '
        'settled and frozen at 80 % of the run); Fix (Final): its learned '
        'shape retrained frozen from scratch, same seed and schedule. Human '
        'family on pairs: the 32x32 image resized to ' +
        ', '.join(f'{h}x{w}'
                  for h, w in family) + '.\n', f'Runs: {_runtime(runs)}.\n',
        '## Conditions (mean ± std over seeds)\n',
        '| dataset | condition | seeds (failed) | top-1 (%) | MMACs | '
        'cost / X | within ±5 % of X |', '|---|---|---|---|---|---|---|'
    ]
    for d in TARGET_DATASETS:
        out += _condition_rows(d, _by_condition(runs, d), targets[d], family)
    out += [
        '\n## Paired differences by seed (top-1 points; mean [95 % t '
        'interval] (paired t-test p))\n',
        '| dataset | comparison | seeds | difference |', '|---|---|---|---|'
    ]
    for d in TARGET_DATASETS:
        for name, p in _comparisons(d, _by_condition(runs, d), family):
            out.append(f'| {d} | {name} | {p["n"]} | {format_paired(p)} |')
    strongest = _strongest(_by_condition(runs, 'pairs'), family)
    if strongest:
        out += ['', strongest]
    target_runs = [r for r in runs if r.get('model') == 'target']
    ok = [r for r in target_runs if not r.get('failed')]
    within = sum(
        cost_within(r['gmacs'], targets[r['dataset']], COST_TOLERANCE)
        for r in ok)
    fix, same = 0, 0
    for d in TARGET_DATASETS:
        conds = _by_condition(runs, d)
        learned = _ok(conds.get(TARGET, {}))
        for s, r in _ok(conds.get(FIXFINAL, {})).items():
            fix += 1
            same += s in learned and _sizes(r) == _sizes(learned[s])
    out += [
        f'\nCost: {within} of {len(target_runs)} target runs end within '
        f'±5 % of X ({len(target_runs) - len(ok)} failed). Fix (Final) '
        f'ran at its target run\'s sizes in {same} of {fix} runs.\n',
        '## Transposition control (target runs)\n'
    ]
    out += _transposition(runs)
    for d in TARGET_DATASETS:
        out += [f'\n## Per seed, {d} (top-1 %)\n']
        out += _per_seed(d, _by_condition(runs, d), family)
    return '\n'.join(out) + '\n'


def _study_runs(runs: List[Dict], seeds: int) -> List[Dict]:
    keep = []
    for r in runs:
        if r.get('dataset') in TARGET_DATASETS and r.get('seed', seeds) < \
                seeds and target_condition(r) is not None:
            keep.append({k: v for k, v in r.items() if k not in _DROP})
    return sorted(
        keep,
        key=lambda r: (r['dataset'], str(target_condition(r)), r['seed']))


def write_target_report(report_dir: str, settings: Dict,
                        runs: List[Dict]) -> str:
    """Write ``toy_target_runs.json`` (settings and the study's runs) and
    ``toy_target.md`` (:func:`format_target_report` of that JSON) to
    ``report_dir``; return the markdown's path.

    Args:
        report_dir (str): Where the files go.
        settings (dict): How the study ran.
        runs (list[dict]): Every run's result (others than the study's are left
            out).

    Returns:
        str: The markdown's path.
    """
    os.makedirs(report_dir, exist_ok=True)
    data = dict(
        settings=settings, runs=_study_runs(runs, settings['target_seeds']))
    text = json.dumps(data, indent=1, default=str)
    with open(osp.join(report_dir, RUNS_FILE), 'w') as f:
        f.write(text + '\n')
    report = osp.join(report_dir, REPORT_FILE)
    with open(report, 'w') as f:
        f.write(format_target_report(json.loads(text)))
    return report


def recompute_target_report(runs_json: str) -> str:
    """The report's markdown from a ``toy_target_runs.json`` alone.

    Args:
        runs_json (str): The JSON file.

    Returns:
        str: The markdown.
    """
    with open(runs_json) as f:
        return format_target_report(json.load(f))
