"""DynOPool: dynamically optimised pooling (Jang et al., CVPR 2022).

Convention:
    * Sizes and scales are ``(h, w)`` ordered.
    * Normalised coordinates follow ``F.grid_sample(align_corners=False)``:
      ``(-1, -1)`` and ``(1, 1)`` are the *outer corners* of the input, so
      pixel ``i`` of ``n`` has its centre at ``-1 + (2 i + 1) / n``.
    * Queries that fall outside the input clamp to the border, as
      ``F.interpolate(mode='bilinear', align_corners=False)`` does.
    * Output size: ``round(max(H_in * r_h, 1.5))`` with round-half-up, so it
      is never below 2, and ``r = 0.5`` reproduces a ``3x3/stride 2/pad 1``
      convolution's ``ceil(H_in / 2)`` on odd sizes.

Position derivative (``position_grad``):
    Query positions depend only on the integer output size ``n``: query
    ``k`` of ``2 n`` sits at pixel ``((2 k + 1) H_in - 2 n) / (4 n)``. It
    lands exactly on a pixel centre whenever that is an integer: at
    ``n = H_in / 2`` on every even size (the human design, and the whole
    rounding bin around it, e.g. alpha in (1.94, 2.06] at 32 px) and at many
    other rational ratios, for as long as ``n`` stays in that bin. Bilinear
    sampling has a kink there, so the derivative with respect to the
    position has two one-sided values, often of opposite sign.

    * ``'central'`` (default): the mean of the two one-sided derivatives at
      pixel-aligned queries (found in integer arithmetic, so independent of
      floating-point rounding) and the plain derivative elsewhere; at a
      border pixel the outer side is the clamped, zero-slope one. This is
      the derivative of the piecewise-linear interpolant smoothed over an
      infinitesimal window, and the choice the toy study in the README
      supports (lower-variance alpha gradients, shapes that follow the data).
    * ``'one_sided'``: whichever side ``grid_sampler_2d``'s backward picks
      after rounding the coordinates (what a plain ``grid_sample``
      implementation of the paper computes); kept for comparison.

    Forward values and the input gradient do not depend on this choice.
    Both live with the autograd function in :mod:`.dynopool_function`.
"""
import math
from numbers import Real
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor, nn

from .dynopool_function import (POSITION_GRADS, _cell_query_coords,
                                _check_position_grad, _DynOPoolFunction)

__all__ = [
    'DynOPool2d', 'dynopool2d', 'dynopool_output_size', 'MIN_SIZE',
    'POSITION_GRADS', 'MAX_SCALE', 'AlphaDivergedError'
]

#: Lower bound of the continuous size before rounding (paper Sec. 5.1):
#: ``round(max(x, 1.5)) >= 2``.
MIN_SIZE = 1.5


class AlphaDivergedError(ValueError):
    """A trained alpha left the valid range at forward time (not finite,
    <= 0, or a scale beyond :data:`MAX_SCALE`): training diverged."""


#: Cap on the scale factor, per axis: an output larger than ``MAX_SCALE``
#: times its input (plus the 2-pixel floor) is refused with a ValueError
#: rather than an allocation failure (``init_scale=1e4`` on an 8x8 map would
#: ask for an 80,000 x 80,000 map). Up-sampling in the papers stays below 2.
MAX_SCALE = 16.0

ScaleType = Union[float, Sequence[float]]


def dynopool_output_size(input_size: Sequence[int], alpha: Tensor) -> Tensor:
    """Output size with the straight-through estimator of Eq. (3)-(4).

    The forward value is the integer size ``round(max(H_in / alpha, 1.5))``;
    the gradient is that of the continuous size ``H_in / alpha``. The
    surrogate is deliberately *not* clamped at 1.5 so that a layer collapsed to
    2 pixels still tells its ``alpha`` which way to move.

    Args:
        input_size (Sequence[int]): ``(H_in, W_in)``.
        alpha (Tensor): Inverse scale ``(alpha_h, alpha_w)``, shape ``(2,)``.

    Returns:
        Tensor: ``(H_out, W_out)`` of ``alpha``'s dtype, shape ``(2,)``.

    Example:
        >>> dynopool_output_size((7, 224), torch.tensor([10.0, 2.0]))
        tensor([  2., 112.])
    """
    cont = alpha.new_tensor(tuple(input_size)) / alpha
    hard = torch.floor(cont.detach().clamp(min=MIN_SIZE) + 0.5)
    # Parenthesised so the forward value is exactly the integer.
    return hard + (cont - cont.detach())


