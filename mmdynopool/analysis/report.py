"""Complexity reports, shape plots and "Fix (Final)" export of a model.

Counting convention (``complexity_report``): GMACs are multiply-accumulates
of one image, counted by ``torch.utils.flop_counter.FlopCounterMode``
(its FLOPs / 2). It counts convolutions and matrix products; for the
resizing operators it does not count, handles are registered here:

* bilinear interpolation / ``grid_sample``: 4 MACs per output value (the
  weighted sum of four neighbours);
* ``max_pool2d`` / ``avg_pool2d``: ``k*k - 1`` operations per output value.

So a DynOPool output value costs ``4 * 4 + 3 = 19`` operations, and the
resizing layers' share is reported apart from the conv/linear total (the
paper's Table C).
"""
import copy
import math
from typing import Dict, Optional, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..models.layers import DynOPool2d, ShapeAdaptor
from .shapes import resizing_report

__all__ = ['complexity_report', 'format_complexity_report', 'plot_shapes',
           'export_fixed_config']

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


RESIZE_HANDLES = {
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
    forward = model if forward is None else forward
    backbone = backbone or getattr(model, 'backbone', model)
    param = next(model.parameters())
    x = torch.zeros(1, 3, *shape, device=param.device, dtype=param.dtype)
    counted = (nn.Conv2d, nn.Linear)
    learnable = (DynOPool2d, ShapeAdaptor)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False, custom_mapping=RESIZE_HANDLES)
    try:
        with counter, torch.no_grad():
            forward(x)
    finally:
        model.train(was_training)
    names = {n: m for n, m in model.named_modules()}
    macs = resize = 0.0
    for key, ops in counter.get_flop_counts().items():
        name = key.split('.', 1)[1] if '.' in key else ''
        m = names.get(name)
        if isinstance(m, counted):
            # A PooledConv2d's DynOPool runs inside it: its ops are not the
            # convolution's.
            macs += sum(v for op, v in ops.items() if op not in RESIZE_HANDLES)
        elif isinstance(m, learnable):
            resize += sum(ops.values())
    report = resizing_report(backbone, shape)
    resolutions = [tuple(shape)]
    for row in report['layers']:
        if row['out'] not in resolutions:
            resolutions.append(row['out'])
    return dict(
        gmacs=macs / 2e9,
        resize_gmacs=resize / 2e9,
        params=sum(p.numel() for p in model.parameters()) / 1e6,
        resolutions=resolutions,
        stages=report['outputs'],
        layers=report['layers'])


def format_complexity_report(r: Dict, title: str = '') -> str:
    """The report as text: totals, stage sizes, resizing layers."""
    share = 100 * r['resize_gmacs'] / max(r['gmacs'], 1e-12)
    lines = [
        title,
        f'GMACs (conv + linear): {r["gmacs"]:.4f}',
        f'resizing layers (DynOPool / Shape Adaptor): {r["resize_gmacs"]:.5f}'
        f' GMACs, {share:.2f}% of the above',
        f'parameters: {r["params"]:.3f} M',
        'feature map sizes: ' + ' '.join(f'[{h},{w}]'
                                         for h, w in r['resolutions']),
        'backbone outputs: ' + ' '.join(f'[{h},{w}]'
                                        for h, w in r['stages']),
        f'{"resizing layer":<40}{"type":<14}{"scale (h, w)":<18}'
        f'{"in":<12}out',
    ]
    for row in r['layers']:
        scale = '({:.3f}, {:.3f})'.format(*row['scale'])
        lines.append(f'{row["name"]:<40}{row["type"]:<14}{scale:<18}'
                     f'{str(row["in"]):<12}{row["out"]}')
    return '\n'.join(line for line in lines if line)


def plot_shapes(stage_sizes: Sequence[Sequence[Sequence[int]]],
                labels: Sequence[str], out_file: str,
                subtitles: Optional[Sequence[str]] = None) -> str:
    """Draw feature-map sizes per stage as rectangles (the DynOPool paper's
    Fig. 4): one row per model, width and height to scale, annotated.

    Args:
        stage_sizes: Per model, the ``(H, W)`` of every stage.
        labels: One name per model.
        out_file (str): PNG path.
        subtitles: Optional extra text per model (e.g. GMACs).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    biggest = max(max(max(h, w) for h, w in sizes) for sizes in stage_sizes)
    n_stages = max(len(s) for s in stage_sizes)
    fig, axes = plt.subplots(
        len(stage_sizes), 1, figsize=(2.2 * n_stages + 1,
                                      2.6 * len(stage_sizes)), squeeze=False)
    for row, (ax, sizes, label) in enumerate(
            zip(axes[:, 0], stage_sizes, labels)):
        for i, (h, w) in enumerate(sizes):
            sh, sw = h / biggest, w / biggest
            x0 = i * 1.2 + (1 - sw) / 2
            ax.add_patch(Rectangle((x0, (1 - sh) / 2), sw, sh,
                                   facecolor='tab:blue', alpha=0.35,
                                   edgecolor='tab:blue'))
            ax.text(i * 1.2 + 0.5, -0.12, f'{h}x{w}', ha='center',
                    va='top', fontsize=9)
        ax.set_xlim(-0.1, n_stages * 1.2)
        ax.set_ylim(-0.3, 1.05)
        ax.set_aspect('equal')
        ax.axis('off')
        title = label if not subtitles else f'{label}  ({subtitles[row]})'
        ax.set_title(title, fontsize=10, loc='left')
    fig.tight_layout()
    fig.savefig(out_file, dpi=100)
    plt.close(fig)
    return out_file


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
    adaptors = list(getattr(backbone, 'shape_adaptors', []))
    if adaptors:
        return _export_fixed_shape_adaptors(cfg, adaptors)
    pools = list(getattr(backbone, 'dynopools', []))
    if not pools:
        raise ValueError('export_fixed_config needs a DynOPool backbone '
                         '(with a `dynopools` list) or a Shape Adaptor one '
                         '(`shape_adaptors`); got '
                         f'{type(backbone).__name__}')
    new = copy.deepcopy(cfg)
    # 1 / alpha in float64 keeps alpha exact to an ulp once re-inverted.
    new.model.backbone.init_scales = [
        tuple(1 / float(a) for a in p.alpha.detach().double()) for p in pools
    ]
    dyno_cfg = dict(new.model.backbone.get('dynopool_cfg') or {})
    dyno_cfg['fixed'] = True
    new.model.backbone.dynopool_cfg = dyno_cfg
    new.custom_hooks = [
        h for h in new.get('custom_hooks', [])
        if h.get('type') != 'GMACsLossHook'
    ]
    return new


def _export_fixed_shape_adaptors(cfg, adaptors):
    from ..models.layers import shape_adaptor_penalty
    from ..utils.model import shape_adaptor_limit

    # The unpenalised factors s(a_i), whatever penalty the model holds.
    rho = shape_adaptor_penalty([sa.scale / sa.penalty for sa in adaptors],
                                *shape_adaptor_limit(cfg))
    new = copy.deepcopy(cfg)
    new.model.backbone.init_alphas = [float(sa.alpha) for sa in adaptors]
    new.model.backbone.adaptor_cfg = dict(fixed=True, penalty=rho)
    new.custom_hooks = [h for h in new.get('custom_hooks', [])
                        if h.get('type') != 'ShapeAdaptorHook']
    return new
