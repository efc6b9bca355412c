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
"""
import math
from numbers import Real
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor, nn
from torch.utils._python_dispatch import _get_current_dispatch_mode

from ...ops import dynopool_cpu_ext

__all__ = [
    'DynOPool2d', 'dynopool2d', 'dynopool_output_size', 'MIN_SIZE',
    'POSITION_GRADS', 'MAX_SCALE', 'AlphaDivergedError'
]

#: Lower bound of the continuous size before rounding (paper Sec. 5.1):
#: ``round(max(x, 1.5)) >= 2``.
MIN_SIZE = 1.5

#: Conventions for the derivative w.r.t. query positions (module docstring).
POSITION_GRADS = ('central', 'one_sided')


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


def _cell_query_coords(size: Tensor, n: int) -> Tensor:
    """Normalised coordinates of the 2n query points along one axis.

    The four query points of output cell ``i`` (Eq. 2) sit at
    ``p_i +- 1/(2 n)`` with ``p_i = -1 + (2 i + 1) / n``, i.e. exactly at the
    centres of a ``2n`` grid: ``-1 + (2 k + 1) / (2 n)``, ``k = 0..2n-1``.
    ``size`` is the straight-through size whose forward value is ``n``, which
    is how ``alpha`` receives the gradient of the query positions.
    """
    k = torch.arange(2 * n, device=size.device, dtype=size.dtype)
    return -1 + (2 * k + 1) / (2 * size)


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


def _check_position_grad(position_grad) -> None:
    if position_grad not in POSITION_GRADS:
        raise ValueError(f'position_grad must be one of {POSITION_GRADS}, '
                         f'got {position_grad!r}')


class _DynOPoolFunction(torch.autograd.Function):
    """DynOPool as ``bilinear resize to 2 H_out x 2 W_out -> 2x2 max``.

    The four query points of every output cell are the centres of a
    ``2 H_out x 2 W_out`` grid, so ``F.interpolate(align_corners=False)``
    (which clamps like ``padding_mode='border'``) samples exactly what four
    ``grid_sample`` calls would; a 2x2 max (or average) pool aggregates
    them. Backward:

    * input: the native bilinear-interpolation backward;
    * size (hence alpha, through the straight-through estimator outside):
      the derivative of the sampled values w.r.t. the query positions, times
      ``dg/dH_out = -(2k + 1) / (2 H_out^2)``. ``'one_sided'``:
      ``grid_sampler_2d_backward`` restricted to the grid gradient, i.e.
      exactly a ``grid_sample`` reference's derivative; ``'central'``: the
      per-axis tables of :func:`_position_tables` (exact rational query
      positions). fp16 / bf16 inputs use float32 there.

    For ``'max'`` on float32 / float64 CPU tensors the compiled kernel of
    :mod:`mmdynopool.ops` (when it could be built) does all of this in one
    pass each way with the same conventions: it samples the four queries of
    each cell, keeps the index of the winner (one byte per output) and, in
    backward, scatters the input gradient and accumulates the position
    derivative only at that winner.
    """

    @staticmethod
    def forward(ctx, x: Tensor, size: Tensor, h: int, w: int, mode: str,
                position_grad: str) -> Tensor:
        ctx.hw, ctx.mode, ctx.size_dtype = (h, w), mode, size.dtype
        ctx.central = position_grad == 'central'
        ext = _fused_kernel(x, mode)
        ctx.fused = ext is not None
        if ctx.fused:
            fmt = (torch.channels_last if x.dim() == 4 and not
                   x.is_contiguous() and x.is_contiguous(
                       memory_format=torch.channels_last) else
                   torch.contiguous_format)
            xc = x.contiguous()
            out, code = ext.forward(xc, h, w)
            ctx.save_for_backward(xc, code)
            ctx.fmt = fmt
            return out.contiguous(memory_format=fmt)
        up = F.interpolate(x, size=(2 * h, 2 * w), mode='bilinear',
                           align_corners=False)
        if mode == 'max':
            out, idx = F.max_pool2d(up, 2, return_indices=True)
            ctx.save_for_backward(x, idx)
        else:
            out = F.avg_pool2d(up, 2)
            ctx.save_for_backward(x)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x = ctx.saved_tensors[0]
        h, w = ctx.hw
        if ctx.fused:
            need_x, need_size = ctx.needs_input_grad[:2]
            grad_x, grad_size = _fused_kernel(x, 'max').backward(
                x, grad_out.contiguous(), ctx.saved_tensors[1], need_x,
                need_size, ctx.central)
            grad_x = grad_x.contiguous(
                memory_format=ctx.fmt) if need_x else None
            grad_size = grad_size.to(ctx.size_dtype) if need_size else None
            return grad_x, grad_size, None, None, None, None
        if ctx.mode == 'max':
            grad_up = F.max_unpool2d(grad_out.contiguous(),
                                     ctx.saved_tensors[1], 2,
                                     output_size=(2 * h, 2 * w))
        else:
            grad_up = F.interpolate(grad_out, scale_factor=2,
                                    mode='nearest') / 4
        grad_x = grad_size = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.upsample_bilinear2d_backward(
                grad_up, [2 * h, 2 * w], list(x.shape), False)
        if ctx.needs_input_grad[1]:
            dtype = torch.promote_types(x.dtype, torch.float32)
            if ctx.central:
                grad_size = _central_size_grad(x.to(dtype), grad_up.to(dtype))
            else:
                grad_size = _one_sided_size_grad(x.to(dtype),
                                                 grad_up.to(dtype))
            grad_size = grad_size.to(ctx.size_dtype)
        return grad_x, grad_size, None, None, None, None


def _one_sided_size_grad(x: Tensor, grad_up: Tensor) -> Tensor:
    """``(d/dH_out, d/dW_out)`` with ``grid_sampler_2d``'s derivative.

    ``grad_up`` is the gradient w.r.t. the ``2 H_out x 2 W_out`` query grid.
    """
    h, w = grad_up.shape[-2] // 2, grad_up.shape[-1] // 2
    size = torch.tensor([h, w], dtype=torch.float64, device=x.device)
    ys = _cell_query_coords(size[0], h)
    xs = _cell_query_coords(size[1], w)
    grid = torch.stack(torch.broadcast_tensors(xs[None, :], ys[:, None]), -1)
    grid = grid.to(x.dtype).expand(x.shape[0], -1, -1, -1).contiguous()
    grad_grid = torch.ops.aten.grid_sampler_2d_backward(
        grad_up, x, grid, 0, 1, False, [False, True])[1]
    # d g_k / d H_out = -(2k + 1) / (2 H_out^2), per row / column.
    k_h = torch.arange(2 * h, device=x.device, dtype=torch.float64)
    k_w = torch.arange(2 * w, device=x.device, dtype=torch.float64)
    per_row = grad_grid[..., 1].sum((0, 2), dtype=torch.float64)
    per_col = grad_grid[..., 0].sum((0, 1), dtype=torch.float64)
    return torch.stack([(per_row * -(2 * k_h + 1) / (2 * h**2)).sum(),
                        (per_col * -(2 * k_w + 1) / (2 * w**2)).sum()])


def _position_tables(n_in: int, n_out: int, device=None):
    """Per-axis tables of the ``2 n_out`` query positions, exact.

    Query ``k`` sits at pixel ``t_k = ((2k + 1) n_in - 2 n_out) / (4 n_out)``
    (``grid_sample``'s ``align_corners=False`` un-normalisation of
    :func:`_cell_query_coords`), computed as an integer fraction.

    Returns:
        tuple: ``(i0, i1, frac, lo, hi, mult)``. ``x[i0] (1 - frac) +
        x[i1] frac`` is the border-clamped linear interpolation at ``t_k``;
        ``(x[hi] - x[lo]) * mult`` is the ``'central'`` derivative of that
        interpolation w.r.t. ``t_k`` times ``d t_k / d n_out``: ``lo = t_k``,
        ``hi = t_k + 1`` between pixels; ``(t_k - 1, t_k + 1)`` (clamped to
        the border) and half the slope on a pixel; zero outside the input,
        where the clamp makes the value constant.
    """
    k = torch.arange(2 * n_out, device=device, dtype=torch.int64)
    num, den = (2 * k + 1) * n_in - 2 * n_out, 4 * n_out
    p0 = torch.div(num, den, rounding_mode='floor')
    rem = num - p0 * den
    last = n_in - 1
    inside = (num >= 0) & (num <= last * den)
    aligned = rem == 0
    i0 = p0.clamp(0, last)
    i1 = (p0 + 1).clamp(0, last)
    frac = torch.where(inside, rem.double() / den, torch.zeros_like(
        rem, dtype=torch.float64))
    lo = torch.where(aligned, p0 - 1, p0).clamp(0, last)
    hi = (p0 + 1).clamp(0, last)
    slope = torch.where(aligned, 0.5, 1.0) * inside
    # d t_k / d g = n_in / 2; d g_k / d n_out = -(2k + 1) / (2 n_out^2).
    mult = slope * (n_in / 2) * -(2 * k + 1).double() / (2 * n_out**2)
    return i0, i1, frac, lo, hi, mult


def _central_size_grad(x: Tensor, grad_up: Tensor) -> Tensor:
    """``(d/dH_out, d/dW_out)`` with the ``'central'`` position derivative.

    ``grad_up`` is the gradient w.r.t. the ``2 H_out x 2 W_out`` query grid.
    """
    h, w = grad_up.shape[-2] // 2, grad_up.shape[-1] // 2
    H, W = x.shape[-2:]
    yi0, yi1, yf, ylo, yhi, ymult = _position_tables(H, h, x.device)
    xi0, xi1, xf, xlo, xhi, xmult = _position_tables(W, w, x.device)
    yf, xf = yf.to(x.dtype)[:, None], xf.to(x.dtype)
    # Values interpolated along the other axis, then differenced.
    along_w = x[..., xi0] * (1 - xf) + x[..., xi1] * xf  # (N, C, H, 2w)
    d_h = along_w[..., yhi, :] - along_w[..., ylo, :]
    along_h = x[..., yi0, :] * (1 - yf) + x[..., yi1, :] * yf  # (N,C,2h,W)
    d_w = along_h[..., xhi] - along_h[..., xlo]
    per_row = (grad_up * d_h).sum((0, 1, 3), dtype=torch.float64)
    per_col = (grad_up * d_w).sum((0, 1, 2), dtype=torch.float64)
    return torch.stack([(per_row * ymult).sum(), (per_col * xmult).sum()])


def _fused_kernel(x: Tensor, mode: str):
    """The compiled CPU kernel when it applies (max mode, float32 / float64
    CPU tensors, kernel built, no dispatch mode such as ``FlopCounterMode``
    watching: those see only aten ops), else ``None``."""
    if mode != 'max' or x.device.type != 'cpu' or x.dtype not in (
            torch.float32, torch.float64) or \
            _get_current_dispatch_mode() is not None:
        return None
    return dynopool_cpu_ext()


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
