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
