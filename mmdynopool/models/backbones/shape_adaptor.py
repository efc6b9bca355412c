"""VGG, ResNet and MobileNetV2 with Shape Adaptors (Shape Adaptor, Sec. 3-4).

The paper's "shape-adaptor" networks: every human resizing layer is removed
(strides set to 1, pools to ``Identity``) and ``N`` shape adaptors (Eq. 3) with
the search space ``(0.5, 1)`` are inserted uniformly over the layers, the
first layer included and the last excluded, all initialised by Eq. (5) so the
network's last feature map starts at ``d_out``:

* VGG: after the activation of the chosen conv layers, mixing a 2x2 max-pool
  and the identity;
* MobileNetV2: after the stem activation or the chosen inverted residual
  block (whose residual connection is then dropped, as in the authors' code);
* ResNet: after the stem activation (max-pool / identity), and in the chosen
  residual blocks as the residual cell of Fig. 2: the 1x1 shortcut with
  stride 2 is the down-sampling branch, the weight layers the identity branch,
  mixing weights doubled. Such a block gets a shortcut if it had none.

All adaptors are registered in ``shape_adaptors`` (forward order); the layers
that use them hold a reference, so the human checkpoint keys stay.
"""
from numbers import Real
from typing import List, Optional, Sequence

from mmcv.cnn import build_conv_layer, build_norm_layer
from mmpretrain.models.backbones import VGG, MobileNetV2, ResNet, ResNet_CIFAR
from mmpretrain.models.backbones.resnet import BasicBlock, Bottleneck
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from ..layers import (PoolAfter, ShapeAdaptor, shape_adaptor_init_alpha,
                      shape_adaptor_num_modules)
from .utils import FreezeResizersMixin

__all__ = [
    'ShapeAdaptorVGG', 'ShapeAdaptorResNet', 'ShapeAdaptorResNet_CIFAR',
    'ShapeAdaptorMobileNetV2', 'uniform_positions'
]


def uniform_positions(num_layers: int, num_adaptors: int) -> List[int]:
    """Indices of ``num_adaptors`` layers spread uniformly over
    ``num_layers`` candidates, the first always included (the authors'
    ``int(i * num_layers / N)``).

    Example:
        >>> uniform_positions(12, 4)
        [0, 3, 6, 9]
    """
    if not 1 <= num_adaptors <= num_layers:
        raise ValueError(f'num_adaptors must be in [1, {num_layers}] (one per '
                         f'candidate layer at most), got {num_adaptors}')
    gap = num_layers / num_adaptors
    return [int(i * gap) for i in range(num_adaptors)]


