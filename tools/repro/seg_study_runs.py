"""The runs of the segmentation study (``tools/repro/seg_study.py``): the
demo-scale FCN-HRNet of ``configs/demo/`` on digits-VOC, several seeds per
condition, every run
:func:`~mmdynopool.analysis.experiments.run_experiment` (resumable:
``result.json`` marks a finished run) in worker processes
(:func:`~mmdynopool.analysis.parallel.run_parallel`).

Conditions (each over the same seeds, ``randomness.seed = seed`` in every
config, so a seed's runs share the data order and, once the backbone
conversion consumes no RNG, the initial conv weights):

* ``human``: the human design at 96x96;
* ``dynopool_target``: DynOPool with ``GMACsLossHook(target_gmacs=X)``, ``X``
  the human model's exact GMACs at 96x96 (:func:`human_cost`);
* ``dynopool_lambda``: DynOPool at the demo's lambda (0.0125), no target:
  the paper's way, at whatever cost it reaches;
* ``human_<H>x<W>``: the human design fed ``H x W`` inputs
  (:data:`FAMILY`: 88 and 104 px bracket the 96 px cost, 80x116 and 116x80
  are non-square at 1.03x it), the mIoU still against the 96x96 labels
  (:func:`set_seg_input_size`);
* ``fixfinal``: per seed, the shape that seed's ``dynopool_target`` run
  learned, frozen (``export_fixed_config``), trained from scratch on the
  same seed and budget without the GMACs loss;
* ``dynopool_target`` on ``stretch-v`` and ``stretch-h`` (digits-VOC with
  every digit stretched 2x vertically, and its exact transpose): the
  transposition control.
"""
import copy
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config

__all__ = [
    'seg_plan', 'seg_needs', 'build_seg_cfg', 'set_seg_input_size',
    'human_cost', 'run_seg_study', 'run_dir', 'FAMILY', 'DATASETS', 'CROP'
]

CONFIG = 'demo/fcn_hr16-slim_{kind}_1xb8-600iter_digits-voc-96x96.py'
CROP = (96, 96)
#: Human family: ``(H, W)`` inputs (cost vs 96x96: 0.86x, 1.21x, 1.03x,
#: 1.03x).
FAMILY = ((88, 88), (104, 104), (80, 116), (116, 80))
#: Study dataset name -> ``DigitsVOCDataset`` variant.
DATASETS = {
    'digits': 'plain',
    'stretch-v': 'stretch_v',
    'stretch-h': 'stretch_h'
}
TARGET = 'dynopool_target'


def _spec(dataset, condition, seed, size=CROP) -> Dict:
    return dict(
        dataset=dataset, condition=condition, seed=seed, input_size=list(size))


def seg_plan(seeds: int) -> List[Dict]:
    """Every run over seeds ``0 ... seeds - 1``: ``dataset``, ``condition``,
    ``seed``, ``input_size``. The target runs come first and their Fix
    (Final) retrains right after them (a free process takes the first ready
    run), then the rest.

    Example:
        >>> plan = seg_plan(2)
        >>> len(plan), plan[0]['condition'], plan[2]['condition']
        (20, 'dynopool_target', 'fixfinal')
    """
    plan = [_spec('digits', TARGET, s) for s in range(seeds)]
    plan += [_spec('digits', 'fixfinal', s) for s in range(seeds)]
    plan += [
        _spec(d, TARGET, s) for d in ('stretch-v', 'stretch-h')
        for s in range(seeds)
    ]
    plan += [
        _spec('digits', c, s) for c in ('dynopool_lambda', 'human')
        for s in range(seeds)
    ]
    plan += [
        _spec('digits', f'human_{h}x{w}', s, (h, w)) for h, w in FAMILY
        for s in range(seeds)
    ]
    return plan


def seg_needs(plan: Sequence[Dict]) -> List[Optional[int]]:
    """Per run, the index of the run it needs: ``fixfinal`` needs the
    digits ``dynopool_target`` run of its seed."""
    where = {
        s['seed']: i
        for i, s in enumerate(plan)
        if s['condition'] == TARGET and s['dataset'] == 'digits'
    }
    needs = []
    for s in plan:
        if s['condition'] != 'fixfinal':
            needs.append(None)
        elif s['seed'] not in where:
            raise ValueError(f'{s} needs the dynopool_target run of seed '
                             f'{s["seed"]} in the plan')
        else:
            needs.append(where[s['seed']])
    return needs


def run_dir(work_dir: str, spec: Dict) -> str:
    return osp.join(work_dir, spec['dataset'], spec['condition'],
                    f'seed{spec["seed"]}')


