"""ResNet with DynOPool or Shape Adaptors (mmpretrain ``ResNet`` /
``ResNet_CIFAR``; also registered in mmseg).

DynOPool (Appendix A.1): a down-sampling block's main branch and shortcut
share one DynOPool (rule B: ``DynOPool o ReLU o Conv_1``, the pool feeding
the convolution after the strided one); the shortcut pools *before* its 1x1
convolution, which is cheaper and needs no activation. The ImageNet stem's
``conv(stride 2) + max-pool(stride 2)`` becomes ``conv(stride 1)`` and one
DynOPool of initial scale 0.25 in place of the max-pool. On input sizes with
``H mod 4 == 1`` (e.g. 97) the human stem's two ceil roundings give one pixel
more than ``round(H / 4)``.

Shape Adaptor (Sec. 3-4): every stride becomes 1; adaptors go after the stem
activation (max-pool / identity) and into the chosen residual blocks as the
residual cell of Fig. 2: the 1x1 shortcut at stride 2 is the down-sampling
branch, the weight layers the identity branch. Such a block gets a shortcut
if it had none. The blocks come from :meth:`make_res_layer` (mmpretrain's
builder hook), so ``with_cp`` and ``drop_path`` work as in the library.

Resizing layers: ``dynopools`` (see :mod:`.base`).
"""
from typing import List

import torch.utils.checkpoint as cp
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmpretrain.models.backbones import ResNet, ResNet_CIFAR
from mmpretrain.models.backbones.resnet import BasicBlock, Bottleneck
from mmpretrain.registry import MODELS
from mmseg.registry import MODELS as SEG_MODELS
from torch import Tensor, nn

from ..layers import DynOPool2d, PoolAfter, PooledConv2d, hold
from .base import DynOPoolMixin, ShapeAdaptorMixin

__all__ = [
    'DynOPoolResNet', 'SegDynOPoolResNet', 'DynOPoolResNet_CIFAR',
    'ShapeAdaptorResNet', 'ShapeAdaptorResNet_CIFAR'
]


def _stem_conv(resnet: ResNet) -> nn.Conv2d:
    return resnet.stem[0].conv if resnet.deep_stem else resnet.conv1


def _convert_res_block(block: nn.Module, pool: DynOPool2d) -> None:
    """Move a ResNet block's down-sampling into ``pool`` (shared with the
    shortcut)."""
    if isinstance(block, Bottleneck):
        if block.conv1_stride != 1:  # caffe style: 1x1 conv is strided
            block.conv1.stride = (1, 1)
            block.conv2 = PooledConv2d.from_conv(block.conv2, pool)
        else:
            block.conv2.stride = (1, 1)
            block.conv3 = PooledConv2d.from_conv(block.conv3, pool)
        block.conv1_stride = block.conv2_stride = 1
    elif isinstance(block, BasicBlock):
        block.conv1.stride = (1, 1)
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


class _DynOPoolResNetMixin(DynOPoolMixin):
    has_stem_pool = True
    default_num_stages, depths = 4, tuple(ResNet.arch_settings)

    def _insert_resizers(self):
        strided = [
            name for name, s in zip(self.res_layers, self.strides) if s != 1
        ]
        defaults = [0.25] * self.has_stem_pool + [0.5] * len(strided)
        order = 'stem, ' * self.has_stem_pool + ', '.join(strided)
        pools = self._make_pools(defaults, order)
        anchors = []
        if self.has_stem_pool:
            _stem_conv(self).stride = (1, 1)
            self.maxpool = PoolAfter(nn.Identity(), pools[0])
            anchors.append(self.stem if self.deep_stem else self.conv1)
        for name, pool in zip(strided, pools[self.has_stem_pool:]):
            block = getattr(self, name)[0]
            _convert_res_block(block, pool)
            anchors.append(block)
        return pools, anchors


@MODELS.register_module()
class DynOPoolResNet(_DynOPoolResNetMixin, ResNet):
    """mmpretrain ``ResNet`` with DynOPool resizing (rules A/B, shared alpha).

    Returns what mmpretrain's ``ResNet`` returns: by default the last stage
    only (``out_indices=(3, )``). mmseg's registry builds
    :class:`SegDynOPoolResNet` under the same name, which returns every
    stage as mmseg's ``ResNet`` does.

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
        >>> [k for k in model.state_dict() if k.endswith('alpha')]
        ['dynopools.0.alpha', 'dynopools.1.alpha', 'dynopools.2.alpha', \
'dynopools.3.alpha']
    """


@SEG_MODELS.register_module(name='DynOPoolResNet')
class SegDynOPoolResNet(DynOPoolResNet):
    """:class:`DynOPoolResNet` as mmseg's and mmdet's registries build it
    (``type='DynOPoolResNet'`` in an mmseg or mmdet config): every stage's
    features by default, ``out_indices=(0, 1, 2, 3)`` like their ``ResNet``
    (a decode head or an FPN takes them), instead of mmpretrain's ``(3, )``.
    Its checkpoint keys are those of mmdet's and mmseg's ``ResNet`` plus
    ``dynopools.<i>.alpha``.

    Args:
        depth (int): 18, 34, 50, 101 or 152.
        out_indices (Sequence[int]): Stages to return.
            Default: ``(0, 1, 2, 3)``.
        **kwargs: Passed to :class:`DynOPoolResNet`.

    Example:
        >>> import torch
        >>> from mmseg.registry import MODELS
        >>> model = MODELS.build(dict(type='DynOPoolResNet', depth=18))
        >>> [tuple(o.shape[-2:]) for o in model(torch.rand(1, 3, 64, 64))]
        [(16, 16), (8, 8), (4, 4), (2, 2)]
    """

    def __init__(self, depth: int, *args, out_indices=(0, 1, 2, 3),
                 **kwargs) -> None:
        super().__init__(depth, *args, out_indices=out_indices, **kwargs)


