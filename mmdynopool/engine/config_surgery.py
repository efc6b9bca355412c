"""Config changes that the tools and the studies make; each returns a
changed copy and leaves the config passed in as it was.

* :func:`set_input_resolution`: the human model trained at another input
  resolution (the DynOPool paper's Fig. 5);
* :func:`export_fixed_config`: "Fix (Final)", a learned shape retrained
  frozen (Shape Adaptor, Table 4), and :func:`export_fixed_config_file`,
  which writes it as a config inheriting the original one.

The GMACs loss's own config helpers (:func:`gmacs_loss_hooks`,
:func:`gmacs_loss_hook`, :func:`set_gmacs_loss_weight`) live beside the
hook, in :mod:`mmdynopool.engine.hooks.gmacs_loss_hook`.
"""
import copy
import math
import os
import os.path as osp
from typing import Dict, Sequence

from mmengine.config import Config
from torch import nn

from ..models.layers import DynOPool2d, ShapeAdaptor, shape_adaptor_penalty
from ..utils.model import shape_adaptor_limit
from .hooks.gmacs_loss_hook import gmacs_loss_hooks

__all__ = [
    'set_input_resolution', 'export_fixed_config', 'export_fixed_config_file'
]


def set_input_resolution(cfg: Config, size: Sequence[int]) -> Config:
    """A copy of ``cfg`` whose train, val and test images are resized to
    ``size``: an mmcv ``Resize`` right before the final ``Pack*`` transform
    of each pipeline (after any crop).

    Args:
        cfg (Config): A training config.
        size (Sequence[int]): ``(H, W)``, both >= 1.

    Returns:
        Config: The changed copy.
    """
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


def export_fixed_config(cfg: Config, model: nn.Module) -> Config:
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

    Args:
        cfg (Config): The config ``model`` was built from.
        model (nn.Module): The trained model (or its backbone).

    Returns:
        Config: The changed copy.
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
    """Write :func:`export_fixed_config` of ``config``'s model with
    ``checkpoint``'s learned alphas as a config file that inherits
    ``config`` (``_base_``, as a path relative to ``out_file``'s folder)
    and overrides only what changed: the backbone's learned
    ``init_scales`` / ``init_alphas``, ``fixed=True`` in its
    ``dynopool_cfg`` / ``adaptor_cfg``, and ``custom_hooks`` without the
    GMACs loss or the Shape Adaptor hook.

    Args:
        config (str): The trained model's config file.
        checkpoint (str): Its checkpoint (must hold every learned alpha).
        out_file (str): The config file to write.

    Returns:
        Config: The exported config (what ``Config.fromfile(out_file)``
        builds).
    """
    from ..utils import build_model_from_cfg
    from ..utils.model import load_weights
    cfg, model = build_model_from_cfg(config)
    missing = [
        k for k in load_weights(model, checkpoint) if k.endswith('.alpha')
    ]
    if missing:
        # A human model's checkpoint (or another network's) loads without
        # them and would export the initial shape as the learned one.
        raise ValueError(
            f'checkpoint {checkpoint!r} has no learned alpha for '
            f'{", ".join(missing[:5])}' +
            (f' (+{len(missing) - 5} more)' if len(missing) > 5 else '') +
            f': it is not a trained checkpoint of {config!r}')
    fixed = export_fixed_config(cfg, model)
    changes = _overrides(cfg.to_dict(), fixed.to_dict())
    out_dir = osp.dirname(osp.abspath(out_file))
    os.makedirs(out_dir, exist_ok=True)
    base = osp.relpath(osp.abspath(config), out_dir)
    lines = [
        '# Fix (Final): the learned shape of', f'#   {checkpoint}',
        '# frozen (tools/analysis/export_fixed.py); the rest is',
        f'#   {config}', f'_base_ = [{base!r}]', ''
    ]
    lines += [f'{k} = {_python(v)}' for k, v in changes.items()]
    with open(out_file, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    return Config.fromfile(out_file)


def _overrides(old: Dict, new: Dict) -> Dict:
    """What ``new`` changes in ``old``, as a config inheriting ``old``
    states it: changed values, and a dict that lost keys whole with
    ``_delete_=True`` (lists are always replaced whole by inheritance)."""
    out = {}
    for k, v in new.items():
        if k not in old:
            out[k] = v
        elif isinstance(v, dict) and isinstance(old[k], dict):
            if set(old[k]) - set(v):
                out[k] = dict(v, _delete_=True)
            else:
                sub = _overrides(old[k], v)
                if sub:
                    out[k] = sub
        elif v != old[k]:
            out[k] = v
    return out


def _python(v, indent: int = 0) -> str:
    """``v`` as Python source for a config file (floats round-trip)."""
    pad = ' ' * (indent + 4)
    if isinstance(v, dict):
        if not all(isinstance(k, str) and k.isidentifier() for k in v):
            items = [f'{k!r}: {_python(x, indent + 4)}' for k, x in v.items()]
            return '{' + ', '.join(items) + '}'
        return 'dict(' + ', '.join(f'{k}={_python(x, indent + 4)}'
                                   for k, x in v.items()) + ')'
    if isinstance(v, (list, tuple)):
        items = [_python(x, indent + 4) for x in v]
        if isinstance(v, tuple):
            return '(' + ', '.join(items) + (',)' if len(items) == 1 else ')')
        one_line = '[' + ', '.join(items) + ']'
        if len(one_line) + indent <= 70:
            return one_line
        return '[\n' + ''.join(f'{pad}{x},\n' for x in items) + \
            ' ' * indent + ']'
    return repr(v)


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
    new.custom_hooks = [
        h for h in new.get('custom_hooks', [])
        if h.get('type') != 'ShapeAdaptorHook'
    ]
    return new
