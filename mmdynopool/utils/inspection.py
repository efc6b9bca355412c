"""Looking at a model without changing it: evaluation mode for a moment, and
what its resizing layers do to one input size.

Both the training machinery (:class:`~mmdynopool.engine.ShapeLoggingHook`,
:class:`~mmdynopool.engine.GMACsCounter`) and the analysis tools need these,
so they live below both.
"""
from contextlib import contextmanager
from typing import Dict, Iterator, List, Sequence, Tuple

import torch
from torch import nn

from ..models.resizing import (is_learnable_resizer, is_resizing_layer,
                               resizer_scale)

__all__ = ['eval_mode', 'resizing_report', 'unwrap_model']


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside a DDP / FSDP wrapper (mmengine's), or ``model``.

    Args:
        model (nn.Module): A model, wrapped or not.

    Returns:
        nn.Module: The inner model.
    """
    from mmengine.model import is_model_wrapper
    return model.module if is_model_wrapper(model) else model


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in evaluation mode for the ``with`` block, then restore
    the mode it had (also when the block raises).

    Args:
        model (nn.Module): The model.

    Yields:
        nn.Module: ``model``, in evaluation mode.

    Example:
        >>> from torch import nn
        >>> from mmdynopool.utils.inspection import eval_mode
        >>> model = nn.BatchNorm2d(3).train()
        >>> with eval_mode(model):
        ...     print(model.training)
        False
        >>> model.training
        True
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


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

    One forward pass of a zero ``(1, in_channels, H, W)`` input in
    evaluation mode (the model's mode is restored afterwards) lists every
    resizing layer: DynOPool, Shape Adaptor, strided pooling and
    convolution.

    Args:
        model (nn.Module): A backbone (or anything taking ``(N, C, H, W)``).
        input_size (Sequence[int]): ``(H, W)``.
        in_channels (int): Channels of the dummy input. Default: 3.

    Returns:
        dict: ``layers``: one row per (layer, input size) with ``name``,
        ``type``, ``scale`` (``(r_h, r_w)``), ``in`` and ``out`` sizes, in
        call order (a shared layer appears once per distinct input);
        ``outputs``: the ``(H, W)`` of every returned feature map.

    Example:
        >>> from torch import nn
        >>> from mmdynopool.utils.inspection import resizing_report
        >>> model = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.MaxPool2d(2))
        >>> report = resizing_report(model, (32, 48))
        >>> [(r['name'], r['in'], r['out']) for r in report['layers']]
        [('0', (32, 48), (16, 24)), ('1', (16, 24), (8, 12))]
        >>> report['outputs']
        [(8, 12)]
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
            rows.append({
                'name': name,
                'type': type(m).__name__,
                'scale': resizer_scale(m),
                'in': key[1],
                'out': tuple(out.shape[-2:])
            })

        return fn

    learnable = [
        name + '.' for name, m in model.named_modules()
        if is_learnable_resizer(m)
    ]
    for name, m in model.named_modules():
        # A Shape Adaptor's own branches are part of it, not extra layers.
        if is_resizing_layer(m) and not any(
                name.startswith(p) for p in learnable):
            handles.append(m.register_forward_hook(hook(name)))
    try:
        with eval_mode(model):
            out = model(
                torch.zeros(1, in_channels, *input_size, device=device))
    finally:
        for h in handles:
            h.remove()
    return dict(layers=rows, outputs=_sizes(out))
