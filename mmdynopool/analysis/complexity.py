"""GMACs, parameters and resizing cost of a model at its current shape.

Counting convention (:func:`complexity_report`): GMACs are
multiply-accumulates of one image, counted by
``torch.utils.flop_counter.FlopCounterMode`` (its FLOPs / 2) through
:func:`mmdynopool.engine.module_flops`, the same pass the GMACs loss counts
with. It counts convolutions and matrix products; for the resizing operators
it does not count, handles are registered here:

* bilinear interpolation / ``grid_sample``: 4 MACs per output value (the
  weighted sum of four neighbours);
* ``max_pool2d`` / ``avg_pool2d``: ``k*k - 1`` operations per output value;
* DynOPool's op (``mmdynopool::dynopool_forward``): four bilinear queries
  and their 3-way aggregation per output value.

So a DynOPool output value costs ``4 * 4 + 3 = 19`` operations, and the
resizing layers' share is reported apart from the conv/linear total (the
paper's Table C).
"""
import math
from typing import Dict, Optional, Sequence

import torch
from torch import nn

from .. import ops  # noqa: F401  (registers the op counted below)
from ..engine.gmacs import module_flops
from ..models.resizing import is_learnable_resizer
from ..utils.inspection import eval_mode
from .shapes import feature_map_sizes, format_layer_row, resizing_report

__all__ = [
    'complexity_report', 'format_complexity_report', 'config_complexity',
    'exact_config_gmacs', 'RESIZE_HANDLES'
]

aten = torch.ops.aten


def _numel(shape) -> int:
    return math.prod(shape)


def _bilinear_flops(*args, out_shape=None, **kwargs) -> int:
    return 2 * 4 * _numel(out_shape)  # FLOPs = 2 x MACs


def _pool_flops(*args, out_shape=None, **kwargs) -> int:
    kernel = args[1] if len(args) > 1 else kwargs.get('kernel_size', [2])
    kernel = list(kernel) * (2 // len(kernel))
    shape = out_shape[0] if isinstance(out_shape, (tuple, list)) and \
        isinstance(out_shape[0], (tuple, list, torch.Size)) else out_shape
    return 2 * (kernel[0] * kernel[1] - 1) * _numel(shape)


def _dynopool_flops(*args, out_shape=None, **kwargs) -> int:
    return 2 * (4 * 4 + 3) * _numel(out_shape[0])


RESIZE_HANDLES = {
    torch.ops.mmdynopool.dynopool_forward: _dynopool_flops,
    aten.upsample_bilinear2d: _bilinear_flops,
    aten.grid_sampler_2d: _bilinear_flops,
    aten.max_pool2d_with_indices: _pool_flops,
    aten.avg_pool2d: _pool_flops,
}


def complexity_report(model: nn.Module,
                      shape: Sequence[int],
                      forward=None,
                      backbone: Optional[nn.Module] = None) -> Dict:
    """GMACs, parameters, per-stage sizes and resizing-layer cost.

    Args:
        model (nn.Module): The whole model.
        shape (Sequence[int]): ``(H, W)`` of one input image.
        forward (callable, optional): How to run ``model`` on a tensor.
        backbone (nn.Module, optional): Whose outputs are the "stages".
            Default: ``model.backbone`` if present, else ``model``.

    Returns:
        dict: ``gmacs`` (conv + linear), ``resize_gmacs`` (DynOPool / Shape
        Adaptor layers, see the module docstring), ``params`` (M),
        ``resolutions`` (the input, then each distinct size a resizing layer
        produces, in order: the paper's "feature map sizes"), ``stages``
        (output ``(H, W)`` per backbone output) and ``layers``
        (:func:`resizing_report` rows).
    """
    backbone = backbone or getattr(model, 'backbone', model)
    param = next(model.parameters())
    x = torch.zeros(1, 3, *shape, device=param.device, dtype=param.dtype)
    counted = (nn.Conv2d, nn.Linear)
    with eval_mode(model):
        flops = module_flops(model, x, forward, RESIZE_HANDLES)
    names = dict(model.named_modules())
    macs = resize = 0.0
    for name, per_op in flops.items():
        m = names.get(name)
        if isinstance(m, counted):
            # A PooledConv2d's DynOPool runs inside it: its ops are not the
            # convolution's.
            macs += sum(v for op, v in per_op.items()
                        if op not in RESIZE_HANDLES)
        elif is_learnable_resizer(m):
            resize += sum(per_op.values())
    report = resizing_report(backbone, shape)
    return dict(
        gmacs=macs / 2e9,
        resize_gmacs=resize / 2e9,
        params=sum(p.numel() for p in model.parameters()) / 1e6,
        resolutions=feature_map_sizes(report, shape),
        stages=report['outputs'],
        layers=report['layers'])


def config_complexity(config: str,
                      shape: Sequence[int],
                      checkpoint: Optional[str] = None) -> Dict:
    """:func:`complexity_report` of a config's model, at the learned shape
    of ``checkpoint`` when given (its alphas are loaded).

    Args:
        config (str): Config file.
        shape (Sequence[int]): ``(H, W)`` of the input.
        checkpoint (str, optional): Its trained weights and alphas. Default:
            the initial shape.

    Returns:
        dict: :func:`complexity_report`'s result.
    """
    from ..utils import build_model_from_cfg
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f'shape must be (H, W) with two integers >= 1, got '
                         f'{shape!r}')
    _, model = build_model_from_cfg(config, checkpoint)
    return complexity_report(
        model, shape, forward=lambda t: model(t, mode='tensor'))


def exact_config_gmacs(cfg, input_size: Sequence[int], scope: str) -> float:
    """Exact conv + linear GMACs of a config's model (at its initial
    shape) on one ``input_size`` image
    (:func:`~mmdynopool.engine.cost_target.exact_gmacs`, what
    ``GMACsLossHook(target_gmacs=...)`` settles on), the model built in
    registry ``scope`` without touching the global RNG (so a seeded run
    that follows is unaffected).

    Args:
        cfg (Config): A config with ``model``.
        input_size (Sequence[int]): ``(H, W)``.
        scope (str): ``'mmseg'``, ``'mmpretrain'``, ...

    Returns:
        float: GMACs of one image.
    """
    from mmengine.registry import MODELS, init_default_scope

    from ..engine.cost_target import exact_gmacs
    init_default_scope(scope)
    with torch.random.fork_rng():
        model = MODELS.build(cfg.model)
    return exact_gmacs(
        model, tuple(input_size), forward=lambda t: model(t, mode='tensor'))


def format_complexity_report(r: Dict, title: str = '') -> str:
    """The report as text: totals, stage sizes, resizing layers.

    Args:
        r (dict): :func:`complexity_report`'s result.
        title (str): A first line. Default: none.

    Returns:
        str: The text.
    """
    share = 100 * r['resize_gmacs'] / max(r['gmacs'], 1e-12)
    lines = [
        title,
        f'GMACs (conv + linear): {r["gmacs"]:.4f}',
        f'resizing layers (DynOPool / Shape Adaptor): {r["resize_gmacs"]:.5f}'
        f' GMACs, {share:.2f}% of the above',
        f'parameters: {r["params"]:.3f} M',
        'feature map sizes: ' + ' '.join(f'[{h},{w}]'
                                         for h, w in r['resolutions']),
        'backbone outputs: ' + ' '.join(f'[{h},{w}]' for h, w in r['stages']),
        f'{"resizing layer":<40}{"type":<14}{"scale (h, w)":<18}'
        f'{"in":<12}out',
    ]
    lines += [format_layer_row(row) for row in r['layers']]
    return '\n'.join(line for line in lines if line)