def dynopool2d(input: Tensor,
               alpha: Tensor,
               mode: str = 'max',
               position_grad: str = 'central') -> Tensor:
    """Resize ``input`` by ``1 / alpha`` with DynOPool.

    Every output cell bilinearly samples four query points (Eq. 2) and
    aggregates them with ``mode`` (``'max'`` as in the paper, or ``'avg'``).
    Gradients reach ``input`` (bilinear weights) and ``alpha`` (query
    positions through the straight-through size, Eq. 3-4).

    Args:
        input (Tensor): Feature map of shape ``(N, C, H_in, W_in)``.
        alpha (Tensor): Inverse scale factor ``(alpha_h, alpha_w)``, shape
            ``(2,)``.
        mode (str): Aggregation of the four query points, ``'max'`` or
            ``'avg'``. Default: ``'max'``.
        position_grad (str): Derivative of the sampled values w.r.t. the
            query positions at pixel-aligned queries: ``'central'`` or
            ``'one_sided'`` (module docstring). Default: ``'central'``.

    Returns:
        Tensor: Shape ``(N, C, H_out, W_out)``.

    Example:
        >>> x = torch.rand(2, 3, 7, 10)
        >>> dynopool2d(x, torch.tensor([2.0, 0.5])).shape
        torch.Size([2, 3, 4, 20])
    """
    if not isinstance(input, Tensor) or not isinstance(alpha, Tensor):
        raise TypeError('input and alpha must be tensors, got '
                        f'{type(input).__name__} and {type(alpha).__name__}')
    if input.dim() != 4:
        raise ValueError(f'input must be 4-D (N, C, H, W), got shape '
                         f'{tuple(input.shape)}')
    if not input.is_floating_point():
        raise TypeError('input must be a floating-point tensor (float16, '
                        'bfloat16, float32 or float64: bilinear sampling and '
                        f'the gradient of alpha need one), got {input.dtype}')
    if min(input.shape[-2:]) < 1:
        raise ValueError('input must have H >= 1 and W >= 1, got shape '
                         f'{tuple(input.shape)}')
    if not alpha.is_floating_point() or alpha.shape != (2, ):
        raise TypeError('alpha must be a floating-point tensor of shape '
                        f'(2,), got {alpha.dtype} {tuple(alpha.shape)}')
    if mode not in ('max', 'avg'):
        raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
    _check_position_grad(position_grad)
    if not bool(torch.all(torch.isfinite(alpha) & (alpha > 0))):
        raise AlphaDivergedError(
            'alpha (= 1 / scale) must be finite and > 0, got '
            f'{alpha.detach().tolist()}; if it diverged during training, '
            'lower the learning rate of alpha')
    size = dynopool_output_size(input.shape[-2:], alpha)
    h_out, w_out = (int(v) for v in size.detach().tolist())
    h_in, w_in = input.shape[-2:]
    if h_out > MAX_SCALE * h_in + 2 or w_out > MAX_SCALE * w_in + 2:
        raise AlphaDivergedError(
            f'DynOPool would resize {h_in}x{w_in} to {h_out}x{w_out}: '
            f'scale 1/alpha = {(1 / alpha.detach()).tolist()} exceeds the '
            f'cap MAX_SCALE = {MAX_SCALE:g} per axis; if alpha diverged '
            'during training, lower its learning rate')
    return _DynOPoolFunction.apply(input, size, h_out, w_out, mode,
                                   position_grad)


def _dynopool2d_sized(input: Tensor, size: Tensor, out_size: Tuple[int, int],
                      mode: str) -> Tensor:
    """DynOPool on an ``out_size`` grid whose query positions are the
    differentiable function of ``size`` given by Eq. (2), via one
    ``grid_sample`` (plain autograd).

    The reference for :class:`_DynOPoolFunction` (tests, benchmarks): with
    ``size`` a free tensor its size gradient can be checked by finite
    differences, which the straight-through estimator does not admit.
    """
    ys = _cell_query_coords(size[0], out_size[0])
    xs = _cell_query_coords(size[1], out_size[1])
    grid = torch.stack(torch.broadcast_tensors(xs[None, :], ys[:, None]), -1)
    grid = grid.to(input.dtype).expand(input.shape[0], -1, -1, -1)
    samples = F.grid_sample(
        input, grid, mode='bilinear', padding_mode='border',
        align_corners=False)
    if mode == 'max':
        return F.max_pool2d(samples, 2)
    return F.avg_pool2d(samples, 2)


def _pair_scale(init_scale: ScaleType) -> Tuple[float, float]:
    if isinstance(init_scale, Real) and not isinstance(init_scale, bool):
        pair = (float(init_scale), float(init_scale))
    elif (isinstance(init_scale, Sequence) and len(init_scale) == 2
          and all(isinstance(v, Real) and not isinstance(v, bool)
                  for v in init_scale)):
        pair = (float(init_scale[0]), float(init_scale[1]))
    else:
        raise TypeError('init_scale must be a positive float or a pair '
                        f'(r_h, r_w) of positive floats, got {init_scale!r}')
    if not all(math.isfinite(v) and v > 0 for v in pair):
        raise ValueError('init_scale must be finite and > 0 (r = 1/alpha), '
                         f'got {init_scale!r}')
    return pair


