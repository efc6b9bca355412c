"""Narrow VGGs for CPU-scale experiments (the toy studies of DynOPool Sec. 3).

mmpretrain's ``VGG`` fixes its widths at ``64 * 2**i`` (capped at 512). The
classes here are that ``VGG`` (and its DynOPool / Shape Adaptor versions)
with every width multiplied by ``widen_factor``, as mmpretrain's MobileNetV2
does: same layers, same order, same module names (so a state dict of a slim
model has the keys of the full one, with narrower tensors), conv-BN-ReLU
stages separated by 2x max-pools (or their learnable replacements).
"""
from mmcv.cnn import ConvModule, build_norm_layer
from mmpretrain.models.backbones import VGG
from mmpretrain.registry import MODELS
from torch import nn

from .classification import DynOPoolVGG
from .shape_adaptor import ShapeAdaptorVGG

__all__ = ['SlimVGG', 'DynOPoolSlimVGG', 'ShapeAdaptorSlimVGG']


class _SlimMixin:
    """Rebuilds every conv / norm of a built VGG at ``widen_factor`` width.

    Only the ``conv`` and norm children of each ``ConvModule`` are replaced,
    so resizing layers inserted by the parent (DynOPool, Shape Adaptor
    wrappers around the activation) stay where they are.
    """

    def __init__(self, depth: int, *args, widen_factor: float = 1.0,
                 **kwargs) -> None:
        if not 0 < widen_factor <= 1:
            raise ValueError(f'widen_factor must be in (0, 1], got '
                             f'{widen_factor!r}')
        super().__init__(depth, *args, **kwargs)
        self.widen_factor = widen_factor
        in_channels = 3
        for m in getattr(self, self.module_name).modules():
            if not isinstance(m, ConvModule):
                continue
            old = m.conv
            out_channels = max(1, int(round(old.out_channels * widen_factor)))
            m.conv = nn.Conv2d(
                in_channels, out_channels, old.kernel_size, old.stride,
                old.padding, old.dilation, bias=old.bias is not None)
            if m.with_norm:
                setattr(m, m.norm_name,
                        build_norm_layer(m.norm_cfg, out_channels)[1])
            in_channels = out_channels
        self.out_channels = in_channels


@MODELS.register_module()
class SlimVGG(_SlimMixin, VGG):
    """mmpretrain ``VGG`` with widths ``widen_factor * 64 * 2**i``.

    Args:
        depth (int): 11, 13, 16 or 19.
        widen_factor (float): Width multiplier in (0, 1]. Default: 1.0.
        **kwargs: Passed to ``VGG`` (use ``num_classes=-1``: the classifier
            of ``VGG`` expects 512 * 7 * 7 inputs).

    Example:
        >>> import torch
        >>> model = SlimVGG(11, widen_factor=0.125, norm_cfg=dict(type='BN'),
        ...                 with_last_pool=False, out_indices=(4, ))
        >>> model(torch.rand(1, 3, 32, 32))[0].shape
        torch.Size([1, 64, 2, 2])
    """


@MODELS.register_module()
class DynOPoolSlimVGG(_SlimMixin, DynOPoolVGG):
    """:class:`DynOPoolVGG` (every max-pool a DynOPool) at ``widen_factor``.

    Args:
        depth (int): 11, 13, 16 or 19.
        widen_factor (float): Width multiplier in (0, 1]. Default: 1.0.
        **kwargs: Passed to :class:`DynOPoolVGG` (``init_scales``,
            ``dynopool_cfg``, ...).
    """


@MODELS.register_module()
class ShapeAdaptorSlimVGG(_SlimMixin, ShapeAdaptorVGG):
    """:class:`ShapeAdaptorVGG` at ``widen_factor``.

    Args:
        depth (int): 11, 13, 16 or 19.
        widen_factor (float): Width multiplier in (0, 1]. Default: 1.0.
        **kwargs: Passed to :class:`ShapeAdaptorVGG` (``input_size``,
            ``d_last``, ``d_out``, ``num_adaptors``, ...).
    """
