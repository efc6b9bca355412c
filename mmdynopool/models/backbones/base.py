"""The one scheme every resizing backbone follows.

A backbone here is a library backbone (mmpretrain / mmseg) built as usual,
then given learnable resizing layers in place of its fixed ones. Whatever the
network, the resizing layers live in one ``nn.ModuleList``, ``dynopools``
(checkpoint keys ``dynopools.<i>.alpha``, forward order), and every module
that calls one holds it by reference (:func:`~mmdynopool.models.layers.hold`),
so every human checkpoint key stays where the library has it.
``frozen_stages`` freezes a resizing layer with the layer it follows (its
*anchor*); ``norm_eval`` is the library's (the resizing layers hold no norm).

:class:`DynOPoolMixin` and :class:`ShapeAdaptorMixin` read their own
arguments, let the library build the network, then call the backbone's
``_insert_resizers()``, which returns ``(resizers, anchors)``.
"""
import math
from numbers import Integral, Real
from typing import List, Optional, Sequence, Tuple

from torch import nn

from ..layers import (DynOPool2d, ShapeAdaptor, shape_adaptor_init_alpha,
                      shape_adaptor_num_modules)
from ..resizing import record_input_shape

__all__ = [
    'ResizingBackboneMixin', 'DynOPoolMixin', 'ShapeAdaptorMixin',
    'uniform_positions', 'check_frozen_stages'
]


