"""VGG with DynOPool or Shape Adaptors (mmpretrain ``VGG``), and the narrow
VGGs of the CPU-scale toy studies.

DynOPool (rule A, Appendix A.1): every max-pool becomes a DynOPool.
Shape Adaptor (Sec. 3-4): every max-pool is removed; adaptors (2x2 max-pool
and identity) go after the activation of the chosen conv layers, the first
included, the last excluded.

mmpretrain's ``VGG`` fixes its widths at ``64 * 2**i`` (capped at 512); the
``Slim`` classes are the same networks with every width multiplied by
``widen_factor``, as mmpretrain's MobileNetV2 does: same layers, same module
names (a slim state dict has the full one's keys, with narrower tensors).

Resizing layers: ``dynopools`` (see :mod:`.base`).
"""
from mmcv.cnn import ConvModule, build_conv_layer, build_norm_layer
from mmpretrain.models.backbones import VGG
from mmpretrain.registry import MODELS
from torch import nn

from ..layers import PoolAfter
from .base import DynOPoolMixin, ShapeAdaptorMixin

__all__ = [
    'DynOPoolVGG', 'ShapeAdaptorVGG', 'SlimVGG', 'DynOPoolSlimVGG',
    'ShapeAdaptorSlimVGG'
]


class _NoClassifierMixin:
    """Refuses VGG's own classifier (``num_classes > 0``): it flattens the
    last map into a ``Linear(512 * 7 * 7, 4096)``, i.e. it needs 7x7, which
    a learned shape does not keep (DynOPool's round-half-up already gives
    8x8 on a 225 px input, where VGG's floor gives 7x7)."""

    def __init__(self,
                 depth: int,
                 num_classes: int = -1,
                 *args,
                 **kwargs) -> None:
        if isinstance(num_classes, (int, float)) and num_classes > 0:
            raise ValueError(
                f'{type(self).__name__} learns its feature-map sizes, so '
                f"VGG's own classifier (num_classes={num_classes!r}), which "
                'flattens a fixed 512 x 7 x 7 map, would fail on any other '
                'size (a 225 px input, or once alpha moves): pass '
                'num_classes=-1 and classify with a neck '
                "(dict(type='GlobalAveragePooling')) and a head, as the "
                'configs do')
        super().__init__(depth, num_classes, *args, **kwargs)


@MODELS.register_module()
class DynOPoolVGG(_NoClassifierMixin, DynOPoolMixin, VGG):
    """mmpretrain ``VGG`` with every max-pool replaced by DynOPool (rule A).

    Args:
        depth (int): 11, 13, 16 or 19.
        num_classes (int): -1 only: VGG's own classifier needs a 7x7 map,
            which learned sizes do not keep (use a neck and a head).
            Default: -1.
        init_scales (float | Sequence, optional): One per max-pool.
            Default: 0.5.
        dynopool_cfg (dict, optional): Extra ``DynOPool2d`` arguments.
        **kwargs: Passed to ``VGG``.

    Example:
        >>> import torch
        >>> model = DynOPoolVGG(11, init_scales=0.6)
        >>> len(model.dynopools), model(torch.rand(1, 3, 32, 32))[0].shape
        (5, torch.Size([1, 512, 2, 2]))
    """
    default_num_stages, depths = 5, tuple(VGG.arch_settings)

    def _insert_resizers(self):
        features = getattr(self, self.module_name)
        idx = [
            i for i, m in enumerate(features) if isinstance(m, nn.MaxPool2d)
        ]
        pools = self._make_pools([0.5] * len(idx), 'one per max-pool')
        for i, pool in zip(idx, pools):
            features[i] = PoolAfter(nn.Identity(), pool)
        # A pool ends its stage: it follows the stage's last conv.
        return pools, [features[i - 1] for i in idx]


@MODELS.register_module()
class ShapeAdaptorVGG(_NoClassifierMixin, ShapeAdaptorMixin, VGG):
    """mmpretrain ``VGG`` whose max-pools are replaced by shape adaptors.

    Args:
        depth (int): 11, 13, 16 or 19.
        num_classes (int): -1 only, as for :class:`DynOPoolVGG`.
            Default: -1.
        input_size, d_last, d_out, num_adaptors, size_rounding,
            count_rounding, init_alphas, adaptor_cfg: See
            :class:`.base.ShapeAdaptorMixin`. ``input_size`` defaults to 32.
        **kwargs: Passed to ``VGG``.

    Example:
        >>> import torch
        >>> model = ShapeAdaptorVGG(11)
        >>> len(model.dynopools), model(torch.rand(1, 3, 32, 32))[0].shape
        (4, torch.Size([1, 512, 7, 7]))
    """
    default_num_stages, depths = 5, tuple(VGG.arch_settings)

    def _insert_resizers(self):
        features = getattr(self, self.module_name)
        for i, m in enumerate(features):
            if isinstance(m, nn.MaxPool2d):
                features[i] = nn.Identity()
        convs = [m for m in features if hasattr(m, 'activate')][:-1]
        positions, adaptors = self._make_adaptors(len(convs))
        for pos, sa in zip(positions, adaptors):
            convs[pos].activate = PoolAfter(convs[pos].activate, sa)
        return adaptors, [convs[pos] for pos in positions]


class _SlimMixin:
    """Rebuilds every conv / norm of a built VGG at ``widen_factor`` width.

    Only the ``conv`` and norm children of each ``ConvModule`` are replaced,
    so the resizing layers (and the wrappers that call them) stay.
    """

    def __init__(self,
                 depth: int,
                 *args,
                 widen_factor: float = 1.0,
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
            m.conv = build_conv_layer(
                m.conv_cfg,
                in_channels,
                out_channels,
                old.kernel_size,
                old.stride,
                old.padding,
                old.dilation,
                bias=old.bias is not None)
            if m.with_norm:
                setattr(m, m.norm_name,
                        build_norm_layer(m.norm_cfg, out_channels)[1])
            in_channels = out_channels
        self.out_channels = in_channels
        self._freeze_stages()  # the new layers of frozen stages


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
