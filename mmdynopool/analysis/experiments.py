"""Train-and-measure runs: one experiment, a lambda sweep, their rows.

:func:`run_experiment` trains one config with mmengine's ``Runner`` in its
own work dir and measures what the DynOPool paper reports: the validation
metric (mmpretrain ``Accuracy`` top-1, or mmseg ``mIoU``, read from the
val loop), the GMACs at the learned shape (:func:`complexity_report`) and the
feature-map sizes. It is resumable: a finished run leaves ``result.json``
and is not run again, an interrupted one resumes from its latest checkpoint.

:func:`lambda_sweep` does this for several ``GMACsLossHook`` weights and for
the human model trained at several input resolutions (the paper's Fig. 5:
"human-designed models are trained by varying input resolutions");
:func:`write_rows` writes the results as JSON and CSV and
:func:`~mmdynopool.analysis.plot_tradeoff` draws them.
:func:`run_lambda_sweep` does all three from config files.
"""
import copy
import csv
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config
from mmengine.hooks import Hook

from ..utils.inspection import unwrap_model
from .complexity import complexity_report
from .config_surgery import (export_fixed_config, gmacs_loss_hook,
                             set_gmacs_loss_weight, set_input_resolution)

__all__ = [
    'run_experiment', 'lambda_sweep', 'run_lambda_sweep', 'format_sweep_rows',
    'write_rows', 'METRIC_KEYS'
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


class _ExportFixed(Hook):
    """Keeps the backbone fields of :func:`export_fixed_config` at the end
    of training (the learned shape, for a Fix (Final) retrain)."""
    priority = 'LOWEST'

    def __init__(self, cfg: Config) -> None:
        self.cfg, self.backbone = cfg, None

    def after_train(self, runner) -> None:
        fixed = export_fixed_config(self.cfg, unwrap_model(runner.model))
        backbone = fixed.model.backbone
        key = 'init_alphas' if 'init_alphas' in backbone else 'init_scales'
        field = 'adaptor_cfg' if key == 'init_alphas' else 'dynopool_cfg'
        self.backbone = {
            key: [list(v) if isinstance(v, (tuple, list)) else v
                  for v in backbone[key]],
            field: dict(backbone[field])
        }


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
                   hooks: Sequence[Hook] = (),
                   export_fixed: bool = False) -> Dict:
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
        export_fixed (bool): Also record ``fixed_backbone``: the backbone
            fields :func:`export_fixed_config` sets for a Fix (Final)
            retrain of the learned shape (``init_scales`` and
            ``dynopool_cfg``, or Shape Adaptor's ``init_alphas`` and
            ``adaptor_cfg``), taken when training ends. Default: False.

    Returns:
        dict: ``metric`` (key), ``value``, ``metrics`` (all val metrics),
        ``gmacs`` (conv + linear at the learned shape), ``resize_gmacs``,
        ``params`` (M), ``resolutions`` (input and every distinct resized
        size), ``scales`` (per resizing layer ``(r_h, r_w)``), ``layers``
        (per resizing layer and input: ``name``, ``type``, ``scale``,
        ``in``, ``out``), ``input_size``, ``train_seconds``, ``work_dir``,
        ``fixed_backbone`` (with ``export_fixed``) and ``extra``'s keys.
    """
    from mmengine.runner import Runner

    from ..utils import (allow_mmengine_checkpoints, keep_two_checkpoints,
                         newest_loadable_checkpoint)
    if len(input_size) != 2 or min(input_size) < 1:
        raise ValueError(f'input_size must be (H, W), got {input_size!r}')
    result_file = osp.join(work_dir, RESULT_FILE)
    if osp.isfile(result_file):
        with open(result_file) as f:
            return json.load(f)
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    keep_two_checkpoints(cfg)  # an interrupted run resumes from one
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
    exporter = _ExportFixed(cfg) if export_fixed else None
    if exporter is not None:
        runner.register_hook(exporter)
    runner.train()
    metrics = catcher.metrics
    if metrics is None or catcher.iter != runner.iter:
        metrics = runner.val()  # the train loop did not validate at its end
    seconds = time.time() - start
    key = _pick_metric(metrics, metric)
    model = unwrap_model(runner.model)
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
        layers=[dict(r, scale=list(r['scale']), out=list(r['out']),
                     **{'in': list(r['in'])}) for r in report['layers']],
        input_size=list(input_size),
        train_seconds=round(seconds, 1),
        work_dir=work_dir,
        **(extra or {}))
    if exporter is not None:
        result['fixed_backbone'] = exporter.backbone
    with open(result_file, 'w') as f:
        json.dump(result, f, indent=1)
    return result


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
        try:
            input_size = gmacs_loss_hook(cfg)['input_size']
        except ValueError as e:
            raise ValueError(f'input_size is needed: {e}') from None
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


def run_lambda_sweep(config: str,
                     lambdas: Sequence[float],
                     work_dir: str,
                     human_config: Optional[str] = None,
                     resolutions: Sequence[int] = (),
                     input_size: Optional[Sequence[int]] = None,
                     metric: Optional[str] = None,
                     cfg_options: Optional[dict] = None) -> Dict:
    """:func:`lambda_sweep` from config files (``cfg_options`` merged into
    both), its rows written by :func:`write_rows` to ``work_dir/sweep.*``
    and drawn to ``work_dir/sweep.png``.

    Returns:
        dict: ``rows`` (the DynOPool runs, then the human ones) and
        ``files`` (written).
    """
    from .plots import plot_tradeoff

    def load(path):
        cfg = Config.fromfile(path)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        return cfg

    work_dir = osp.abspath(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    sweep = lambda_sweep(
        load(config), lambdas, work_dir, input_size=input_size,
        human_cfg=load(human_config) if human_config else None,
        resolutions=resolutions, metric=metric)
    rows = sweep['dynopool'] + sweep['human']
    files = write_rows(rows, osp.join(work_dir, 'sweep'))
    files.append(plot_tradeoff(
        sweep, osp.join(work_dir, 'sweep.png'),
        osp.splitext(osp.basename(config))[0]))
    return dict(rows=rows, files=files)


def format_sweep_rows(rows: Sequence[Dict]) -> str:
    """One line per run: name, metric, GMACs and feature-map sizes."""
    lines = [f'{"run":<14}{rows[0]["metric"]:>14}{"GMACs":>12}  sizes']
    for r in rows:
        name = (f'lambda {r["lambda"]:g}' if r['kind'] == 'dynopool' else
                f'human {r["resolution"]}px')
        sizes = ' '.join(f'{h}x{w}' for h, w in r['resolutions'])
        lines.append(f'{name:<14}{r["value"]:>14.2f}{r["gmacs"]:>12.5f}  '
                     f'{sizes}')
    return '\n'.join(lines)