def _check_size(name: str, value) -> None:
    """A finite number > 0 (a size of Eq. 3 / 5)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f'{name} must be a number > 0, got {value!r}')
    if not 0 < value < math.inf:
        raise ValueError(f'{name} must be finite and > 0, got {value!r}')


def check_frozen_stages(frozen_stages, max_stage: int) -> None:
    """``frozen_stages`` must be an integer in ``[-1, max_stage]``.

    Args:
        frozen_stages (int): The value to check.
        max_stage (int): The backbone's last stage.
    """
    if isinstance(frozen_stages, bool) or not isinstance(
            frozen_stages, int) or not -1 <= frozen_stages <= max_stage:
        raise ValueError(f'frozen_stages must be an integer in [-1, '
                         f'{max_stage}] (-1: none), got {frozen_stages!r}')


def uniform_positions(num_layers: int, num_adaptors: int) -> List[int]:
    """Indices of ``num_adaptors`` layers spread uniformly over
    ``num_layers`` candidates, the first always included (the authors'
    ``int(i * num_layers / N)``).

    Args:
        num_layers (int): Candidate layers.
        num_adaptors (int): Layers to pick.

    Returns:
        list[int]: The picked indices, increasing.

    Example:
        >>> uniform_positions(12, 4)
        [0, 3, 6, 9]
    """
    if not 1 <= num_adaptors <= num_layers:
        raise ValueError(f'num_adaptors must be in [1, {num_layers}] (one per '
                         f'candidate layer at most), got {num_adaptors}')
    gap = num_layers / num_adaptors
    return [int(i * gap) for i in range(num_adaptors)]


class ResizingBackboneMixin:
    """Registers the resizing layers in ``dynopools`` and freezes each with
    its anchor.

    Subclasses implement ``_insert_resizers() -> (resizers, anchors)``.
    Where the library does not check ``frozen_stages`` itself, a network
    sets ``default_num_stages`` (the library's; a ``num_stages`` argument
    overrides it) and ``frozen_stages`` must lie in ``[-1, num_stages]``;
    where the library takes a ``depth``, ``depths`` lists the valid ones.
    """
    _resizer_anchors: Sequence[Tuple[nn.Module, nn.Module]] = ()
    default_num_stages: Optional[int] = None
    depths: Optional[Sequence[int]] = None

    def __init__(self, *args, **kwargs) -> None:
        if self.depths is not None:
            depth = args[0] if args else kwargs.get('depth')
            if depth not in self.depths:
                raise KeyError(f'depth must be one of {sorted(self.depths)}'
                               f', got {depth!r}')
        if self.default_num_stages is not None:
            check_frozen_stages(
                kwargs.get('frozen_stages', -1),
                kwargs.get('num_stages', self.default_num_stages))
        super().__init__(*args, **kwargs)
        resizers, anchors = self._insert_resizers()
        self.dynopools = nn.ModuleList(resizers)
        self._resizer_anchors = list(zip(resizers, anchors))
        self._freeze_stages()

    def _insert_resizers(self) -> Tuple[list, list]:
        raise NotImplementedError

    def forward(self, x, *args, **kwargs):
        # Detection heads turn the learned feature-map sizes into strides
        # relative to this input (models/task_modules).
        record_input_shape(x)
        return super().forward(x, *args, **kwargs)

    def switch_to_deploy(self) -> None:
        """Deployment form of every resizing layer (mmpretrain's
        ``switch_to_deploy`` convention, as its
        ``tools/model_converters/reparameterize_model.py`` calls it): sizes
        as integer expressions of the input size, plain ATen ops."""
        from ..resizing import switch_to_deploy
        switch_to_deploy(self)

    def _freeze_stages(self) -> None:
        # The library freezes the modules of each frozen stage (at
        # construction and in every train()); a resizer lives outside them,
        # so it follows its anchor. Nothing is ever unfrozen here.
        super()._freeze_stages()
        for resizer, anchor in self._resizer_anchors:
            params = list(anchor.parameters())
            if params and not any(p.requires_grad for p in params):
                resizer.alpha.requires_grad_(False)


class DynOPoolMixin(ResizingBackboneMixin):
    """Reads ``init_scales`` and ``dynopool_cfg``; :meth:`_make_pools` builds
    the DynOPools.

    Args:
        init_scales (float | Sequence, optional): Initial scale of each
            resizing layer, in the order the backbone documents. ``None``:
            the backbone's defaults (the human design); one number for all;
            or one per layer (a number or an ``(r_h, r_w)`` pair).
        dynopool_cfg (dict, optional): Extra :class:`DynOPool2d` arguments
            (``mode``, ``fixed``, ...).
    """

    def __init__(self,
                 *args,
                 init_scales=None,
                 dynopool_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        dynopool_cfg = dict(dynopool_cfg or {})
        if 'init_scale' in dynopool_cfg:
            raise ValueError('set init_scale through init_scales, not '
                             'dynopool_cfg')
        self._init_scales, self._dynopool_cfg = init_scales, dynopool_cfg
        super().__init__(*args, **kwargs)

    def _make_pools(self, defaults: Sequence, order: str) -> List[DynOPool2d]:
        """One DynOPool per entry of ``defaults`` (the human scales), or per
        ``init_scales`` entry; ``order`` names the layers for errors."""
        scales, num = self._init_scales, len(defaults)
        if scales is None:
            scales = list(defaults)
        elif isinstance(scales, Real) and not isinstance(scales, bool):
            scales = [scales] * num
        elif not (isinstance(scales, Sequence) and not isinstance(scales, str)
                  and len(scales) == num):
            raise ValueError(f'init_scales must be None, one number, or {num} '
                             f'scales ({order}), got {scales!r}')
        return [DynOPool2d(init_scale=s, **self._dynopool_cfg) for s in scales]


class ShapeAdaptorMixin(ResizingBackboneMixin):
    """Reads the Shape Adaptor arguments; :meth:`_make_adaptors` builds the
    adaptors and says where they go.

    The paper's "shape-adaptor" networks remove every human resizing layer
    and insert ``N`` adaptors (Eq. 3) uniformly over the candidate layers,
    the first included, all initialised by Eq. (5) so the last feature map
    starts at ``d_out``.

    Args:
        input_size (int, optional): Training input size ``D_in``. Default:
            the backbone's ``default_input_size``.
        d_last (float): ``D_last`` of Eq. (3). Default: 2.
        d_out (float): ``D_out`` of Eq. (5). Default: 8.
        num_adaptors (int, optional): Override Eq. (3); an integer >= 1.
        size_rounding (str): Adaptor output size ``'floor'`` (the authors',
            default) or ``'round'`` (half up); see
            :func:`~mmdynopool.models.layers.shape_adaptor`.
        count_rounding (str): ``N`` of Eq. (3) by ``'floor'`` (the authors'
            code and tables, default) or ``'ceil'`` (the printed Eq. 3); see
            :func:`~mmdynopool.models.layers.shape_adaptor_num_modules`.
        init_alphas (Sequence[float], optional): One raw alpha per adaptor,
            in forward order, instead of Eq. (5).
        adaptor_cfg (dict, optional): ``fixed`` and ``penalty`` of
            :class:`ShapeAdaptor`; with ``init_alphas`` this is what
            :func:`~mmdynopool.analysis.export_fixed_config` writes for "Fix
            (Final)".
    """
    default_input_size = 32

    def __init__(self,
                 *args,
                 input_size: Optional[int] = None,
                 d_last: float = 2,
                 d_out: float = 8,
                 num_adaptors: Optional[int] = None,
                 size_rounding: str = 'floor',
                 count_rounding: str = 'floor',
                 init_alphas: Optional[Sequence] = None,
                 adaptor_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        for name, value in (('input_size', input_size), ('d_last', d_last),
                            ('d_out', d_out)):
            if value is not None:
                _check_size(name, value)
        if num_adaptors is not None and (isinstance(
                num_adaptors, bool) or not isinstance(num_adaptors, Integral)):
            raise TypeError('num_adaptors must be None (Eq. 3) or an '
                            f'integer >= 1, got {num_adaptors!r}')
        if num_adaptors is not None and num_adaptors < 1:
            raise ValueError('num_adaptors must be None (Eq. 3) or an '
                             f'integer >= 1, got {num_adaptors!r}')
        adaptor_cfg = dict(adaptor_cfg or {})
        bad = set(adaptor_cfg) - {'fixed', 'penalty'}
        if bad:
            raise ValueError('adaptor_cfg takes fixed and penalty (the other '
                             'ShapeAdaptor arguments have their own), got '
                             f'{sorted(bad)}')
        self._sa_args = dict(
            input_size=self.default_input_size
            if input_size is None else input_size,
            d_last=d_last,
            d_out=d_out,
            num_adaptors=num_adaptors,
            size_rounding=size_rounding,
            count_rounding=count_rounding,
            init_alphas=init_alphas,
            adaptor_cfg=adaptor_cfg)
        super().__init__(*args, **kwargs)

    def _make_adaptors(
            self, num_candidates: int) -> Tuple[List[int], List[ShapeAdaptor]]:
        """``(positions, adaptors)``: which of ``num_candidates`` layers get
        an adaptor, and the adaptors."""
        a = self._sa_args
        n = a['num_adaptors']
        if n is None:  # Eq. (3)
            n = shape_adaptor_num_modules(
                a['input_size'], a['d_last'], rounding=a['count_rounding'])
        positions = uniform_positions(num_candidates, n)
        alphas = a['init_alphas']
        if alphas is None:
            alphas = [
                shape_adaptor_init_alpha(a['input_size'], a['d_out'], n)
            ] * n
        elif not (isinstance(alphas, Sequence) and len(alphas) == n and all(
                isinstance(v, Real) and not isinstance(v, bool)
                for v in alphas)):
            raise ValueError(f'init_alphas must hold {n} numbers (one per '
                             f'adaptor), got {alphas!r}')
        adaptors = [
            ShapeAdaptor(
                init_alpha=float(v),
                rounding=a['size_rounding'],
                **a['adaptor_cfg']) for v in alphas
        ]
        return positions, adaptors
