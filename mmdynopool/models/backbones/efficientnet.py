"""EfficientNet with DynOPool (DynOPool Sec. 5.4, Table 3)."""
from mmpretrain.models.backbones import EfficientNet
from mmpretrain.registry import MODELS
from torch import nn

from ..layers import PoolAfter
from .base import DynOPoolMixin

__all__ = ['DynOPoolEfficientNet']


@MODELS.register_module()
class DynOPoolEfficientNet(DynOPoolMixin, EfficientNet):
    """mmpretrain ``EfficientNet`` with DynOPool (rule B).

    The stem convolution and the strided convolution of every strided block
    (the depthwise conv of an ``InvertedResidual``, ``conv1`` of an
    ``EdgeResidual``) get stride 1, and a DynOPool runs right after their
    activation: five resizing layers for B0 (stem and the first blocks of
    stages 2, 3, 4 and 6), in ``dynopools`` (see :mod:`.base`).
    mmpretrain's convolutions pad "same" TF-style
    (``Conv2dAdaptivePadding``: ``ceil(H / 2)`` at stride 2), which is also
    what DynOPool's round-half-up size gives at scale 0.5, so the sizes at
    initialisation are the human model's on every input size.

    Args:
        arch (str): ``EfficientNet`` arch. Default: ``'b0'``.
        init_scales (float | Sequence, optional): One per strided conv, in
            forward order. Default: 0.5.
        dynopool_cfg (dict, optional): Extra ``DynOPool2d`` arguments.
        **kwargs: Passed to ``EfficientNet``.

    Example:
        >>> import torch
        >>> model = DynOPoolEfficientNet('b0')
        >>> len(model.dynopools), model(torch.rand(1, 3, 224, 224))[-1].shape
        (5, torch.Size([1, 1280, 7, 7]))
    """

    def __init__(self, arch: str = 'b0', *args, **kwargs) -> None:
        self._arch = arch  # for the error below; EfficientNet keeps no name
        super().__init__(arch, *args, **kwargs)

    def _insert_resizers(self):
        # The strided ConvModule of each block: the depthwise conv of an
        # InvertedResidual, the first (full) conv of an EdgeResidual.
        modules = [self.layers[0]] + [
            getattr(block, 'depthwise_conv', None) or block.conv1
            for layer in self.layers[1:-1] for block in layer
        ]
        strided = [m for m in modules if tuple(m.conv.stride) != (1, 1)]
        pools = self._make_pools([0.5] * len(strided), 'stem, strided blocks')
        for conv_module, pool in zip(strided, pools):
            conv_module.conv.stride = (1, 1)
            conv_module.activate = PoolAfter(conv_module.activate, pool)
        left = [
            n for n, m in self.named_modules()
            if isinstance(m, nn.Conv2d) and tuple(m.stride) != (1, 1)
        ]
        if left:
            raise ValueError(f'DynOPoolEfficientNet cannot convert arch='
                             f'{self._arch!r}: strided convs {left} are '
                             'neither a stem, an InvertedResidual depthwise '
                             'conv nor an EdgeResidual conv1')
        return pools, strided