try:  # detection is optional (the 'detection' extra)
    from mmdet.registry import MODELS as DET_MODELS
except ImportError:
    pass
else:
    DET_MODELS.register_module(name='DynOPoolResNet', module=SegDynOPoolResNet)


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


class _ShapeAdaptorBlockMixin:
    """A residual block whose sum can be a residual shape adaptor: with an
    adaptor held in ``shape_adaptor`` the block returns
    ``relu(adaptor(x, (shortcut(x), main(x))))``, otherwise it is the
    library block. ``with_cp`` checkpoints the same function the library
    does."""
    shape_adaptor = None

    def forward(self, x: Tensor) -> Tensor:
        if self.shape_adaptor is None:
            return super().forward(x)

        def _inner_forward(x):
            out = self.relu(self.norm1(self.conv1(x)))
            out = self.norm2(self.conv2(out))
            if isinstance(self, Bottleneck):
                out = self.norm3(self.conv3(self.relu(out)))
            out = self.drop_path(out)
            return self.shape_adaptor(x, (self.downsample(x), out))

        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(_inner_forward, x, use_reentrant=False)
        else:
            out = _inner_forward(x)
        return self.relu(out)


class ShapeAdaptorBasicBlock(_ShapeAdaptorBlockMixin, BasicBlock):
    """``BasicBlock`` that can hold a residual shape adaptor."""


class ShapeAdaptorBottleneck(_ShapeAdaptorBlockMixin, Bottleneck):
    """``Bottleneck`` that can hold a residual shape adaptor."""


_SA_BLOCKS = {
    BasicBlock: ShapeAdaptorBasicBlock,
    Bottleneck: ShapeAdaptorBottleneck
}


class _ShapeAdaptorResNetMixin(ShapeAdaptorMixin):
    default_num_stages, depths = 4, tuple(ResNet.arch_settings)

    def make_res_layer(self, **kwargs) -> nn.Module:
        kwargs['block'] = _SA_BLOCKS[kwargs['block']]
        return super().make_res_layer(**kwargs)

    def _insert_resizers(self):
        # Remove every human resizing layer.
        if hasattr(self, 'maxpool'):
            self.maxpool = nn.Identity()
            _stem_conv(self).stride = (1, 1)
        blocks: List[nn.Module] = [
            b for name in self.res_layers for b in getattr(self, name)
        ]
        for block in blocks:
            for m in block.modules():
                if isinstance(m, nn.Conv2d):
                    m.stride = (1, 1)
            if block.downsample is not None and isinstance(
                    block.downsample[0], nn.AvgPool2d):
                block.downsample[0] = nn.Identity()
            block.stride = 1
        # Candidates: the stem, then every block but the last.
        positions, adaptors = self._make_adaptors(len(blocks))
        stem = self.stem if self.deep_stem else self.conv1
        anchors = []
        for pos, sa in zip(positions, adaptors):
            if pos == 0:
                anchors.append(stem)
                if self.deep_stem:
                    self.stem[-1].activate = PoolAfter(self.stem[-1].activate,
                                                       sa)
                else:
                    self.relu = PoolAfter(self.relu, sa)
                continue
            block = blocks[pos - 1]
            anchors.append(block)
            if block.downsample is None:
                block.downsample = nn.Sequential(
                    build_conv_layer(
                        self.conv_cfg,
                        block.in_channels,
                        block.out_channels,
                        1,
                        bias=False),
                    build_norm_layer(self.norm_cfg, block.out_channels)[1])
            # The shortcut's 1x1 conv is the r1 = 0.5 branch.
            next(m for m in block.downsample.modules()
                 if isinstance(m, nn.Conv2d)).stride = (2, 2)
            sa.residual = True
            hold(block, 'shape_adaptor', sa)
        return adaptors, anchors


@MODELS.register_module()
class ShapeAdaptorResNet(_ShapeAdaptorResNetMixin, ResNet):
    """mmpretrain ``ResNet`` (ImageNet stem) with shape adaptors.

    Args:
        depth (int): 18, 34, 50, 101 or 152.
        input_size (int): ``D_in``. Default: 224.
        d_last, d_out, num_adaptors, size_rounding, count_rounding,
            init_alphas, adaptor_cfg: See :class:`.base.ShapeAdaptorMixin`.
        **kwargs: Passed to ``ResNet``.

    Example:
        >>> import torch
        >>> model = ShapeAdaptorResNet(18, input_size=64)
        >>> len(model.dynopools), model(torch.rand(1, 3, 64, 64))[0].shape
        (5, torch.Size([1, 512, 7, 7]))
    """
    default_input_size = 224


@MODELS.register_module()
class ShapeAdaptorResNet_CIFAR(_ShapeAdaptorResNetMixin, ResNet_CIFAR):
    """mmpretrain ``ResNet_CIFAR`` with shape adaptors (``D_in`` = 32).

    Args:
        depth (int): 18, 34, 50, 101 or 152.
        input_size, d_last, d_out, num_adaptors, size_rounding,
            count_rounding, init_alphas, adaptor_cfg: See
            :class:`.base.ShapeAdaptorMixin`.
        **kwargs: Passed to ``ResNet_CIFAR``.
    """
