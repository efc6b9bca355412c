"""ResNet, ResNet_CIFAR, VGG and MobileNetV2 with DynOPool (Appendix A.1).

Rules of the paper, applied to mmpretrain's backbones after they are built so
every checkpoint key stays where the human design has it:

* ``Pooling_s -> DynOPool_s`` (rule A): the pooling module is replaced.
* ``ReLU o Conv_s -> DynOPool_s o ReLU o Conv_1`` (rule B): the strided conv
  gets stride 1 and the DynOPool runs on its (normalised, activated) output,
  i.e. in front of the next convolution (:class:`PooledConv2d`).
* ResNet: the main branch and the shortcut of a down-sampling block share one
  DynOPool (registered as ``layerN.0.dynopool``); the shortcut pools *before*
  its 1x1 convolution, which is cheaper and needs no activation. The ImageNet
  stem's ``conv(stride 2) + max-pool(stride 2)`` becomes ``conv(stride 1)`` and
  one DynOPool of initial scale 0.25 in place of the max-pool. On input
  sizes with ``H mod 4 == 1`` (e.g. 97) the human stem's two ceil
  roundings give one pixel more than ``round(H / 4)``.
"""
from typing import List, Optional

from mmpretrain.models.backbones import VGG, MobileNetV2, ResNet, ResNet_CIFAR
from mmpretrain.models.backbones.resnet import BasicBlock, Bottleneck
from mmpretrain.registry import MODELS
from mmseg.registry import MODELS as SEG_MODELS
from torch import nn

from ..layers import DynOPool2d, PoolAfter, PooledConv2d
from .utils import (FreezeResizersMixin, build_pools, check_frozen_stages,
                    parse_init_scales)

__all__ = [
    'DynOPoolResNet', 'DynOPoolResNet_CIFAR', 'DynOPoolVGG',
    'DynOPoolMobileNetV2', 'DynOPoolMobileNetV2_CIFAR', 'MobileNetV2_CIFAR'
]


def _set_stride_one(conv: nn.Conv2d) -> None:
    conv.stride = (1, 1)


def _convert_res_block(block: nn.Module, pool: DynOPool2d) -> None:
    """Move a ResNet block's down-sampling into ``pool`` (shared with the
    shortcut)."""
    if isinstance(block, Bottleneck):
        if block.conv1_stride != 1:  # caffe style: 1x1 conv is strided
            _set_stride_one(block.conv1)
            block.conv2 = PooledConv2d.from_conv(block.conv2, pool)
        else:
            _set_stride_one(block.conv2)
            block.conv3 = PooledConv2d.from_conv(block.conv3, pool)
        block.conv1_stride = block.conv2_stride = 1
    elif isinstance(block, BasicBlock):
        _set_stride_one(block.conv1)
        block.conv2 = PooledConv2d.from_conv(block.conv2, pool)
    else:
        raise TypeError(f'unsupported ResNet block {type(block).__name__}')
    block.stride = 1
    shortcut = block.downsample
    if isinstance(shortcut[0], nn.AvgPool2d):
        # avg_down (ResNetV1d): [AvgPool2d, conv1x1, norm]; the shared pool
        # takes the average pool's place (Identity keeps the indices).
        shortcut[0] = nn.Identity()
        shortcut[1] = PooledConv2d.from_conv(shortcut[1], pool)
    else:
        shortcut[0] = PooledConv2d.from_conv(shortcut[0], pool)
    block.add_module('dynopool', pool)


class _DynOPoolResNetMixin(FreezeResizersMixin):
    """Shared conversion of mmpretrain ``ResNet`` and ``ResNet_CIFAR``."""
    has_stem_pool = True

    def __init__(self, depth: int, *args, init_scales=None,
                 dynopool_cfg: Optional[dict] = None, **kwargs) -> None:
        if depth not in ResNet.arch_settings:
            raise KeyError(f'depth must be one of '
                           f'{sorted(ResNet.arch_settings)}, got {depth!r}')
        check_frozen_stages(kwargs.get('frozen_stages', -1),
                            kwargs.get('num_stages', 4))
        super().__init__(depth, *args, **kwargs)
        self._convert(init_scales, dynopool_cfg, self.has_stem_pool)
        self._freeze_stages()

    def _convert(self, init_scales, dynopool_cfg, has_stem_pool) -> None:
        strided = [
            name for name, s in zip(self.res_layers, self.strides) if s != 1
        ]
        defaults = ([0.25] if has_stem_pool else []) + [0.5] * len(strided)
        order = ('stem, ' if has_stem_pool else '') + ', '.join(strided)
        if init_scales is None:
            init_scales = defaults
        scales = parse_init_scales(init_scales, len(defaults), order)
        pools = build_pools(scales, dynopool_cfg)
        if has_stem_pool:
            stem_conv = self.stem[0].conv if self.deep_stem else self.conv1
            _set_stride_one(stem_conv)
            self.maxpool = pools.pop(0)
            # The stem pool follows the stem (frozen from frozen_stages 0).
            self._resizer_anchors = [
                (self.maxpool, self.stem if self.deep_stem else self.conv1)
            ]
        for name, pool in zip(strided, pools):
            _convert_res_block(getattr(self, name)[0], pool)

    @property
    def dynopools(self) -> List[DynOPool2d]:
        """The resizing layers in forward order."""
        return [m for m in self.modules() if isinstance(m, DynOPool2d)]


