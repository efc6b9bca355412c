"""Every figure of the analysis: one matplotlib set-up, one way to save.

* :func:`plot_shapes`: feature-map sizes per stage (DynOPool paper, Fig. 4),
  and :func:`plot_learned_shapes`, the same for configs and checkpoints;
* :func:`plot_tradeoff`: metric vs GMACs of a lambda sweep (Fig. 5);
* :func:`plot_oracle`: greedy curve, unique predictions and per-layer
  preferences of an oracle evaluation (Untapped Potential, Fig. 2, 3, 5).

:func:`pyplot` and :func:`save_figure` are the set-up the studies' figures
(``tools/repro/``) share.

matplotlib is imported when a figure is drawn, with the file-only ``Agg``
backend (no display needed), so importing this module costs nothing.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..models.dynamic import parse_option_text
from ..models.layers.dynamic_conv import option_key

__all__ = [
    'pyplot', 'save_figure', 'plot_shapes', 'plot_learned_shapes',
    'plot_tradeoff', 'plot_oracle'
]


def pyplot():
    """``matplotlib.pyplot`` on the ``Agg`` backend: the set-up every
    figure here shares.

    Returns:
        module: ``matplotlib.pyplot``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig,
                out_file: str,
                dpi: int = 100,
                rect: Optional[Sequence[float]] = None) -> str:
    """Lay ``fig`` out (inside ``rect`` when given), write it to
    ``out_file`` (its folder created), close it and return the path.

    Args:
        fig (Figure): A matplotlib figure.
        out_file (str): PNG path.
        dpi (int): Resolution. Default: 100.
        rect (Sequence[float], optional): ``tight_layout``'s rectangle.
            Default: the whole figure.

    Returns:
        str: ``out_file``.
    """
    plt = pyplot()
    fig.tight_layout(rect=rect)
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file, dpi=dpi)
    plt.close(fig)
    return out_file


def plot_shapes(stage_sizes: Sequence[Sequence[Sequence[int]]],
                labels: Sequence[str],
                out_file: str,
                subtitles: Optional[Sequence[str]] = None) -> str:
    """Draw feature-map sizes per stage as rectangles (the DynOPool paper's
    Fig. 4): one row per model, width and height to scale, annotated.

    Args:
        stage_sizes: Per model, the ``(H, W)`` of every stage.
        labels: One name per model.
        out_file (str): PNG path.
        subtitles: Optional extra text per model (e.g. GMACs).

    Returns:
        str: ``out_file``.
    """
    plt = pyplot()
    from matplotlib.patches import Rectangle

    biggest = max(max(max(h, w) for h, w in sizes) for sizes in stage_sizes)
    n_stages = max(len(s) for s in stage_sizes)
    fig, axes = plt.subplots(
        len(stage_sizes),
        1,
        figsize=(2.2 * n_stages + 1, 2.6 * len(stage_sizes)),
        squeeze=False)
    for row, (ax, sizes,
              label) in enumerate(zip(axes[:, 0], stage_sizes, labels)):
        for i, (h, w) in enumerate(sizes):
            sh, sw = h / biggest, w / biggest
            x0 = i * 1.2 + (1 - sw) / 2
            ax.add_patch(
                Rectangle((x0, (1 - sh) / 2),
                          sw,
                          sh,
                          facecolor='tab:blue',
                          alpha=0.35,
                          edgecolor='tab:blue'))
            ax.text(
                i * 1.2 + 0.5,
                -0.12,
                f'{h}x{w}',
                ha='center',
                va='top',
                fontsize=9)
        ax.set_xlim(-0.1, n_stages * 1.2)
        ax.set_ylim(-0.3, 1.05)
        ax.set_aspect('equal')
        ax.axis('off')
        title = label if not subtitles else f'{label}  ({subtitles[row]})'
        ax.set_title(title, fontsize=10, loc='left')
    return save_figure(fig, out_file)


def plot_learned_shapes(models: Sequence[Tuple[str, Optional[str]]],
                        shape: Sequence[int], out_file: str) -> str:
    """:func:`plot_shapes` of models given as ``(config, checkpoint or
    None)``, at ``shape`` (``(H, W)``), each labelled with its config name,
    checkpoint and GMACs.

    Args:
        models (Sequence[tuple]): ``(config, checkpoint or None)`` per model.
        shape (Sequence[int]): ``(H, W)`` of the input.
        out_file (str): PNG path.

    Returns:
        str: ``out_file``.
    """
    from .complexity import config_complexity
    sizes, labels, notes = [], [], []
    for config, checkpoint in models:
        r = config_complexity(config, shape, checkpoint)
        sizes.append(r['resolutions'])
        labels.append(
            osp.splitext(osp.basename(config))[0] +
            (f' ({osp.basename(checkpoint)})' if checkpoint else ''))
        notes.append(f'{r["gmacs"]:.3f} GMACs')
    return plot_shapes(sizes, labels, out_file, notes)


