"""The toy studies' figures (:mod:`toy_report` draws them): the alpha
trajectories of the control runs and the lambda sweep against the human
resolution curve."""
from typing import Dict, List

from mmdynopool.analysis.plots import pyplot, save_figure

__all__ = ['plot_trajectories', 'plot_sweep']


def _runs(results: List[Dict], **match) -> List[Dict]:
    """The finished runs matching ``match``."""
    return [
        r for r in results if not r.get('failed') and all(
            r.get(k) == v for k, v in match.items())
    ]


def plot_trajectories(results: List[Dict], out_file: str) -> str:
    """Layer-1 and layer-2 r_h / r_w over training, every control run.

    Args:
        results (list[dict]): Every run's result
            (:func:`toy_study.run_toy_studies`).
        out_file (str): PNG path.

    Returns:
        str: ``out_file``.
    """
    plt = pyplot()
    from matplotlib.lines import Line2D
    fig, axes = plt.subplots(2, 2, figsize=(9, 6), sharex=True, sharey=True)
    colours = {
        'central': 'tab:red',
        'one_sided': 'tab:blue',
        'central_alpha': 'tab:grey'
    }
    for row, dataset in enumerate(('stretch-v', 'stretch-h')):
        for col, layer in enumerate((0, 1)):
            ax = axes[row, col]
            for model, colour in colours.items():
                for r in _runs(
                        results, study='control', dataset=dataset,
                        model=model):
                    t = r.get('trajectory') or {}
                    # Layers in logged (forward) order, not text order.
                    keys = list(
                        dict.fromkeys(
                            k.rsplit('/', 1)[0] for k in t
                            if k.startswith('scale/')))
                    if len(keys) <= layer:
                        continue
                    k = keys[layer]
                    ax.plot(
                        t['step'],
                        t[k + '/h'],
                        '-',
                        color=colour,
                        alpha=0.6,
                        lw=1)
                    ax.plot(
                        t['step'],
                        t[k + '/w'],
                        ':',
                        color=colour,
                        alpha=0.6,
                        lw=1)
            ax.set_title(f'{dataset}, resizing layer {layer + 1}', fontsize=9)
            ax.set_yscale('log')
            ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel('iteration')
    for ax in axes[:, 0]:
        ax.set_ylabel('scale r')
    fig.legend([
        Line2D([], [], color=c, ls=ls) for c in colours.values()
        for ls in ('-', ':')
    ], [f'{m} {a}' for m in colours for a in ('r_h', 'r_w')],
               loc='lower center',
               ncol=6,
               fontsize=7)
    return save_figure(fig, out_file, rect=(0, 0.06, 1, 1))


def plot_sweep(points: Dict[str, List[Dict]], out_file: str) -> str:
    """Top-1 against MMACs: DynOPool per lambda, human per resolution (mean
    +- std over seeds), the paper's Fig. 5 at toy scale.

    Args:
        points (dict): ``summarise_sweep(...)['points']``.
        out_file (str): PNG path.

    Returns:
        str: ``out_file``.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, fmt, colour, label in (('human', 'o--', 'tab:gray',
                                      'human (input resolution)'),
                                     ('dynopool', 's-', 'tab:red',
                                      'DynOPool (lambda)'),
                                     ('image_count', 'x', 'tab:blue',
                                      "DynOPool, count='image'")):
        pts = sorted(points.get(name, []), key=lambda p: p['gmacs'])
        if not pts:
            continue
        ax.errorbar([p['gmacs'] * 1e3 for p in pts], [p['value'] for p in pts],
                    xerr=[p['gmacs_std'] * 1e3 for p in pts],
                    yerr=[p['value_std'] for p in pts],
                    fmt=fmt,
                    color=colour,
                    label=label,
                    capsize=2)
        for p in pts:
            tag = f'{p["resolution"]}px' if name == 'human' else \
                f'x{p["lambda_factor"]:g}'
            ax.annotate(
                tag, (p['gmacs'] * 1e3, p['value']),
                textcoords='offset points',
                xytext=(4, 4),
                fontsize=7,
                color=colour)
    ax.set_xlabel('MMACs per image')
    ax.set_ylabel('top-1 (%)')
    ax.set_title('digits-pairs: accuracy vs cost', fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out_file)
