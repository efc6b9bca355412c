"""Train-and-measure runs: one experiment, a lambda sweep, the trade-off plot.

:func:`run_experiment` trains one config with mmengine's ``Runner`` in its
own work dir and measures what the DynOPool paper reports: the validation
metric (mmpretrain ``Accuracy`` top-1, or mmseg ``mIoU``, read from the
val loop), the GMACs at the learned shape (:func:`complexity_report`) and the
feature-map sizes. It is resumable: a finished run leaves ``result.json``
and is not run again, an interrupted one resumes from its latest checkpoint.

:func:`lambda_sweep` does this for several ``GMACsLossHook`` weights and for
the human model trained at several input resolutions (the paper's Fig. 5:
"human-designed models are trained by varying input resolutions"), and
:func:`plot_tradeoff` draws accuracy against GMACs.
"""
import copy
import csv
import json
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from .report import complexity_report

__all__ = [
    'run_experiment', 'lambda_sweep', 'set_gmacs_loss_weight',
    'set_input_resolution', 'plot_tradeoff', 'write_rows', 'METRIC_KEYS'
]

RESULT_FILE = 'result.json'
# The first of these the val loop reports is "the" metric of a run.
METRIC_KEYS = ('accuracy/top1', 'mIoU', 'aAcc')


class _LastValMetrics(Hook):
    """Keeps the metrics of the latest validation and when it ran."""
    priority = 'LOWEST'

    def __init__(self) -> None:
        self.metrics, self.iter = None, None

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics, self.iter = dict(metrics or {}), runner.iter


def _pick_metric(metrics: Dict, metric: Optional[str]) -> str:
    if metric is not None:
        if metric not in metrics:
            raise KeyError(f'metric {metric!r} is not among the val metrics '
                           f'{sorted(metrics)}')
        return metric
    for key in METRIC_KEYS:
        if key in metrics:
            return key
    raise KeyError(f'no known metric ({", ".join(METRIC_KEYS)}) among the '
                   f'val metrics {sorted(metrics)}; pass metric=')


def run_experiment(cfg: Config,
                   work_dir: str,
                   input_size: Sequence[int],
                   metric: Optional[str] = None,
                   extra: Optional[Dict] = None,
                   hooks: Sequence[Hook] = ()) -> Dict:
    """Train ``cfg`` in ``work_dir`` and measure it (or read the result of a
    finished run).

    Args:
        cfg (Config): A full training config (train / val loops and
            evaluator). Not modified.
        work_dir (str): This run's directory; ``result.json`` there marks it
            finished, its checkpoints let an interrupted run resume.
        input_size (Sequence[int]): ``(H, W)`` at which GMACs and sizes are
            counted, normally the training input size.
        metric (str, optional): Val metric key. Default: the first of
            :data:`METRIC_KEYS` found.
        extra (dict, optional): Copied into the result (e.g. lambda, seed).
        hooks (Sequence[Hook]): Extra hook instances for the runner (e.g. a
            progress display).

    Returns:
        dict: ``metric`` (key), ``value``, ``metrics`` (all val metrics),
        ``gmacs`` (conv + linear at the learned shape), ``resize_gmacs``,
        ``params`` (M), ``resolutions`` (input and every resized size),
        ``scales`` (per resizing layer ``(r_h, r_w)``), ``input_size``,
        ``train_seconds``, ``work_dir`` and ``extra``'s keys.
    """
    from mmengine.runner import Runner

    from ..utils import allow_mmengine_checkpoints, newest_loadable_checkpoint
    if len(input_size) != 2 or min(input_size) < 1:
        raise ValueError(f'input_size must be (H, W), got {input_size!r}')
    result_file = osp.join(work_dir, RESULT_FILE)
    if osp.isfile(result_file):
        with open(result_file) as f:
            return json.load(f)
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    allow_mmengine_checkpoints()
    # Resume from the newest readable checkpoint in work_dir, if any (one
    # cut off by a killed run is skipped with a warning).
    last = newest_loadable_checkpoint(work_dir) if osp.isdir(
        work_dir) else None
    cfg.resume, cfg.load_from = last is not None, last
    start = time.time()
    runner = Runner.from_cfg(cfg)
    catcher = _LastValMetrics()
    runner.register_hook(catcher)
    for hook in hooks:
        runner.register_hook(hook)
    runner.train()
    metrics = catcher.metrics
    if metrics is None or catcher.iter != runner.iter:
        metrics = runner.val()  # the train loop did not validate at its end
    seconds = time.time() - start
    key = _pick_metric(metrics, metric)
    model = runner.model.module if is_model_wrapper(
        runner.model) else runner.model
    report = complexity_report(
        model, input_size, forward=lambda t: model(t, mode='tensor'))
    result = dict(
        metric=key,
        value=float(metrics[key]),
        metrics={k: float(v) for k, v in metrics.items()},
        gmacs=report['gmacs'],
        resize_gmacs=report['resize_gmacs'],
        params=report['params'],
        resolutions=[list(s) for s in report['resolutions']],
        scales=[list(r['scale']) for r in report['layers']],
        input_size=list(input_size),
        train_seconds=round(seconds, 1),
        work_dir=work_dir,
        **(extra or {}))
    with open(result_file, 'w') as f:
        json.dump(result, f, indent=1)
    return result


def _gmacs_hooks(cfg: Config) -> List[dict]:
    return [h for h in cfg.get('custom_hooks', [])
            if h.get('type') == 'GMACsLossHook']