def plot_tradeoff(sweep: Dict[str, List[Dict]],
                  out_file: str,
                  title: str = '') -> str:
    """Metric vs GMACs: DynOPool points (one per lambda) and the human
    curve over input resolutions (the DynOPool paper's Fig. 5).

    Args:
        sweep (dict): ``dynopool`` and ``human`` run results (``value``,
            ``gmacs``, ``lambda`` / ``resolution``), as the lambda sweep tool
            returns them.
        out_file (str): PNG path.
        title (str): Figure title. Default: none.

    Returns:
        str: ``out_file``.
    """
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5.5, 4))
    human = sorted(sweep.get('human', []), key=lambda r: r['gmacs'])
    if human:
        ax.plot([r['gmacs'] for r in human], [r['value'] for r in human],
                'o--',
                color='tab:gray',
                label='human (input resolution)')
        for r in human:
            ax.annotate(
                f'{r["resolution"]}px', (r['gmacs'], r['value']),
                textcoords='offset points',
                xytext=(4, -10),
                fontsize=8,
                color='tab:gray')
    dyno = sweep.get('dynopool', [])
    if dyno:
        ax.plot([r['gmacs'] for r in dyno], [r['value'] for r in dyno],
                's',
                color='tab:red',
                label='DynOPool (lambda)')
        for r in dyno:
            ax.annotate(
                f'{r["lambda"]:g}', (r['gmacs'], r['value']),
                textcoords='offset points',
                xytext=(4, 4),
                fontsize=8,
                color='tab:red')
    rows = human + dyno
    ax.set_xlabel('GMACs per image')
    ax.set_ylabel(rows[0]['metric'] if rows else 'metric')
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out_file)


def plot_oracle(out_file: str,
                greedy: Optional[dict] = None,
                summary: Optional[dict] = None,
                title: str = '') -> str:
    """One PNG: the greedy accumulation curve (Fig. 3), the unique
    predictions histogram (Fig. 2) and per-layer preferences (Fig. 5).

    Args:
        out_file (str): PNG path.
        greedy (dict, optional): :func:`greedy_accumulation`'s result
            (classification only).
        summary (dict, optional): :func:`oracle_summary`'s result.
        title (str): Figure title. Default: none.

    Returns:
        str: ``out_file``.
    """
    plt = pyplot()
    panels = [
        greedy is not None,
        bool(summary and summary.get('unique_predictions')),
        bool(summary)
    ]
    fig, axes = plt.subplots(
        1, sum(panels), figsize=(5 * sum(panels), 3.8), squeeze=False)
    axes = list(axes[0])
    if greedy is not None:
        ax = axes.pop(0)
        acc = greedy['accuracy']
        ax.plot(np.arange(1, len(acc) + 1), acc, 'o-', ms=2)
        if summary:
            ax.axhline(
                summary['static'],
                color='k',
                ls='--',
                lw=1,
                label=f"static {summary['static']:.1f}")
            ax.legend(loc='lower right')
        ax.set_xscale('log')
        ax.set_xlabel('permutations allowed (greedy)')
        ax.set_ylabel('best-case top-1 (%)')
    if panels[1]:
        ax = axes.pop(0)
        hist = summary['unique_predictions']
        ax.bar([int(k) for k in hist], list(hist.values()))
        ax.set_xlabel('unique predictions per sample')
        ax.set_ylabel('samples')
    if panels[2]:
        ax = axes.pop(0)
        prefs = summary['preferences']
        options = sorted(
            {o
             for p in prefs.values()
             for o in p},
            key=lambda s:
            [option_key(parse_option_text(v)) for v in s.split('/')])
        bottom = np.zeros(len(prefs))
        for o in options:
            vals = np.array([prefs[n].get(o, 0) for n in prefs])
            ax.bar(list(prefs), vals, bottom=bottom, label=o)
            bottom += vals
        ax.set_ylabel('preferred option (% of samples)')
        ax.legend(fontsize=7, ncol=2, title='option')
    fig.suptitle(title)
    return save_figure(fig, out_file, dpi=110)
