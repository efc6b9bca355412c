"""HRNet with DynOPool down-sampling (DynOPool paper, Appendix A.1, rule C)."""
from mmseg.models.backbones import HRNet
from mmseg.registry import MODELS
from torch import nn

from ..layers import PooledConv2d
from .base import DynOPoolMixin

__all__ = ['DynOPoolHRNet', 'hrnet_extra']

_STAGE_KEYS = ('num_modules', 'num_branches', 'block', 'num_blocks',
               'num_channels')


def hrnet_extra(width: int,
                blocks: int = 4,
                modules=(1, 1, 4, 3),
                stage1_channels: int = 64) -> dict:
    """The ``extra`` stage settings of mmseg's HRNet-W``width`` (W18, W32,
    W48: the ``fcn_hr*`` configs').

    Args:
        width (int): Channels of stream 0; stream ``i`` has ``2 ** i`` times
            as many.
        blocks (int): Residual blocks per branch. Default: 4.
        modules (Sequence[int]): HR modules of stages 1-4.
            Default: (1, 1, 4, 3).
        stage1_channels (int): Channels of stage 1's bottleneck branch.
            Default: 64.

    Returns:
        dict: ``stage1`` ... ``stage4``, as ``HRNet(extra=...)`` takes them.

    Example:
        >>> extra = hrnet_extra(48)
        >>> extra['stage4']['num_channels'], extra['stage3']['num_modules']
        ((48, 96, 192, 384), 4)
    """
    stages = dict(
        stage1=dict(
            num_modules=modules[0],
            num_branches=1,
            block='BOTTLENECK',
            num_blocks=(blocks, ),
            num_channels=(stage1_channels, )))
    for i in (2, 3, 4):
        stages[f'stage{i}'] = dict(
            num_modules=modules[i - 1],
            num_branches=i,
            block='BASIC',
            num_blocks=(blocks, ) * i,
            num_channels=tuple(width * 2**b for b in range(i)))
    return stages


def check_hrnet_extra(extra: dict) -> None:
    """Raise a clear error for an HRNet ``extra`` dict that cannot build."""
    if not isinstance(extra, dict):
        raise TypeError(f'extra must be a dict, got {type(extra).__name__}')
    prev = 0
    for i in range(1, 5):
        name = f'stage{i}'
        if name not in extra:
            raise ValueError(f'extra must define stage1..stage4; {name} is '
                             f'missing (got keys {sorted(extra)})')
        cfg = extra[name]
        missing = [k for k in _STAGE_KEYS if k not in cfg]
        if missing:
            raise ValueError(f'extra.{name} lacks {missing}')
        n = cfg['num_branches']
        for key in ('num_modules', 'num_branches'):
            v = cfg[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f'extra.{name}.{key} must be an integer '
                                 f'>= 1, got {v!r}')
        for key in ('num_blocks', 'num_channels'):
            if not isinstance(cfg[key], (list, tuple)) or not all(
                    isinstance(v, int) and not isinstance(v, bool) and v >= 1
                    for v in cfg[key]):
                raise ValueError(f'extra.{name}.{key} must hold integers '
                                 f'>= 1, got {cfg[key]!r}')
            if len(cfg[key]) != n:
                raise ValueError(
                    f'extra.{name}.{key} has {len(cfg[key])} entries but '
                    f'num_branches={n}')
        if cfg['block'] not in HRNet.blocks_dict:
            raise ValueError(f'extra.{name}.block must be one of '
                             f'{sorted(HRNet.blocks_dict)}, got '
                             f"{cfg['block']!r}")
        if i == 1 and n != 1:
            raise ValueError(f'extra.stage1.num_branches must be 1, got {n}')
        if n < prev:
            raise ValueError(f'extra.{name}.num_branches={n} is fewer than '
                             f'the previous stage ({prev})')
        prev = n


def _convert_transition(transition: nn.ModuleList, num_pre: int,
                        streams: list) -> None:
    # New branch i is reached from stream num_pre - 1 through a chain of
    # stride-2 cells; cell j of the chain ends at stream num_pre + j.
    for i in range(num_pre, len(transition)):
        for j, cell in enumerate(transition[i]):
            cell[0] = PooledConv2d.from_conv(cell[0], streams[num_pre + j])


def _convert_fuse_layers(hr_module: nn.Module, streams: list) -> None:
    if hr_module.fuse_layers is None:
        return
    for i, fuse_layer in enumerate(hr_module.fuse_layers):
        for j, path in enumerate(fuse_layer):
            if j > i:
                # conv1x1, norm, Upsample(2 ** (j - i)): drop the fixed
                # factor; HRModule.forward resizes to x[i]'s real size.
                path[2] = nn.Identity()
            elif j < i:
                # Cell k goes from stream j + k to stream j + k + 1.
                for k, cell in enumerate(path):
                    cell[0] = PooledConv2d.from_conv(cell[0],
                                                     streams[j + k + 1])


