"""Helpers shared by the DynOPool backbones."""
from numbers import Real
from typing import List, Optional, Sequence

from ..layers import DynOPool2d


def parse_init_scales(init_scales, num: int, order: str) -> list:
    """One initial scale per resizing layer.

    ``None`` means 0.5 everywhere, a number is used for every layer, and a
    sequence must hold exactly ``num`` entries (each a number or an
    ``(r_h, r_w)`` pair) in the order ``order`` names. The values themselves
    are checked by :class:`DynOPool2d`.
    """
    if init_scales is None:
        return [0.5] * num
    if isinstance(init_scales, Real) and not isinstance(init_scales, bool):
        return [init_scales] * num
    if isinstance(init_scales, Sequence) and not isinstance(
            init_scales, str) and len(init_scales) == num:
        return list(init_scales)
    raise ValueError(f'init_scales must be None, one number, or {num} '
                     f'scales ({order}), got {init_scales!r}')


def build_pools(scales: Sequence, cfg: Optional[dict]) -> List[DynOPool2d]:
    """``DynOPool2d`` modules, one per initial scale, with extra ``cfg``."""
    cfg = dict(cfg or {})
    if 'init_scale' in cfg:
        raise ValueError('set init_scale through init_scales, not '
                         'dynopool_cfg')
    return [DynOPool2d(init_scale=s, **cfg) for s in scales]


class FreezeResizersMixin:
    """``frozen_stages`` freezes the resizing layers of the frozen stages.

    The library backbone's ``_freeze_stages`` (run at construction and on
    every ``train()``) freezes the modules of each frozen stage; a resizing
    layer held outside them (a DynOPool registered at the top level, a shape
    adaptor wrapped around an activation) would keep training. Each backbone
    lists ``(resizer, anchor)`` pairs in ``_resizer_anchors``, ``anchor``
    being the layer the resizer follows; after the library has frozen its
    stages, a resizer whose anchor's parameters are all frozen gets its
    ``alpha`` frozen too. Nothing is ever unfrozen here.
    """
    _resizer_anchors = ()

    def _freeze_stages(self) -> None:
        super()._freeze_stages()
        for resizer, anchor in self._resizer_anchors:
            params = list(anchor.parameters())
            if params and not any(p.requires_grad for p in params):
                resizer.alpha.requires_grad_(False)


def check_frozen_stages(frozen_stages, max_stage: int) -> None:
    """``frozen_stages`` must be an integer in ``[-1, max_stage]``."""
    if isinstance(frozen_stages, bool) or not isinstance(
            frozen_stages, int) or not -1 <= frozen_stages <= max_stage:
        raise ValueError(f'frozen_stages must be an integer in [-1, '
                         f'{max_stage}] (-1: none), got {frozen_stages!r}')
