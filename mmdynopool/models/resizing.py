"""What counts as a resizing layer: the one definition every part uses.

* *Learnable* resizing layers (:data:`LEARNABLE_RESIZERS`): DynOPool and the
  Shape Adaptor, the modules that own an ``alpha``.
* *Fixed* resizing layers: pooling or convolution with a stride other than 1
  (global pooling is not one: it has no stride to learn).

Backbones, the converter, the hooks and the analysis tools all ask here.
"""
import contextvars
from typing import Optional, Tuple

import torch
from torch import nn

from .layers import DynOPool2d, PooledConv2d, ShapeAdaptor

__all__ = [
    'LEARNABLE_RESIZERS', 'is_learnable_resizer', 'is_strided', 'stride_of',
    'is_resizing_layer', 'resizer_scale', 'switch_to_deploy',
    'record_input_shape', 'current_input_shape'
]

#: ``(H, W)`` of the latest input a resizing backbone saw in this context:
#: what detection heads need to turn learned feature-map sizes into strides
#: (``mmdynopool.models.task_modules``).
_INPUT_SHAPE: contextvars.ContextVar = contextvars.ContextVar(
    'mmdynopool_input_shape', default=None)


def record_input_shape(x: torch.Tensor) -> None:
    """Remember ``x``'s ``(H, W)`` as the current input shape (called by
    every resizing backbone's forward; not while compiling or exporting,
    where the generators' configured strides are used).

    Args:
        x (Tensor): The backbone input, ``(N, C, H, W)``.
    """
    if not torch.compiler.is_compiling() and not torch.jit.is_tracing():
        _INPUT_SHAPE.set((int(x.shape[-2]), int(x.shape[-1])))


def current_input_shape() -> Optional[Tuple[int, int]]:
    """``(H, W)`` of the latest resizing-backbone input in this context (a
    thread or task), or None if no resizing backbone ran.

    Returns:
        tuple[int, int] | None: ``(H, W)``, or None.
    """
    return _INPUT_SHAPE.get()


LEARNABLE_RESIZERS = (DynOPool2d, ShapeAdaptor)


def is_learnable_resizer(m: nn.Module) -> bool:
    """A DynOPool or a Shape Adaptor.

    Args:
        m (nn.Module): Any module.

    Returns:
        bool: Whether ``m`` is one.
    """
    return isinstance(m, LEARNABLE_RESIZERS)


def stride_of(m: nn.Module) -> Tuple[int, int]:
    """``(s_h, s_w)`` of a pooling or convolution layer.

    Args:
        m (nn.Module): A pooling or convolution layer.

    Returns:
        tuple[int, int]: The stride.
    """
    s = m.stride
    return tuple(s) if isinstance(s, (tuple, list)) else (s, s)


def is_strided(m: nn.Module) -> bool:
    """A pooling or convolution layer with a stride other than 1 (a
    :class:`PooledConv2d` resizes through its pool, which is counted on its
    own).

    Args:
        m (nn.Module): Any module.

    Returns:
        bool: Whether ``m`` is one.
    """
    return (isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.Conv2d))
            and not isinstance(m, PooledConv2d) and stride_of(m) != (1, 1))


def is_resizing_layer(m: nn.Module) -> bool:
    """A learnable resizing layer or a fixed (strided) one.

    Args:
        m (nn.Module): Any module.

    Returns:
        bool: Whether ``m`` is one.
    """
    return is_learnable_resizer(m) or is_strided(m)


def resizer_scale(m: nn.Module) -> Tuple[float, float]:
    """``(r_h, r_w)`` of a resizing layer: its learned scale, or one over its
    stride.

    Args:
        m (nn.Module): A resizing layer.

    Returns:
        tuple[float, float]: ``(r_h, r_w)``.
    """
    if is_learnable_resizer(m):
        s = m.scale  # a Shape Adaptor scales both axes alike
        s = tuple(s) if isinstance(s, (tuple, list)) else (s, s)
    else:
        s = tuple(1 / v for v in stride_of(m))
    return tuple(float(v) for v in s)


def switch_to_deploy(model: nn.Module) -> int:
    """Put every learnable resizing layer of ``model`` into its deployment
    form (``switch_to_deploy()``, mmpretrain's convention): learned sizes
    become integer expressions of the input size and the layers plain ATen
    ops, for ``torch.export`` and ONNX. Irreversible; checkpoint keys stay.

    Args:
        model (nn.Module): Any model; switched in place.

    Returns:
        int: How many layers were switched (each shared layer once).

    Example:
        >>> import torch
        >>> from mmdynopool.models import DynOPoolVGG
        >>> model = DynOPoolVGG(11, out_indices=(4, ))
        >>> switch_to_deploy(model)
        5
        >>> model(torch.rand(1, 3, 32, 32))[0].shape
        torch.Size([1, 512, 2, 2])
    """
    done = set()
    for m in model.modules():
        if is_learnable_resizer(m) and id(m) not in done and hasattr(
                m, 'switch_to_deploy') and not getattr(m, 'deploy', False):
            m.switch_to_deploy()
            done.add(id(m))
    return len(done)