@MODELS.register_module()
class DynOPoolHRNet(DynOPoolMixin, HRNet):
    """HRNet whose every strided convolution becomes DynOPool + stride-1 conv.

    ``Conv_s -> Conv_1 o DynOPool_s`` (rule C). One DynOPool module per
    resolution stream is shared by every path into that stream (stem,
    transitions, fuse layers), so all of them produce the stream's size; the
    stem's first down-sampling has a pool of its own. Fuse-layer up-sampling
    resizes bilinearly straight to the target stream's actual size. Checkpoint
    keys are those of :class:`mmseg.models.backbones.HRNet` plus
    ``dynopools.{i}.alpha``: ``dynopools.0`` is the stem's pool,
    ``dynopools.{i + 1}`` stream ``i``'s.

    Args:
        extra (dict): HRNet stage configuration, as for ``HRNet``.
        init_scales (float | Sequence, optional): Initial scale of each
            resizing layer, in the order ``[stem, stream 0, stream 1, ...]``
            (stream ``i`` relative to stream ``i - 1``; stream 0 relative to
            the stem). One value for all, or one per layer (float or
            ``(r_h, r_w)``). Default: 0.5 everywhere (the human design).
        dynopool_cfg (dict, optional): Extra ``DynOPool2d`` arguments
            (``mode``, ``fixed``). Default: None.
        **kwargs: Passed to ``HRNet``.

    Example:
        >>> import torch
        >>> extra = dict(
        ...     stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK',
        ...                 num_blocks=(1, ), num_channels=(16, )),
        ...     stage2=dict(num_modules=1, num_branches=2, block='BASIC',
        ...                 num_blocks=(1, 1), num_channels=(8, 16)),
        ...     stage3=dict(num_modules=1, num_branches=3, block='BASIC',
        ...                 num_blocks=(1, 1, 1), num_channels=(8, 16, 32)),
        ...     stage4=dict(num_modules=1, num_branches=4, block='BASIC',
        ...                 num_blocks=(1, 1, 1, 1),
        ...                 num_channels=(8, 16, 32, 64)))
        >>> model = DynOPoolHRNet(extra, init_scales=[0.5, 0.5, 0.7, 0.5, 0.5])
        >>> [tuple(o.shape[-2:]) for o in model(torch.rand(1, 3, 64, 64))]
        [(16, 16), (11, 11), (6, 6), (3, 3)]
    """

    default_num_stages = 4

    def __init__(self, extra: dict, *args, **kwargs) -> None:
        check_hrnet_extra(extra)
        super().__init__(extra, *args, **kwargs)

    def _insert_resizers(self):
        num_streams = self.stage4_cfg['num_branches']
        pools = self._make_pools([0.5] * (num_streams + 1),
                                 f'stem, stream 0..{num_streams - 1}')
        streams = pools[1:]
        self.conv1 = PooledConv2d.from_conv(self.conv1, pools[0])
        self.conv2 = PooledConv2d.from_conv(self.conv2, streams[0])
        for k in (1, 2, 3):
            _convert_transition(
                getattr(self, f'transition{k}'),
                self.extra[f'stage{k}']['num_branches'], streams)
        for stage in (self.stage2, self.stage3, self.stage4):
            for hr_module in stage:
                _convert_fuse_layers(hr_module, streams)
        # The stem and stream 0 pools follow the stem's convolutions; stream
        # j's pool first appears in transition j, which mmseg freezes with
        # stage j.
        anchors = [self.conv1, self.conv2] + [
            getattr(self, f'transition{j}')[j] for j in range(1, num_streams)
        ]
        return pools, anchors


class DetDynOPoolHRNet(DynOPoolHRNet):
    """:class:`DynOPoolHRNet` as mmdet's registry builds it
    (``type='DynOPoolHRNet'`` in an mmdet config, e.g. with ``HRFPN``):
    mmdet's ``HRNet`` defaults (``norm_eval=True``). mmdet's and mmseg's
    ``HRNet`` have the same modules and checkpoint keys, so an mmdet HRNet
    checkpoint loads with only ``dynopools.<i>.alpha`` missing.

    Args:
        extra (dict): HRNet stage configuration, as for ``HRNet``.
        norm_eval (bool): Keep the norm layers in eval mode while training
            (mmdet's default). Default: True.
        **kwargs: Passed to :class:`DynOPoolHRNet`.
    """

    def __init__(self,
                 extra: dict,
                 *args,
                 norm_eval: bool = True,
                 **kwargs) -> None:
        super().__init__(extra, *args, norm_eval=norm_eval, **kwargs)


try:  # detection is optional (the 'detection' extra)
    from mmdet.registry import MODELS as DET_MODELS
except ImportError:
    pass
else:
    DET_MODELS.register_module(name='DynOPoolHRNet', module=DetDynOPoolHRNet)