def set_gmacs_loss_weight(cfg: Config, loss_weight: float) -> Config:
    """A copy of ``cfg`` whose ``GMACsLossHook`` has ``loss_weight``."""
    if not loss_weight >= 0:
        raise ValueError(f'lambda (GMACsLossHook loss_weight) must be >= 0, '
                         f'got {loss_weight!r}')
    cfg = copy.deepcopy(cfg)
    hooks = _gmacs_hooks(cfg)
    if len(hooks) != 1:
        raise ValueError('the DynOPool config must have exactly one '
                         f'GMACsLossHook in custom_hooks, found {len(hooks)}')
    hooks[0]['loss_weight'] = float(loss_weight)
    return cfg


def set_input_resolution(cfg: Config, size: Sequence[int]) -> Config:
    """A copy of ``cfg`` whose train and val images are resized to ``size``
    (``(H, W)``): an mmcv ``Resize`` right before the final ``Pack*``
    transform of each pipeline (after any crop)."""
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f'resolution must be (H, W) with H, W >= 1, got '
                         f'{size!r}')
    cfg = copy.deepcopy(cfg)
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(name)
        if not loader:
            continue
        pipeline = loader.get('dataset', {}).get('pipeline')
        if not pipeline or not pipeline[-1]['type'].startswith('Pack'):
            raise ValueError(f'{name}.dataset.pipeline must end with a Pack* '
                             f'transform to set the input resolution, got '
                             f'{pipeline!r}')
        pipeline.insert(-1, dict(type='Resize', scale=(size[1], size[0])))
    return cfg


def lambda_sweep(cfg: Config,
                 lambdas: Sequence[float],
                 work_dir: str,
                 input_size: Optional[Sequence[int]] = None,
                 human_cfg: Optional[Config] = None,
                 resolutions: Sequence[int] = (),
                 metric: Optional[str] = None) -> Dict[str, List[Dict]]:
    """Train one run per lambda, and the human model per input resolution.

    Args:
        cfg (Config): A DynOPool config with one ``GMACsLossHook``.
        lambdas (Sequence[float]): ``loss_weight`` values (>= 0).
        work_dir (str): Runs go to ``lambda_<value>/`` and
            ``human_<res>/`` below it.
        input_size (Sequence[int], optional): ``(H, W)`` of the DynOPool
            runs' inputs, where GMACs are counted. Default: the hook's
            ``input_size``.
        human_cfg (Config, optional): The human-designed model's config,
            trained once per resolution (square ``res x res`` inputs).
        resolutions (Sequence[int]): Input sizes for ``human_cfg``.
        metric (str, optional): See :func:`run_experiment`.

    Returns:
        dict: ``dynopool`` and ``human``: lists of :func:`run_experiment`
        results (with ``lambda`` / ``resolution`` added).
    """
    if not lambdas:
        raise ValueError('lambdas must hold at least one value, got '
                         f'{lambdas!r}')
    if resolutions and human_cfg is None:
        raise ValueError('resolutions need human_cfg (the human-designed '
                         'model to train at each resolution)')
    if input_size is None:
        hooks = _gmacs_hooks(cfg)
        if len(hooks) != 1:
            raise ValueError('input_size is needed: the config has '
                             f'{len(hooks)} GMACsLossHook(s), not one')
        input_size = hooks[0]['input_size']
    out = dict(dynopool=[], human=[])
    for lam in lambdas:
        out['dynopool'].append(run_experiment(
            set_gmacs_loss_weight(cfg, lam),
            osp.join(work_dir, f'lambda_{lam:g}'), input_size, metric,
            extra=dict(kind='dynopool', **{'lambda': float(lam)})))
    for res in resolutions:
        if not int(res) >= 1:
            raise ValueError(f'resolutions must be >= 1, got {res!r}')
        out['human'].append(run_experiment(
            set_input_resolution(human_cfg, (res, res)),
            osp.join(work_dir, f'human_{res}'), (res, res), metric,
            extra=dict(kind='human', resolution=int(res))))
    return out


def write_rows(rows: Sequence[Dict], prefix: str) -> List[str]:
    """``rows`` as ``prefix.json`` and ``prefix.csv`` (scalar columns)."""
    with open(prefix + '.json', 'w') as f:
        json.dump(list(rows), f, indent=1)
    cols = []
    for r in rows:
        cols += [k for k, v in r.items() if not isinstance(v, (dict, list))
                 and k not in cols]
    with open(prefix + '.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, cols, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    return [prefix + '.json', prefix + '.csv']


def plot_tradeoff(sweep: Dict[str, List[Dict]], out_file: str,
                  title: str = '') -> str:
    """Metric vs GMACs: DynOPool points (one per lambda) and the human
    curve over input resolutions (the DynOPool paper's Fig. 5)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    human = sorted(sweep.get('human', []), key=lambda r: r['gmacs'])
    if human:
        ax.plot([r['gmacs'] for r in human], [r['value'] for r in human],
                'o--', color='tab:gray', label='human (input resolution)')
        for r in human:
            ax.annotate(f'{r["resolution"]}px', (r['gmacs'], r['value']),
                        textcoords='offset points', xytext=(4, -10),
                        fontsize=8, color='tab:gray')
    dyno = sweep.get('dynopool', [])
    if dyno:
        ax.plot([r['gmacs'] for r in dyno], [r['value'] for r in dyno], 's',
                color='tab:red', label='DynOPool (lambda)')
        for r in dyno:
            ax.annotate(f'{r["lambda"]:g}', (r['gmacs'], r['value']),
                        textcoords='offset points', xytext=(4, 4),
                        fontsize=8, color='tab:red')
    rows = human + dyno
    ax.set_xlabel('GMACs per image')
    ax.set_ylabel(rows[0]['metric'] if rows else 'metric')
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_file, dpi=100)
    plt.close(fig)
    return out_file