class _ShapeAdaptorMixin(FreezeResizersMixin):
    """Builds the adaptors from ``input_size``, ``d_last``, ``d_out``; each
    is frozen with the layer it follows (``frozen_stages``).

    Every Shape Adaptor backbone also takes ``init_alphas`` (one raw alpha
    per adaptor in forward order, instead of Eq. 5) and ``adaptor_cfg``
    (extra :class:`ShapeAdaptor` arguments, ``fixed`` and ``penalty``):
    :func:`~mmdynopool.analysis.export_fixed_config` writes both for "Fix
    (Final)".
    """

    def __init__(self, *args, init_alphas: Optional[Sequence] = None,
                 adaptor_cfg: Optional[dict] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        adaptor_cfg = dict(adaptor_cfg or {})
        bad = set(adaptor_cfg) - {'fixed', 'penalty'}
        if bad:
            raise ValueError('adaptor_cfg takes fixed and penalty (the other '
                             'ShapeAdaptor arguments have their own), got '
                             f'{sorted(bad)}')
        self._init_alphas, self._adaptor_cfg = init_alphas, adaptor_cfg

    def _build_adaptors(self, num_candidates: int, input_size: int,
                        d_last: float, d_out: float,
                        num_adaptors: Optional[int],
                        size_rounding: str = 'floor',
                        count_rounding: str = 'floor') -> List[int]:
        n = num_adaptors or shape_adaptor_num_modules(
            input_size, d_last, rounding=count_rounding)
        positions = uniform_positions(num_candidates, n)
        alphas = self._init_alphas
        if alphas is None:
            alphas = [shape_adaptor_init_alpha(input_size, d_out, n)] * n
        elif not (isinstance(alphas, Sequence) and len(alphas) == n and all(
                isinstance(a, Real) and not isinstance(a, bool)
                for a in alphas)):
            raise ValueError(f'init_alphas must hold {n} numbers (one per '
                             f'adaptor), got {alphas!r}')
        self.shape_adaptors = nn.ModuleList(
            ShapeAdaptor(init_alpha=float(a), rounding=size_rounding,
                         **self._adaptor_cfg) for a in alphas)
        return positions


@MODELS.register_module()
class ShapeAdaptorVGG(_ShapeAdaptorMixin, VGG):
    """mmpretrain ``VGG`` whose max-pools are replaced by shape adaptors.

    Args:
        depth (int): 11, 13, 16 or 19.
        input_size (int): Training input size ``D_in``. Default: 32.
        d_last (float): ``D_last`` of Eq. (3). Default: 2.
        d_out (float): ``D_out`` of Eq. (5). Default: 8.
        num_adaptors (int, optional): Override Eq. (3).
        size_rounding (str): Adaptor output size ``'floor'`` (the authors',
            default) or ``'round'`` (half up); see :func:`shape_adaptor`.
        count_rounding (str): ``N`` of Eq. (3) by ``'floor'`` (the authors'
            code and tables, default) or ``'ceil'`` (the printed Eq. 3); see
            :func:`shape_adaptor_num_modules`.
        **kwargs: Passed to ``VGG``.
    """

    def __init__(self, depth: int, *args, input_size: int = 32,
                 d_last: float = 2, d_out: float = 8,
                 num_adaptors: Optional[int] = None,
                 size_rounding: str = 'floor',
                 count_rounding: str = 'floor', **kwargs) -> None:
        super().__init__(depth, *args, **kwargs)
        features = getattr(self, self.module_name)
        for i, m in enumerate(features):
            if isinstance(m, nn.MaxPool2d):
                features[i] = nn.Identity()
        convs = [m for m in features if hasattr(m, 'activate')][:-1]
        positions = self._build_adaptors(len(convs), input_size, d_last,
                                         d_out, num_adaptors, size_rounding,
                                         count_rounding)
        for pos, sa in zip(positions, self.shape_adaptors):
            convs[pos].activate = PoolAfter(convs[pos].activate, sa)
        self._resizer_anchors = [(sa, convs[pos]) for pos, sa in zip(
            positions, self.shape_adaptors)]
        self._freeze_stages()


class _ResidualShapeAdaptorMixin:
    """Forward of a residual block whose sum is a residual shape adaptor."""

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(x)
        out = self.relu(self.norm1(out))
        out = self.conv2(out)
        out = self.norm2(out)
        if isinstance(self, Bottleneck):
            out = self.conv3(self.relu(out))
            out = self.norm3(out)
        out = self.drop_path(out)
        out = self.shape_adaptor(x, (self.downsample(x), out))
        return self.relu(out)


class ShapeAdaptorBottleneck(_ResidualShapeAdaptorMixin, Bottleneck):
    pass


class ShapeAdaptorBasicBlock(_ResidualShapeAdaptorMixin, BasicBlock):
    pass


class _ShapeAdaptorResNetMixin(_ShapeAdaptorMixin):

    def _convert(self, input_size, d_last, d_out, num_adaptors,
                 size_rounding, count_rounding) -> None:
        # Remove every human resizing layer.
        if hasattr(self, 'maxpool'):
            self.maxpool = nn.Identity()
            stem_conv = self.stem[0].conv if self.deep_stem else self.conv1
            stem_conv.stride = (1, 1)
        blocks = [b for name in self.res_layers for b in getattr(self, name)]
        for block in blocks:
            for m in block.modules():
                if isinstance(m, nn.Conv2d):
                    m.stride = (1, 1)
            if block.downsample is not None and isinstance(
                    block.downsample[0], nn.AvgPool2d):
                block.downsample[0] = nn.Identity()
            block.stride = 1
        # Candidates: the stem, then every block but the last.
        positions = self._build_adaptors(
            len(blocks), input_size, d_last, d_out, num_adaptors,
            size_rounding, count_rounding)
        stem = self.stem if self.deep_stem else self.conv1
        self._resizer_anchors = [
            (sa, stem if pos == 0 else blocks[pos - 1])
            for pos, sa in zip(positions, self.shape_adaptors)]
        for pos, sa in zip(positions, self.shape_adaptors):
            if pos == 0:
                if self.deep_stem:
                    self.stem[-1].activate = PoolAfter(
                        self.stem[-1].activate, sa)
                else:
                    self.relu = PoolAfter(self.relu, sa)
                continue
            block = blocks[pos - 1]
            if block.downsample is None:
                block.downsample = nn.Sequential(
                    build_conv_layer(self.conv_cfg, block.in_channels,
                                     block.out_channels, 1, bias=False),
                    build_norm_layer(self.norm_cfg, block.out_channels)[1])
            # The shortcut's 1x1 conv is the r1 = 0.5 branch.
            next(m for m in block.downsample.modules()
                 if isinstance(m, nn.Conv2d)).stride = (2, 2)
            sa.residual = True
            block.__class__ = (
                ShapeAdaptorBottleneck
                if isinstance(block, Bottleneck) else ShapeAdaptorBasicBlock)
            object.__setattr__(block, 'shape_adaptor', sa)
        self._freeze_stages()


@MODELS.register_module()
class ShapeAdaptorResNet(_ShapeAdaptorResNetMixin, ResNet):
    """mmpretrain ``ResNet`` (ImageNet stem) with shape adaptors.

    Args:
        depth (int): 18, 34, 50, 101 or 152.
        input_size (int): ``D_in``. Default: 224.
        d_last, d_out, num_adaptors, size_rounding, count_rounding: See
            :class:`ShapeAdaptorVGG`.
        **kwargs: Passed to ``ResNet``.
    """

    def __init__(self, depth: int, *args, input_size: int = 224,
                 d_last: float = 2, d_out: float = 8,
                 num_adaptors: Optional[int] = None,
                 size_rounding: str = 'floor',
                 count_rounding: str = 'floor', **kwargs) -> None:
        super().__init__(depth, *args, **kwargs)
        self._convert(input_size, d_last, d_out, num_adaptors, size_rounding,
                      count_rounding)


@MODELS.register_module()
class ShapeAdaptorResNet_CIFAR(_ShapeAdaptorResNetMixin, ResNet_CIFAR):
    """mmpretrain ``ResNet_CIFAR`` with shape adaptors (``D_in`` = 32)."""

    def __init__(self, depth: int, *args, input_size: int = 32,
                 d_last: float = 2, d_out: float = 8,
                 num_adaptors: Optional[int] = None,
                 size_rounding: str = 'floor',
                 count_rounding: str = 'floor', **kwargs) -> None:
        super().__init__(depth, *args, **kwargs)
        self._convert(input_size, d_last, d_out, num_adaptors, size_rounding,
                      count_rounding)


@MODELS.register_module()
class ShapeAdaptorMobileNetV2(_ShapeAdaptorMixin, MobileNetV2):
    """mmpretrain ``MobileNetV2`` with shape adaptors.

    Args:
        input_size (int): ``D_in``. Default: 32.
        d_last, d_out, num_adaptors, size_rounding, count_rounding: See
            :class:`ShapeAdaptorVGG`.
        **kwargs: Passed to ``MobileNetV2``.
    """

    def __init__(self, *args, input_size: int = 32, d_last: float = 2,
                 d_out: float = 8, num_adaptors: Optional[int] = None,
                 size_rounding: str = 'floor', count_rounding: str = 'floor',
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.conv1.conv.stride = (1, 1)
        blocks = [b for name in self.layers[:-1] for b in getattr(self, name)]
        for block in blocks:
            block.conv[-2].conv.stride = (1, 1)  # the depthwise conv
            block.stride = 1
        positions = self._build_adaptors(
            len(blocks) + 1, input_size, d_last, d_out, num_adaptors,
            size_rounding, count_rounding)
        for pos, sa in zip(positions, self.shape_adaptors):
            if pos == 0:
                self.conv1.activate = PoolAfter(self.conv1.activate, sa)
            else:
                block = blocks[pos - 1]
                block.use_res_connect = False
                block.conv.append(PoolAfter(nn.Identity(), sa))
        self._resizer_anchors = [
            (sa, self.conv1 if pos == 0 else blocks[pos - 1])
            for pos, sa in zip(positions, self.shape_adaptors)]
        self._freeze_stages()