def set_seg_input_size(cfg: Config, size: Sequence[int]) -> Config:
    """A copy of a segmentation config whose model sees ``(H, W)`` inputs
    and is still scored against the original labels.

    mmseg's ``Resize(scale=(W, H), keep_ratio=False)`` goes after
    ``LoadAnnotations`` in training (image and labels resized together)
    and before it in testing: the labels keep the original size, and mmseg
    resizes the prediction back to ``ori_shape`` before ``IoUMetric``. The
    data preprocessor pads training batches to ``(H, W)``.
    """
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f'size must be (H, W) with H, W >= 1, got {size!r}')
    cfg = copy.deepcopy(cfg)
    h, w = (int(v) for v in size)
    resize = dict(
        type='Resize', scale=(w, h), keep_ratio=False, _scope_='mmseg')
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg.get(name, {}).get('dataset')
        if not dataset:
            continue
        pipeline = [t for t in dataset.pipeline if t['type'] != 'Resize']
        types = [t['type'] for t in pipeline]
        if 'LoadAnnotations' not in types:
            raise ValueError(f'{name} has no LoadAnnotations step to place '
                             f'the Resize by: {types}')
        at = types.index('LoadAnnotations') + (name == 'train_dataloader')
        pipeline.insert(at, dict(resize))
        dataset.pipeline = pipeline
    for holder in (cfg.model, cfg):
        if holder.get('data_preprocessor') is not None:
            holder.data_preprocessor.size = (h, w)
    return cfg


def build_seg_cfg(spec: Dict,
                  data_root: str,
                  target_gmacs: Optional[float] = None,
                  iters: Optional[int] = None,
                  cfg_options: Optional[Dict] = None,
                  fixed_backbone: Optional[Dict] = None) -> Config:
    """The config of one run.

    Args:
        spec (dict): A :func:`seg_plan` entry.
        data_root (str): The digits-VOC root of the spec's dataset.
        target_gmacs (float, optional): ``X`` of ``dynopool_target`` runs.
        iters (int, optional): Training iterations (default: the config's
            600); validation and the checkpoint at the end.
        cfg_options (dict, optional): Merged last.
        fixed_backbone (dict, optional): A ``fixfinal`` run's learned shape
            (its target run's ``fixed_backbone``).
    """
    from mmdynopool.engine import gmacs_loss_hook, gmacs_loss_hooks
    from mmdynopool.utils import config_path
    cond = spec['condition']
    kind = 'human' if cond.startswith('human') else 'dynopool'
    cfg = Config.fromfile(config_path(CONFIG.format(kind=kind)))
    cfg.randomness = dict(seed=int(spec['seed']))
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[name].dataset.data_root = data_root
        cfg[name].dataset.variant = DATASETS[spec['dataset']]
    if iters is not None:
        cfg.train_cfg.max_iters = iters
        cfg.train_cfg.val_interval = iters
        cfg.param_scheduler[0].end = iters
        cfg.default_hooks.checkpoint.interval = iters
    if cond == TARGET:
        if target_gmacs is None:
            raise ValueError('a dynopool_target run needs target_gmacs')
        gmacs_loss_hook(cfg)['target_gmacs'] = float(target_gmacs)
    elif cond == 'fixfinal':
        if not fixed_backbone:
            raise ValueError('a fixfinal run needs fixed_backbone (its '
                             "target run's learned shape)")
        cfg.model.backbone.update(fixed_backbone)
        gmacs_loss_hooks(cfg, remove=True)
    elif cond not in ('dynopool_lambda', 'human'):
        h, w = (int(v) for v in cond[len('human_'):].split('x'))
        if [h, w] != list(spec['input_size']):
            raise ValueError(f'{cond} does not match input_size '
                             f'{spec["input_size"]}')
        cfg = set_seg_input_size(cfg, (h, w))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def human_cost(cfg_options: Optional[Dict] = None) -> float:
    """Exact conv + linear GMACs of the human model on one 96x96 image
    (``target_gmacs`` of the DynOPool target runs)."""
    from mmdynopool.analysis.complexity import exact_config_gmacs
    cfg = build_seg_cfg(
        _spec('digits', 'human', 0), 'unused', None, None, cfg_options)
    return exact_config_gmacs(cfg, CROP, 'mmseg')