@MODELS.register_module()
@SEG_MODELS.register_module()
class DynOPoolResNet(_DynOPoolResNetMixin, ResNet):
    """mmpretrain ``ResNet`` with DynOPool resizing (rules A/B, shared alpha).

    Also registered in mmseg's ``MODELS`` (it returns the same tuple of
    stage features as mmseg's backbones).

    Args:
        depth (int): 18, 34, 50, 101 or 152.
        init_scales (float | Sequence, optional): Initial scale per resizing
            layer, ordered ``[stem, strided stages...]``. Default: stem 0.25
            (its conv + max-pool pair), 0.5 elsewhere.
        dynopool_cfg (dict, optional): Extra ``DynOPool2d`` arguments.
        **kwargs: Passed to ``ResNet``.

    Example:
        >>> import torch
        >>> model = DynOPoolResNet(18, out_indices=(0, 1, 2, 3))
        >>> [tuple(o.shape[-2:]) for o in model(torch.rand(1, 3, 64, 64))]
        [(16, 16), (8, 8), (4, 4), (2, 2)]
    """


@MODELS.register_module()
class DynOPoolResNet_CIFAR(_DynOPoolResNetMixin, ResNet_CIFAR):
    """mmpretrain ``ResNet_CIFAR`` (3x3 stride-1 stem) with DynOPool.

    Args:
        depth (int): 18, 34, 50, 101 or 152.
        init_scales (float | Sequence, optional): One per strided stage.
            Default: 0.5.
        dynopool_cfg (dict, optional): Extra ``DynOPool2d`` arguments.
        **kwargs: Passed to ``ResNet_CIFAR``.
    """
    has_stem_pool = False


@MODELS.register_module()
class DynOPoolVGG(FreezeResizersMixin, VGG):
    """mmpretrain ``VGG`` with every max-pool replaced by DynOPool (rule A).

    Args:
        depth (int): 11, 13, 16 or 19.
        init_scales (float | Sequence, optional): One per max-pool.
            Default: 0.5.
        dynopool_cfg (dict, optional): Extra ``DynOPool2d`` arguments.
        **kwargs: Passed to ``VGG``.
    """

    def __init__(self, depth: int, *args, init_scales=None,
                 dynopool_cfg: Optional[dict] = None, **kwargs) -> None:
        if depth not in VGG.arch_settings:
            raise KeyError(f'depth must be one of {sorted(VGG.arch_settings)}'
                           f', got {depth!r}')
        check_frozen_stages(kwargs.get('frozen_stages', -1),
                            kwargs.get('num_stages', 5))
        super().__init__(depth, *args, **kwargs)
        features = getattr(self, self.module_name)
        idx = [i for i, m in enumerate(features)
               if isinstance(m, nn.MaxPool2d)]
        scales = parse_init_scales(init_scales, len(idx), 'one per max-pool')
        for i, pool in zip(idx, build_pools(scales, dynopool_cfg)):
            features[i] = pool  # inside its stage: frozen with it
        self._freeze_stages()

    @property
    def dynopools(self) -> List[DynOPool2d]:
        return [m for m in self.modules() if isinstance(m, DynOPool2d)]


# Layer 2 and the stem keep the resolution on 32x32 inputs, which leaves three
# down-sampling layers (the CIFAR MobileNetV2 of the Shape Adaptor paper).
_CIFAR_ARCH = [[1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 3, 2], [6, 64, 4, 2],
               [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]


@MODELS.register_module()
class MobileNetV2_CIFAR(MobileNetV2):
    """The human MobileNetV2 for 32x32 inputs: stride-1 stem and layer 2, so
    32 -> 16 -> 8 -> 4 (three resizing layers)."""
    arch_settings = _CIFAR_ARCH

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.conv1.conv.stride = (1, 1)


@MODELS.register_module()
class DynOPoolMobileNetV2(FreezeResizersMixin, MobileNetV2):
    """mmpretrain ``MobileNetV2`` with DynOPool (rule B).

    Each strided 3x3 convolution (the stem and the depthwise convolution of
    the first block of a strided layer) gets stride 1, and a DynOPool runs
    right after its activation (registered as ``dynopools.{i}``).

    Args:
        init_scales (float | Sequence, optional): One per strided conv:
            ``[stem, strided layers...]`` (no stem on the CIFAR variant).
            Default: 0.5.
        dynopool_cfg (dict, optional): Extra ``DynOPool2d`` arguments.
        **kwargs: Passed to ``MobileNetV2``.
    """
    stem_stride = 2

    def __init__(self, *args, init_scales=None,
                 dynopool_cfg: Optional[dict] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        blocks = [getattr(self, n)[0] for n in self.layers[:-1]]
        convs = [b.conv[-2] for b in blocks if b.stride != 1]
        if self.stem_stride != 1:
            convs.insert(0, self.conv1)
        scales = parse_init_scales(init_scales, len(convs),
                                   'stem, strided layers')
        pools = build_pools(scales, dynopool_cfg)
        self.dynopools = nn.ModuleList(pools)
        # DynOPool o ReLU6 o BN o Conv_1: the pool runs on the activation's
        # output, before any residual sum of the following blocks.
        for conv_module, pool in zip(convs, pools):
            _set_stride_one(conv_module.conv)
            conv_module.activate = PoolAfter(conv_module.activate, pool)
        for block in blocks:
            block.stride = 1
        self._resizer_anchors = list(zip(pools, convs))
        self._freeze_stages()


@MODELS.register_module()
class DynOPoolMobileNetV2_CIFAR(DynOPoolMobileNetV2):
    """:class:`DynOPoolMobileNetV2` built on :class:`MobileNetV2_CIFAR`."""
    arch_settings = _CIFAR_ARCH
    stem_stride = 1

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.conv1.conv.stride = (1, 1)
