"""The autograd function of DynOPool: forward, the input gradient and the
two conventions for the derivative w.r.t. the output size (hence alpha);
see the "Position derivative" notes of :mod:`.dynopool`.
"""
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils._python_dispatch import _get_current_dispatch_mode

from ...ops import dynopool_cpu_ext

#: Conventions for the derivative w.r.t. query positions (see
#: :mod:`.dynopool`).
POSITION_GRADS = ('central', 'one_sided')


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
        # Backward uses the same path as forward (the kernel's saved winner
        # codes), even where a dispatch mode watches the backward only.
        ctx.ext = ext
        if ext is not None:
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
        if ctx.ext is not None:
            need_x, need_size = ctx.needs_input_grad[:2]
            grad_x, grad_size = ctx.ext.backward(
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