def _run_one(task, needed=None) -> Dict:
    """One run in a worker process (module level, so it pickles)."""
    import json

    import mmdynopool  # noqa: F401  (registrations)
    from mmdynopool.analysis.experiments import run_experiment
    from mmdynopool.analysis.parallel import runtime_record
    from mmdynopool.models.layers.dynopool import AlphaDivergedError
    spec, work_dir, roots, target, iters, cfg_options, threads = task
    out_dir = run_dir(work_dir, spec)
    # run_experiment records input_size itself.
    extra = {k: v for k, v in spec.items() if k != 'input_size'}
    extra.update(runtime_record(threads))
    failed = osp.join(out_dir, 'failed.json')
    if osp.isfile(failed):  # deterministic: it would fail again
        with open(failed) as f:
            return json.load(f)
    fixed = None
    if spec['condition'] == 'fixfinal':
        if not needed or needed.get('failed') or \
                not needed.get('fixed_backbone'):
            return dict(
                extra,
                failed=True,
                value=None,
                gmacs=None,
                input_size=spec['input_size'],
                work_dir=out_dir,
                error='its dynopool_target run has no learned shape '
                '(it diverged)')
        fixed = extra['fixed_backbone'] = needed['fixed_backbone']
    if spec['condition'] == TARGET:
        extra['target_gmacs'] = target
    cfg = build_seg_cfg(spec, roots[spec['dataset']], target, iters,
                        cfg_options, fixed)
    cfg.log_level = 'WARNING'
    extra['iters'] = cfg.train_cfg.max_iters
    try:
        result = run_experiment(
            cfg,
            out_dir,
            tuple(spec['input_size']),
            metric='mIoU',
            extra=extra,
            export_fixed=spec['condition'] == TARGET)
    except AlphaDivergedError as e:
        # A diverged run is a result, recorded and counted, not a crash of
        # the study; any other error stops it.
        result = dict(
            extra,
            failed=True,
            error=f'{type(e).__name__}: {e}',
            value=None,
            gmacs=None,
            input_size=spec['input_size'],
            work_dir=out_dir)
        os.makedirs(out_dir, exist_ok=True)
        with open(failed, 'w') as f:
            json.dump(result, f, indent=1)
    return result


def _make_data(roots: Dict[str, str], cfg_options: Optional[Dict]) -> None:
    """Generate each dataset once, here, before the workers start."""
    from mmdynopool.datasets import build_digits_voc
    for dataset, root in roots.items():
        cfg = build_seg_cfg(
            _spec(dataset, 'human', 0), root, None, None, cfg_options)
        generate = dict(cfg.train_dataloader.dataset.get('generate') or {})
        build_digits_voc(root, variant=DATASETS[dataset], **generate)


def run_seg_study(work_dir: str,
                  out_dir: str,
                  seeds: int = 8,
                  jobs: int = 1,
                  iters: Optional[int] = None,
                  threads: int = 1,
                  cfg_options: Optional[Dict] = None) -> Dict:
    """Run (or read back) every run of :func:`seg_plan` and write the
    report (:func:`seg_study_report.write_report`).

    Args:
        work_dir (str): Runs and the generated data go below it.
        out_dir (str): Where ``segmentation.md``, ``segmentation.png`` and
            ``segmentation_runs.json`` go.
        seeds (int): Seeds per condition (0 ... seeds - 1). Default: 8.
        jobs (int): Runs in parallel (processes). Default: 1.
        iters (int, optional): Training iterations (default: the demo
            configs' 600); for smoke tests.
        threads (int): Torch threads per run (recorded). Default: 1.
        cfg_options (dict, optional): Merged into every run's config.

    Returns:
        dict: ``report`` (the markdown file) and ``runs``.
    """
    from seg_study_report import write_report

    from mmdynopool.analysis.parallel import run_parallel
    for name, v in (('seeds', seeds), ('jobs', jobs), ('threads', threads)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f'{name} must be an integer >= 1, got {v!r}')
    if iters is not None and (isinstance(iters, bool)
                              or not isinstance(iters, int) or iters < 1):
        raise ValueError(f'iters must be an integer >= 1, got {iters!r}')
    work_dir = osp.abspath(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    start = time.time()
    roots = {
        d: osp.join(work_dir, f'digits_voc_{v}')
        for d, v in DATASETS.items()
    }
    _make_data(roots, cfg_options)
    target = human_cost(cfg_options)
    plan = seg_plan(seeds)
    tasks = [(s, work_dir, roots, target, iters, cfg_options, threads)
             for s in plan]
    runs = run_parallel(_run_one, tasks, jobs, seg_needs(plan))
    settings = dict(
        seeds=seeds,
        iters=iters,
        threads=threads,
        jobs=jobs,
        target_gmacs=target,
        crop=list(CROP),
        family=[list(s) for s in FAMILY],
        configs=[CONFIG.format(kind=k) for k in ('human', 'dynopool')],
        cfg_options=cfg_options or {},
        wall_seconds=round(time.time() - start, 1))
    report = write_report(out_dir, settings, runs)
    return dict(report=report, runs=runs)
