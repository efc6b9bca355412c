"""The toy ``target`` study's runs (:mod:`toy_study` runs them): DynOPool
asked for the human model's cost, the human family at about that cost, Fix
(Final) retrains of the learned shapes.

* ``target``: the toy DynOPool config (lambda from the toy rule, log step on
  alpha) with ``GMACsLossHook(target_gmacs=X)``, ``X`` the human model's
  exact GMACs on one 32x32 image
  (:func:`~mmdynopool.analysis.complexity.exact_config_gmacs`);
* ``target_fixfinal``: the shape a ``target`` run learned, frozen
  (:func:`~mmdynopool.engine.export_fixed_config`, recorded by the target
  run as ``fixed_backbone``), trained from scratch on the same seed and
  schedule without the GMACs loss: what the shape is worth apart from the
  dynamics of learning it;
* the human model on ``pairs`` at the non-square inputs of
  :data:`TARGET_FAMILY` (the 32x32 image resized, as for the sweep's
  resolutions): the strongest human baselines at matched cost;
* the human model at 32x32 on every dataset (the sweep's and the control's
  runs, labelled as they are, so a work dir shares them).
"""
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = [
    'TARGET_DATASETS', 'TARGET_FAMILY', 'target_plan', 'target_needs',
    'configure_target'
]

TARGET_DATASETS = ('pairs', 'stretch-v', 'stretch-h')
#: The human family on pairs: ``(H, W)`` inputs of aspect about 2 (the
#: pairs' content) that bracket the 32x32 cost: 0.948x and 1.082x. (22x44
#: costs 0.76x: the four 2x pools floor 11 -> 5 -> 2 -> 1.)
TARGET_FAMILY = ((24, 46), (24, 48))


def _spec(study, dataset, model, seed, **extra) -> Dict:
    return dict(study=study, dataset=dataset, model=model, seed=seed, **extra)


def target_plan(seeds: int, target_gmacs: Dict[str,
                                               float]) -> Tuple[List, List]:
    """The target study's runs over seeds ``0 ... seeds - 1``.

    Args:
        seeds (int): Seeds per condition.
        target_gmacs (dict): Per dataset of :data:`TARGET_DATASETS`, the
            GMACs to aim at.

    Returns:
        tuple: ``(learned, baselines)``: the ``target`` runs followed by
        their ``target_fixfinal`` retrains (they wait for a result), then
        the human runs.

    Example:
        >>> learned, base = target_plan(
        ...     2, dict(pairs=1e-3, **{'stretch-v': 1e-3, 'stretch-h': 1e-3}))
        >>> len(learned), len(base)
        (12, 10)
    """
    if not target_gmacs or set(target_gmacs) != set(TARGET_DATASETS):
        raise ValueError('the target study needs target_gmacs for '
                         f'{TARGET_DATASETS}, got {target_gmacs!r}')
    learned = [
        _spec('target', d, model, s, target_gmacs=float(target_gmacs[d]))
        for model in ('target', 'target_fixfinal') for d in TARGET_DATASETS
        for s in range(seeds)
    ]
    # Labelled as the sweep (pairs, 32 px) and the control label them.
    baselines = [
        _spec('sweep', d, 'human', s, resolution=32)
        if d == 'pairs' else _spec('control', d, 'human', s)
        for d in TARGET_DATASETS for s in range(seeds)
    ]
    baselines += [
        _spec('target', 'pairs', 'human', s, resolution=list(size))
        for size in TARGET_FAMILY for s in range(seeds)
    ]
    return learned, baselines


def target_needs(plan: Sequence[Dict]) -> List[Optional[int]]:
    """Per spec of ``plan``, the index of the run whose result it needs: a
    ``target_fixfinal`` run needs the ``target`` run of its dataset and
    seed (which must be in ``plan``); other runs need none.

    Args:
        plan (Sequence[dict]): Run specs.

    Returns:
        list[int | None]: One entry per spec.
    """
    where = {
        (s['dataset'], s['seed']): i
        for i, s in enumerate(plan) if s['model'] == 'target'
    }
    needs = []
    for s in plan:
        if s['model'] != 'target_fixfinal':
            needs.append(None)
        elif (s['dataset'], s['seed']) not in where:
            raise ValueError(f'{s} needs the target run of its dataset and '
                             'seed in the plan')
        else:
            needs.append(where[s['dataset'], s['seed']])
    return needs


def configure_target(cfg, spec: Dict) -> None:
    """Make a DynOPool toy config (in place) the ``target`` run of ``spec``
    (its ``target_gmacs``) or its ``target_fixfinal`` retrain (its
    ``fixed_backbone``: learned scales, ``fixed=True``; no GMACs loss).

    Args:
        cfg (Config): A DynOPool toy config (changed in place).
        spec (dict): The run's spec.
    """
    from mmdynopool.engine import gmacs_loss_hook, gmacs_loss_hooks
    if spec['model'] == 'target':
        gmacs_loss_hook(cfg)['target_gmacs'] = float(spec['target_gmacs'])
    elif spec['model'] == 'target_fixfinal':
        if 'fixed_backbone' not in spec:
            raise ValueError('a target_fixfinal spec needs fixed_backbone '
                             "(its target run's learned shape)")
        cfg.model.backbone.update(spec['fixed_backbone'])
        gmacs_loss_hooks(cfg, remove=True)
