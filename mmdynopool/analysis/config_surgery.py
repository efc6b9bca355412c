"""Config surgery: the config changes the analysis and the tools make.

* :func:`gmacs_loss_hook`: the config's one ``GMACsLossHook`` (through
  :func:`mmdynopool.engine.gmacs_loss_hooks`, the one place that knows its
  config type);
* :func:`set_gmacs_loss_weight`: lambda of a run (a sweep point);
* :func:`set_input_resolution`: the human model trained at another input
  resolution (the DynOPool paper's Fig. 5);
* :func:`export_fixed_config`: "Fix (Final)", a learned shape retrained
  frozen (Shape Adaptor, Table 4); :func:`export_fixed_config_file` from a
  config and a checkpoint to a config file.

Each returns a changed copy; the config passed in is not modified.
"""
import copy
import math
from typing import Sequence

from mmengine.config import Config
from torch import nn

from ..engine.hooks.gmacs_loss_hook import gmacs_loss_hooks
from ..models.layers import DynOPool2d, ShapeAdaptor, shape_adaptor_penalty
from ..utils.model import shape_adaptor_limit

__all__ = [
    'gmacs_loss_hook', 'set_gmacs_loss_weight', 'set_input_resolution',
    'export_fixed_config', 'export_fixed_config_file'
]


def gmacs_loss_hook(cfg: Config) -> dict:
    """The one ``GMACsLossHook`` dict of ``cfg.custom_hooks`` (editing it
    edits ``cfg``); a ``ValueError`` when there is none or several.

    Example:
        >>> from mmengine.config import Config
        >>> from mmdynopool.analysis import gmacs_loss_hook
        >>> cfg = Config(dict(custom_hooks=[dict(
        ...     type='GMACsLossHook', loss_weight=0.1, input_size=(32, 32))]))
        >>> gmacs_loss_hook(cfg)['input_size']
        (32, 32)
    """
    hooks = gmacs_loss_hooks(cfg)
    if len(hooks) != 1:
        raise ValueError('the DynOPool config must have exactly one '
                         f'GMACsLossHook in custom_hooks, found {len(hooks)}')
    return hooks[0]


def set_gmacs_loss_weight(cfg: Config, loss_weight: float) -> Config:
    """A copy of ``cfg`` whose ``GMACsLossHook`` has ``loss_weight``."""
    if not loss_weight >= 0:
        raise ValueError(f'lambda (GMACsLossHook loss_weight) must be >= 0, '
                         f'got {loss_weight!r}')
    cfg = copy.deepcopy(cfg)
    gmacs_loss_hook(cfg)['loss_weight'] = float(loss_weight)
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


def export_fixed_config(cfg, model: nn.Module):
    """A copy of ``cfg`` whose backbone starts at ``model``'s learned
    shape, frozen: "Fix (Final)", retraining the learned shape from scratch
    (Shape Adaptor, Table 4).

    * DynOPool backbones: ``init_scales`` from the learned alphas,
      ``dynopool_cfg.fixed=True``; the GMACs loss is dropped (nothing left
      for it to move).
    * Shape Adaptor backbones: ``init_alphas`` from the learned alphas and
      ``adaptor_cfg=dict(fixed=True, penalty=rho)``, ``rho`` being the
      memory penalty of Eq. (8) that the config's ``ShapeAdaptorHook``
      (``input_size``, ``d_limit``) gives these alphas; the hook is
      dropped.
    """
    backbone = getattr(model, 'backbone', model)
    layers = list(getattr(backbone, 'dynopools', None) or [])
    _check_learned_alphas(model, layers)
    adaptors = [m for m in layers if isinstance(m, ShapeAdaptor)]
    if adaptors:
        return _export_fixed_shape_adaptors(cfg, adaptors)
    pools = [m for m in layers if isinstance(m, DynOPool2d)]
    if not pools:
        raise ValueError('export_fixed_config needs a DynOPool backbone '
                         'or a Shape Adaptor one (resizing layers in its '
                         f'`dynopools` list); got {type(backbone).__name__}')
    new = copy.deepcopy(cfg)
    # 1 / alpha in float64 keeps alpha exact to an ulp once re-inverted.
    new.model.backbone.init_scales = [
        tuple(1 / float(a) for a in p.alpha.detach().double()) for p in pools
    ]
    dyno_cfg = dict(new.model.backbone.get('dynopool_cfg') or {})
    dyno_cfg['fixed'] = True
    new.model.backbone.dynopool_cfg = dyno_cfg
    gmacs_loss_hooks(new, remove=True)
    return new


def export_fixed_config_file(config: str, checkpoint: str,
                             out_file: str) -> Config:
    """:func:`export_fixed_config` of ``config``'s model with
    ``checkpoint``'s learned alphas, written to ``out_file``.

    Returns:
        Config: The exported config.
    """
    from ..utils import build_model_from_cfg
    from ..utils.model import load_weights
    cfg, model = build_model_from_cfg(config)
    missing = [k for k in load_weights(model, checkpoint)
               if k.endswith('.alpha')]
    if missing:
        # A human model's checkpoint (or another network's) loads without
        # them and would export the initial shape as the learned one.
        raise ValueError(
            f'checkpoint {checkpoint!r} has no learned alpha for '
            f'{", ".join(missing[:5])}' +
            (f' (+{len(missing) - 5} more)' if len(missing) > 5 else '') +
            f': it is not a trained checkpoint of {config!r}')
    fixed = export_fixed_config(cfg, model)
    fixed.dump(out_file)
    return fixed


def _check_learned_alphas(model: nn.Module, layers) -> None:
    """Every alpha is finite, and a DynOPool's > 0 (``alpha = 1 / r``); a
    NaN or negative alpha used to be written as a NaN / negative scale."""
    names = {id(p): n for n, p in model.named_parameters()}
    for m in layers:
        values = m.alpha.detach().double().flatten().tolist()
        name = names.get(id(m.alpha), 'alpha')
        if isinstance(m, DynOPool2d) and not all(
                math.isfinite(v) and v > 0 for v in values):
            raise ValueError(f'{name} = {values} is no learned shape: a '
                             'DynOPool alpha (1 / scale) must be finite and '
                             '> 0')
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f'{name} = {values} is no learned shape: a '
                             'Shape Adaptor alpha must be finite')


def _export_fixed_shape_adaptors(cfg, adaptors):
    # The unpenalised factors s(a_i), whatever penalty the model holds.
    rho = shape_adaptor_penalty([sa.scale / sa.penalty for sa in adaptors],
                                *shape_adaptor_limit(cfg))
    new = copy.deepcopy(cfg)
    new.model.backbone.init_alphas = [float(sa.alpha) for sa in adaptors]
    new.model.backbone.adaptor_cfg = dict(fixed=True, penalty=rho)
    new.custom_hooks = [h for h in new.get('custom_hooks', [])
                        if h.get('type') != 'ShapeAdaptorHook']
    return new
