"""What counts as a resizing layer: the one definition every part uses.

* *Learnable* resizing layers (:data:`LEARNABLE_RESIZERS`): DynOPool and the
  Shape Adaptor, the modules that own an ``alpha``.
* *Fixed* resizing layers: pooling or convolution with a stride other than 1
  (global pooling is not one: it has no stride to learn).

Backbones, the converter, the hooks and the analysis tools all ask here.
"""
from typing import Tuple

from torch import nn

from .layers import DynOPool2d, PooledConv2d, ShapeAdaptor

__all__ = [
    'LEARNABLE_RESIZERS', 'is_learnable_resizer', 'is_strided', 'stride_of',
    'is_resizing_layer', 'resizer_scale', 'switch_to_deploy'
]

LEARNABLE_RESIZERS = (DynOPool2d, ShapeAdaptor)


def is_learnable_resizer(m: nn.Module) -> bool:
    """A DynOPool or a Shape Adaptor."""
    return isinstance(m, LEARNABLE_RESIZERS)


def stride_of(m: nn.Module) -> Tuple[int, int]:
    """``(s_h, s_w)`` of a pooling or convolution layer."""
    s = m.stride
    return tuple(s) if isinstance(s, (tuple, list)) else (s, s)


def is_strided(m: nn.Module) -> bool:
    """A pooling or convolution layer with a stride other than 1 (a
    :class:`PooledConv2d` resizes through its pool, which is counted on its
    own)."""
    return (isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.Conv2d))
            and not isinstance(m, PooledConv2d) and stride_of(m) != (1, 1))


def is_resizing_layer(m: nn.Module) -> bool:
    """A learnable resizing layer or a fixed (strided) one."""
    return is_learnable_resizer(m) or is_strided(m)


def resizer_scale(m: nn.Module) -> Tuple[float, float]:
    """``(r_h, r_w)`` of a resizing layer: its learned scale, or one over its
    stride."""
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
