"""Train-and-measure runs.

:func:`run_experiment` trains one config with mmengine's ``Runner`` in its
own work dir and measures what the DynOPool paper reports: the validation
metric (mmpretrain ``Accuracy`` top-1, or mmseg ``mIoU``, read from the
val loop), the GMACs at the learned shape (:func:`complexity_report`) and the
feature-map sizes. It is resumable: a finished run leaves ``result.json``
and is not run again, an interrupted one resumes from its latest checkpoint.

The lambda sweep (``tools/analysis/lambda_sweep.py``), the toy and
segmentation studies and the demo (``tools/repro/``) are built on it.
"""
import copy
import json
import os.path as osp
import time
from typing import Dict, Optional, Sequence

from mmengine.config import Config
from mmengine.hooks import Hook

from ..engine.config_surgery import export_fixed_config
from ..utils.inspection import unwrap_model
from .complexity import complexity_report

__all__ = ['run_experiment', 'METRIC_KEYS', 'RESULT_FILE']

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
            key: [
                list(v) if isinstance(v, (tuple, list)) else v
                for v in backbone[key]
            ],
            field:
            dict(backbone[field])
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
        metrics={
            k: float(v)
            for k, v in metrics.items()
        },
        gmacs=report['gmacs'],
        resize_gmacs=report['resize_gmacs'],
        params=report['params'],
        resolutions=[list(s) for s in report['resolutions']],
        scales=[list(r['scale']) for r in report['layers']],
        layers=[
            dict(
                r,
                scale=list(r['scale']),
                out=list(r['out']),
                **{'in': list(r['in'])}) for r in report['layers']
        ],
        input_size=list(input_size),
        train_seconds=round(seconds, 1),
        work_dir=work_dir,
        **(extra or {}))
    if exporter is not None:
        result['fixed_backbone'] = exporter.backbone
    with open(result_file, 'w') as f:
        json.dump(result, f, indent=1)
    return result
