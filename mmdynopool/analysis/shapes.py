"""What a model's resizing layers do to a given input size.

:func:`resizing_report` runs one forward pass and lists every resizing layer
(DynOPool, Shape Adaptor, strided pooling and convolution) with its current
scale and the sizes it maps, plus the size of every feature map the model
returns: the paper's "feature map sizes" column.
"""
from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn

from ..models.convert import is_strided, stride_of
from ..models.layers import DynOPool2d, ShapeAdaptor

__all__ = ['resizing_report', 'format_resizing_report']


def _is_resizing(m: nn.Module) -> bool:
    return isinstance(m, (DynOPool2d, ShapeAdaptor)) or is_strided(m)


def _scale(m: nn.Module):
    if isinstance(m, (DynOPool2d, ShapeAdaptor)):
        return m.scale
    return tuple(1 / s for s in stride_of(m))


def _sizes(out) -> List[Tuple[int, int]]:
    if isinstance(out, torch.Tensor):
        return [tuple(out.shape[-2:])] if out.dim() == 4 else []
    if isinstance(out, (list, tuple)):
        return [s for o in out for s in _sizes(o)]
    return []


@torch.no_grad()
def resizing_report(model: nn.Module,
                    input_size: Sequence[int],
                    in_channels: int = 3) -> Dict[str, list]:
    """Resizing layers and output feature-map sizes for one input size.

    Args:
        model (nn.Module): A backbone (or anything taking ``(N, C, H, W)``).
        input_size (Sequence[int]): ``(H, W)``.
        in_channels (int): Channels of the dummy input. Default: 3.

    Returns:
        dict: ``layers``: one row per (layer, input size) with ``name``,
        ``type``, ``scale`` (``(r_h, r_w)``), ``in`` and ``out`` sizes, in
        call order (a shared layer appears once per distinct input);
        ``outputs``: the ``(H, W)`` of every returned feature map.
    """
    rows, seen, handles = [], set(), []
    param = next(model.parameters(), None)
    device = param.device if param is not None else 'cpu'

    def hook(name):

        def fn(m, args, out):
            key = (name, tuple(args[0].shape[-2:]))
            if key in seen:
                return
            seen.add(key)
            scale = _scale(m)
            if not isinstance(scale, tuple):
                scale = (scale, scale)
            rows.append(
                dict(
                    name=name,
                    type=type(m).__name__,
                    scale=tuple(float(s) for s in scale),
                    **{
                        'in': key[1],
                        'out': tuple(out.shape[-2:])
                    }))

        return fn

    learnable = [
        name + '.' for name, m in model.named_modules()
        if isinstance(m, (DynOPool2d, ShapeAdaptor))
    ]
    for name, m in model.named_modules():
        # A Shape Adaptor's own branches are part of it, not extra layers.
        if _is_resizing(m) and not any(name.startswith(p) for p in learnable):
            handles.append(m.register_forward_hook(hook(name)))
    was_training = model.training
    model.eval()
    try:
        out = model(torch.zeros(1, in_channels, *input_size, device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return dict(layers=rows, outputs=_sizes(out))


def format_resizing_report(report: Dict[str, list]) -> str:
    """A plain-text table of :func:`resizing_report`'s result."""
    lines = [f'{"layer":<40}{"type":<14}{"scale (h, w)":<18}{"in":<12}out']
    for r in report['layers']:
        scale = '({:.3f}, {:.3f})'.format(*r['scale'])
        lines.append(f'{r["name"]:<40}{r["type"]:<14}{scale:<18}'
                     f'{str(r["in"]):<12}{r["out"]}')
    lines.append('outputs: ' + ', '.join(f'{h}x{w}'
                                         for h, w in report['outputs']))
    return '\n'.join(lines)