@MODELS.register_module()
class DynOPool2d(nn.Module):
    """Learnable resizing layer of DynOPool (CVPR 2022, Sec. 4.1).

    Holds ``alpha = (1 / r_h, 1 / r_w)`` (Eq. 6) and resizes its input to
    ``round(max(H_in * r_h, 1.5)) x round(max(W_in * r_w, 1.5))``. The same
    instance may be called from several places (e.g. every path into one
    HRNet stream) so that they share ``alpha`` and always agree on the size.

    Args:
        init_scale (float | tuple[float, float]): Initial scale factor
            ``r`` (``(r_h, r_w)`` or one value for both). ``0.5`` halves like
            a stride-2 layer, ``> 1`` up-samples; at most :data:`MAX_SCALE`.
            Default: 0.5.
        mode (str): Aggregation of the four query points, ``'max'`` or
            ``'avg'``. Default: ``'max'``.
        position_grad (str): Derivative w.r.t. the query positions where
            they sit on pixel centres: ``'central'`` (mean of both sides) or
            ``'one_sided'`` (what ``grid_sample`` picks); see the module
            docstring. Default: ``'central'``.
        fixed (bool): Freeze ``alpha`` (``requires_grad=False``), e.g. to
            retrain a learned shape from scratch ("Fix (Final)"). ``alpha``
            stays a parameter so checkpoint keys do not change.
            Default: False.
        device (torch.device, optional): Device of ``alpha``.
        dtype (torch.dtype, optional): Dtype of ``alpha``. Default: float32.

    Example:
        >>> pool = DynOPool2d(init_scale=(0.5, 0.75))
        >>> pool(torch.rand(1, 8, 32, 32)).shape
        torch.Size([1, 8, 16, 24])
        >>> pool.output_size((7, 7))
        (4, 5)
    """

    def __init__(self,
                 init_scale: ScaleType = 0.5,
                 mode: str = 'max',
                 position_grad: str = 'central',
                 fixed: bool = False,
                 device: Optional[torch.device] = None,
                 dtype: Optional[torch.dtype] = None) -> None:
        super().__init__()
        self.init_scale = _pair_scale(init_scale)
        if max(self.init_scale) > MAX_SCALE:
            raise ValueError(f'init_scale must be <= MAX_SCALE = '
                             f'{MAX_SCALE:g} per axis, got {init_scale!r}')
        if not isinstance(fixed, bool):
            raise TypeError(f'fixed must be a bool, got {fixed!r}')
        if dtype is not None and not (isinstance(dtype, torch.dtype)
                                      and dtype.is_floating_point):
            raise TypeError('dtype must be a floating-point torch.dtype, got '
                            f'{dtype!r}')
        if mode not in ('max', 'avg'):
            raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
        self.mode = mode
        _check_position_grad(position_grad)
        self.position_grad = position_grad
        self.alpha = nn.Parameter(torch.empty(2, device=device, dtype=dtype))
        self.reset_parameters()
        self.fixed = fixed

    @property
    def fixed(self) -> bool:
        return not self.alpha.requires_grad

    @fixed.setter
    def fixed(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f'fixed must be a bool, got {value!r}')
        self.alpha.requires_grad_(not value)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.alpha.copy_(
                torch.tensor([1 / r for r in self.init_scale],
                             dtype=self.alpha.dtype))

    @property
    def scale(self) -> Tuple[float, float]:
        """Current scale factor ``(r_h, r_w) = 1 / alpha``."""
        a_h, a_w = self.alpha.detach().tolist()
        return 1 / a_h, 1 / a_w

    def output_size(self, input_size: Sequence[int]) -> Tuple[int, int]:
        """Integer ``(H_out, W_out)`` for an input of ``(H_in, W_in)``."""
        h, w = self.continuous_output_size(input_size).detach().tolist()
        return int(h), int(w)

    def continuous_output_size(self, input_size: Sequence[int]) -> Tensor:
        """Differentiable ``(H_out, W_out)``: integer forward value, gradient
        of ``H_in / alpha_h`` (the straight-through estimator, Eq. 3-4)."""
        return dynopool_output_size(input_size, self.alpha)

    def forward(self, x: Tensor) -> Tensor:
        return dynopool2d(x, self.alpha, self.mode, self.position_grad)

    def extra_repr(self) -> str:
        r_h, r_w = self.scale
        return (f'scale=({r_h:.4g}, {r_w:.4g}), mode={self.mode!r}, '
                f'position_grad={self.position_grad!r}, fixed={self.fixed}')
