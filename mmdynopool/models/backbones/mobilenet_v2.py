"""MobileNetV2 with DynOPool or Shape Adaptors (mmpretrain ``MobileNetV2``),
and the human CIFAR MobileNetV2.

DynOPool (rule B, Appendix A.1): each strided 3x3 convolution (the stem and
the depthwise convolution of the first block of a strided layer) gets stride
1, and a DynOPool runs right after its activation, before any residual sum of
the following blocks.

Shape Adaptor (Sec. 3-4): every stride becomes 1; adaptors go after the stem
activation or after a chosen inverted residual block, whose residual
connection is then dropped (as in the authors' code).

Resizing layers: ``dynopools`` (see :mod:`.base`).
"""
import math
from numbers import Real

from mmpretrain.models.backbones import MobileNetV2
from mmpretrain.registry import MODELS
from torch import nn

from ..layers import PoolAfter
from .base import DynOPoolMixin, ShapeAdaptorMixin

__all__ = [
    'MobileNetV2_CIFAR', 'DynOPoolMobileNetV2', 'DynOPoolMobileNetV2_CIFAR',
    'ShapeAdaptorMobileNetV2'
]

# Layer 2 and the stem keep the resolution on 32x32 inputs, which leaves three
# down-sampling layers (the CIFAR MobileNetV2 of the Shape Adaptor paper).
_CIFAR_ARCH = [[1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 3, 2], [6, 64, 4, 2],
               [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]


class _WidenFactorMixin:
    """``widen_factor`` must be a number > 0 (mmpretrain builds a network of
    8-channel layers from 0 or a negative one without a word)."""

    def __init__(self, *args, **kwargs) -> None:
        wf = args[0] if args else kwargs.get('widen_factor', 1.0)
        if isinstance(wf, bool) or not isinstance(wf, Real):
            raise TypeError(f'widen_factor must be a number > 0, got {wf!r}')
        if not (math.isfinite(wf) and wf > 0):
            raise ValueError(f'widen_factor must be > 0, got {wf!r}')
        super().__init__(*args, **kwargs)


class _CIFARStemMixin:
    """The CIFAR layout: :data:`_CIFAR_ARCH` and a stride-1 stem."""
    arch_settings = _CIFAR_ARCH

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.conv1.conv.stride = (1, 1)


@MODELS.register_module()
class MobileNetV2_CIFAR(_WidenFactorMixin, _CIFARStemMixin, MobileNetV2):
    """The human MobileNetV2 for 32x32 inputs: stride-1 stem and layer 2, so
    32 -> 16 -> 8 -> 4 (three resizing layers).

    Example:
        >>> import torch
        >>> MobileNetV2_CIFAR()(torch.rand(1, 3, 32, 32))[-1].shape
        torch.Size([1, 1280, 4, 4])
    """


@MODELS.register_module()
class DynOPoolMobileNetV2(_WidenFactorMixin, DynOPoolMixin, MobileNetV2):
    """mmpretrain ``MobileNetV2`` with DynOPool (rule B).

    Args:
        init_scales (float | Sequence, optional): One per strided conv:
            ``[stem, strided layers...]`` (no stem on the CIFAR variant).
            Default: 0.5.
        dynopool_cfg (dict, optional): Extra ``DynOPool2d`` arguments.
        **kwargs: Passed to ``MobileNetV2``.

    Example:
        >>> import torch
        >>> model = DynOPoolMobileNetV2(widen_factor=0.25)
        >>> len(model.dynopools), model(torch.rand(1, 3, 64, 64))[-1].shape
        (5, torch.Size([1, 1280, 2, 2]))
    """
    stem_stride = 2

    def _insert_resizers(self):
        blocks = [getattr(self, n)[0] for n in self.layers[:-1]]
        convs = [b.conv[-2] for b in blocks if b.stride != 1]
        if self.stem_stride != 1:
            convs.insert(0, self.conv1)
        pools = self._make_pools([0.5] * len(convs), 'stem, strided layers')
        # DynOPool o ReLU6 o BN o Conv_1
        for conv_module, pool in zip(convs, pools):
            conv_module.conv.stride = (1, 1)
            conv_module.activate = PoolAfter(conv_module.activate, pool)
        for block in blocks:
            block.stride = 1
        return pools, convs


@MODELS.register_module()
class DynOPoolMobileNetV2_CIFAR(_CIFARStemMixin, DynOPoolMobileNetV2):
    """:class:`DynOPoolMobileNetV2` built on :class:`MobileNetV2_CIFAR`
    (three resizing layers)."""
    stem_stride = 1


@MODELS.register_module()
class ShapeAdaptorMobileNetV2(_WidenFactorMixin, ShapeAdaptorMixin,
                              MobileNetV2):
    """mmpretrain ``MobileNetV2`` with shape adaptors.

    Args:
        input_size (int): ``D_in``. Default: 32.
        d_last, d_out, num_adaptors, size_rounding, count_rounding,
            init_alphas, adaptor_cfg: See :class:`.base.ShapeAdaptorMixin`.
        **kwargs: Passed to ``MobileNetV2``.
    """

    def _insert_resizers(self):
        self.conv1.conv.stride = (1, 1)
        blocks = [b for name in self.layers[:-1] for b in getattr(self, name)]
        for block in blocks:
            block.conv[-2].conv.stride = (1, 1)  # the depthwise conv
            block.stride = 1
        positions, adaptors = self._make_adaptors(len(blocks) + 1)
        anchors = []
        for pos, sa in zip(positions, adaptors):
            if pos == 0:
                self.conv1.activate = PoolAfter(self.conv1.activate, sa)
                anchors.append(self.conv1)
            else:
                block = blocks[pos - 1]
                block.use_res_connect = False
                block.conv.append(PoolAfter(nn.Identity(), sa))
                anchors.append(block)
        return adaptors, anchors
