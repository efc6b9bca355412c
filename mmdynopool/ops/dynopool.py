"""DynOPool as dispatcher ops: ``mmdynopool::dynopool_forward`` and
``mmdynopool::dynopool_backward``.

One schema, a fake (meta) implementation, autograd registered with the op,
and one backend per device: the fused CPU kernel (:mod:`.kernel`, float32 /
float64 ``'max'``) where it is loaded, and the device-generic PyTorch
implementation below everywhere else (CUDA, other dtypes, ``'avg'``). The
generic implementation is also the reference the kernel is tested against:
both compute the same numbers in the same order, so forward values, winners
and ties agree bit for bit, and gradients up to float summation order.

Definitions (all exact, in integer arithmetic where positions are concerned):

* Output cell ``i`` of ``n`` along an axis of ``n_in`` pixels has two query
  rows ``k = 2 i + a`` (``a`` in 0, 1) at pixel position
  ``t_k = ((2 k + 1) n_in - 2 n) / (4 n)`` (Eq. 2 in ``grid_sample``'s
  ``align_corners=False`` pixel units). ``p = floor(t_k)`` and the remainder
  are integers; the bilinear weight is ``rem / (4 n)`` rounded once to the
  compute dtype; positions outside ``[0, n_in - 1]`` clamp to the border.
* A query value is interpolated along the height first, then the width,
  each as ``near + (far - near) * w_far`` from the pixel of the larger weight
  (separately rounded operations, :func:`_lerp`), so that candidates equal in
  exact arithmetic on a pixel, in a constant region or in a mirror image (two
  queries symmetric about a pixel) are bit-identical: tied. The cell's four
  candidates are taken in row-major order; the winner is the first maximum (the
  first NaN, if any), as in ``max_pool2d``. Every candidate exactly equal to
  the winner is *tied*.
* The derivative w.r.t. the output size ``n`` (hence alpha): a candidate's
  value moves with its query, ``d t_k / d n = -n_in (2 k + 1) / (4 n^2)``.
  Where ``t_k`` sits on a pixel centre the slope has two sides, so each
  candidate has two one-sided derivatives: ``D+`` (``n`` growing, queries
  moving to lower pixel coordinates, the left slope) and ``D-`` (``n``
  shrinking, the right slope); outside the input both are zero, and so is
  the outer side of a border pixel. The cell's output is the max over its
  candidates, so its one-sided derivatives are ``max D+`` and ``min D-``
  over the tied set (for a single winner, the winner's). ``'central'``
  takes their mean, ``'one_sided'`` takes ``min D-``: the derivative as
  alpha grows (what a ``grid_sample`` implementation returns where no
  rounding flips the side). ``'avg'`` averages the four candidates' values
  and derivatives.

Sizes are passed in as ints (``SymInt`` under ``torch.compile``): the caller
reads alpha once, computes them exactly, and the ops never read a device
value on the host. The alpha gradient is ``dL/dn * d n / d alpha`` with the
straight-through ``n = n_in / alpha`` (Eq. 3-4), computed on the device.
"""
from typing import Tuple

import torch
from torch import Tensor

from .kernel import fused_kernel_applies

__all__ = [
    'dynopool_forward', 'dynopool_backward', 'forward_generic',
    'backward_generic', 'MODES', 'POSITION_GRADS'
]

MODES = ('max', 'avg')
POSITION_GRADS = ('central', 'one_sided')


def _lerp(v0: Tensor, v1: Tensor, w0: Tensor, w1: Tensor) -> Tensor:
    """Linear interpolation ``v0 w0 + v1 w1`` (``w0 + w1 = 1``) computed as
    ``near + (far - near) * w_far``, ``near`` being the value of the larger
    weight (at equal weights, the smaller value). Separately rounded
    operations (no ``torch.lerp``, whose kernels may fuse them), so that
    values equal in exact arithmetic come out bit-identical in the common
    cases: a query on a pixel or clamped outside the input (exactly that
    pixel), a constant region (``v0 == v1``) and a mirror image (the same
    two values with swapped weights, e.g. two queries symmetric about a
    pixel next to a ReLU zero)."""
    first = w0 > w1
    half = w0 == w1
    near = torch.where(first, v0, torch.where(half, torch.minimum(v0, v1), v1))
    far = torch.where(first, v1, torch.where(half, torch.maximum(v0, v1), v0))
    return near + (far - near) * torch.minimum(w0, w1)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp16 / bf16 inputs are sampled and differentiated in float32."""
    return torch.promote_types(dtype, torch.float32)


def axis_tables(n_in: int,
                n_out: int,
                dtype: torch.dtype,
                device=None) -> dict:
    """Exact per-axis tables of the ``2 n_out`` query positions.

    Returns:
        dict: ``i0``, ``i1`` (int64, interpolation pixels), ``w0``, ``w1``
        (``dtype``: the weights ``(4 n - rem) / (4 n)`` and ``rem / (4 n)``,
        each rounded once), ``rows`` (int64,
        ``(3, 2 n_out)``: pixels ``p - 1, p, p + 1``, clamped),
        ``aligned`` (bool, on a pixel centre), ``c_right`` and ``c_left``
        (float64: ``d t / d n`` where the right / left slope exists, else
        0).
    """
    k = torch.arange(2 * n_out, device=device, dtype=torch.int64)
    num = (2 * k + 1) * n_in - 2 * n_out
    den = 4 * n_out
    p = torch.div(num, den, rounding_mode='floor')
    rem = num - p * den
    last = n_in - 1
    inside = (num >= 0) & (num <= last * den)
    zero = torch.zeros((), dtype=torch.float64, device=device)
    w1 = torch.where(inside, rem.double() / den, zero)
    w0 = torch.where(inside, (den - rem).double() / den, zero + 1)
    dtdn = (n_in / 2) * -(2 * k + 1).double() / (2 * n_out * n_out)
    return dict(
        i0=p.clamp(0, last),
        i1=(p + 1).clamp(0, last),
        w0=w0.to(dtype),
        w1=w1.to(dtype),
        rows=torch.stack([p - 1, p, p + 1]).clamp(0, last),
        aligned=rem == 0,
        c_right=torch.where((num >= 0) & (num < last * den), dtdn, zero),
        c_left=torch.where((num > 0) & (num <= last * den), dtdn, zero))


def _check(x: Tensor, mode: str, position_grad: str) -> None:
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
    if position_grad not in POSITION_GRADS:
        raise ValueError(f'position_grad must be one of {POSITION_GRADS}, '
                         f'got {position_grad!r}')


def _winner(q):
    """First maximum (first NaN) of the four candidates, the tie mask."""
    best, arg = q[0], torch.zeros_like(q[0], dtype=torch.uint8)
    for m in range(1, 4):
        take = (q[m] > best) | (torch.isnan(q[m]) & ~torch.isnan(best))
        best = torch.where(take, q[m], best)
        arg = torch.where(take, torch.full_like(arg, m), arg)
    code = arg
    for m in range(4):
        tied = (q[m] == best) | (arg == m)
        code = code | (tied.to(torch.uint8) << (2 + m))
    return best, code


def forward_generic(x: Tensor,
                    h: int,
                    w: int,
                    mode: str = 'max') -> Tuple[Tensor, Tensor]:
    """DynOPool forward in plain PyTorch (any device, any float dtype).

    Args:
        x (Tensor): ``(N, C, H, W)``.
        h (int): Output height.
        w (int): Output width.
        mode (str): ``'max'`` or ``'avg'``.

    Returns:
        tuple[Tensor, Tensor]: The output ``(N, C, h, w)`` in ``x``'s dtype
        and, for ``'max'``, the ``uint8`` code of every cell (bits 0-1: the
        winner, bit ``2 + m``: candidate ``m`` tied with it); an empty
        ``uint8`` tensor for ``'avg'``.

    Example:
        >>> out, code = forward_generic(torch.rand(2, 3, 8, 6), 4, 3)
        >>> out.shape, code.dtype
        (torch.Size([2, 3, 4, 3]), torch.uint8)
    """
    cdt = _compute_dtype(x.dtype)
    N, C = x.shape[:2]
    th = axis_tables(x.shape[-2], h, cdt, x.device)
    tw = axis_tables(x.shape[-1], w, cdt, x.device)
    fmt = _memory_format(x)
    out = torch.empty((N, C, h, w), dtype=x.dtype, device=x.device)
    code = torch.empty(
        (N, C, h, w) if mode == 'max' else (0, ),
        dtype=torch.uint8,
        device=x.device)
    for n, c in _chunks(x):
        q = []
        # One query row of every cell at a time (a), interpolated along the
        # height over all columns, then at the two query columns (b).
        for a in (0, 1):
            ks = _cells(h, a, x.device)
            rows = _lerp(x[n, c].index_select(-2, th['i0'][ks]).to(cdt),
                         x[n, c].index_select(-2, th['i1'][ks]).to(cdt),
                         th['w0'][ks][:, None], th['w1'][ks][:, None])
            for b in (0, 1):
                ls = _cells(w, b, x.device)
                q.append(
                    _lerp(
                        rows.index_select(-1, tw['i0'][ls]),
                        rows.index_select(-1, tw['i1'][ls]), tw['w0'][ls],
                        tw['w1'][ls]))
            del rows
        if mode == 'avg':
            out[n, c] = ((q[0] + q[1]) + (q[2] + q[3])) / 4
        else:
            out[n, c], code[n, c] = _winner(q)
        del q
    return out.contiguous(memory_format=fmt), code


#: Most elements of the input processed at once by the generic
#: implementation (64 MB in float32).
CHUNK_ELEMENTS = 1 << 24
#: The generic implementation processes the input in at least this many
#: pieces (of whole planes): its temporaries, about 3.5 times a piece's
#: size, then stay below the input's size. In one piece a down-sampling
#: call peaked at 3.8-5.3x its input (profiler); in four, 1.4-1.6x, and the
#: CPU run time changed by -40 % (large inputs, better cache use) to +60 %
#: (a 1x256x14x14 input, more kernel launches). An input of fewer planes
#: (e.g. ``N = C = 1``) cannot be split this way.
MIN_CHUNKS = 4


def _chunks(x: Tensor):
    """``(batch slice, channel slice)`` pairs covering ``x`` in at least
    :data:`MIN_CHUNKS` pieces of at most :data:`CHUNK_ELEMENTS` elements
    where whole planes allow (views, whatever the memory format)."""
    N, C, H, W = x.shape
    plane = max(H * W, 1)
    most = min(CHUNK_ELEMENTS, -(-N * C * plane // MIN_CHUNKS))
    per = max(1, most // plane)  # planes per chunk
    if per >= C:
        step = max(1, per // C)
        for n0 in range(0, N, step):
            yield slice(n0, min(N, n0 + step)), slice(0, C)
    else:
        for n0 in range(N):
            for c0 in range(0, C, per):
                yield slice(n0, n0 + 1), slice(c0, min(C, c0 + per))


def _cells(n: int, parity: int, device) -> Tensor:
    """Query index ``2 i + parity`` of every cell ``i`` along an axis."""
    return torch.arange(n, device=device) * 2 + parity


def _memory_format(x: Tensor):
    return (torch.channels_last if not x.is_contiguous() and x.is_contiguous(
        memory_format=torch.channels_last) else torch.contiguous_format)


def _flat(rows: Tensor, cols: Tensor, width: int) -> Tensor:
    """Flat ``(h * w)`` pixel index of ``rows[:, None]`` x ``cols[None]``."""
    return (rows[:, None] * width + cols[None, :]).reshape(-1)


def backward_generic(grad_out: Tensor,
                     x: Tensor,
                     alpha: Tensor,
                     code: Tensor,
                     h: int,
                     w: int,
                     mode: str = 'max',
                     position_grad: str = 'central',
                     need_x: bool = True,
                     need_alpha: bool = True) -> Tuple[Tensor, Tensor]:
    """DynOPool backward in plain PyTorch; differentiable itself (double
    backward), deterministic, and lean: besides the input gradient it holds
    a few tensors of the output's size at a time (no ``2 h x 2 w`` grid).

    Args:
        grad_out (Tensor): Gradient of the output, ``(N, C, h, w)``.
        x (Tensor): The forward input, ``(N, C, H, W)``.
        alpha (Tensor): The layer's ``(alpha_h, alpha_w)``.
        code (Tensor): The forward's ``uint8`` code (``'max'``; empty for
            ``'avg'``).
        h (int): Output height.
        w (int): Output width.
        mode (str): ``'max'`` or ``'avg'``. Default: ``'max'``.
        position_grad (str): ``'central'`` or ``'one_sided'``. Default:
            ``'central'``.
        need_x (bool): Compute ``grad_x``. Default: True.
        need_alpha (bool): Compute ``grad_alpha``. Default: True.

    Returns:
        tuple[Tensor, Tensor]: ``grad_x`` (``x``'s shape and dtype, or None)
        and ``grad_alpha`` (alpha's shape and dtype, or None).
    """
    cdt = _compute_dtype(x.dtype)
    N, C, H, W = x.shape
    th = axis_tables(H, h, cdt, x.device)
    tw = axis_tables(W, w, cdt, x.device)
    grad_x = grad_alpha = None
    cand = [(_cells(h, m // 2, x.device), _cells(w, m % 2, x.device))
            for m in range(4)]
    if need_alpha:
        dn = [0, 0]
        for n, c in _chunks(x):
            parts = _alpha_chunk(grad_out[n, c].to(cdt), x[n, c],
                                 code[n, c] if mode == 'max' else code, th, tw,
                                 cand, mode, position_grad, cdt)
            dn = [dn[0] + parts[0], dn[1] + parts[1]]
        # Straight-through n = n_in / alpha: dn / dalpha = -n_in / a^2.
        grad_alpha = torch.stack([
            dn[axis] * (-n_in) / alpha[axis].double()**2
            for axis, n_in in enumerate((H, W))
        ]).to(alpha.dtype)
    if need_x:
        # Each cell's gradient goes to its winner's four pixels (to all four
        # candidates, a quarter each, for 'avg'): scattered along the width
        # into rows of the output's height, then along the height.
        grad_x = torch.zeros((N, C, H, W), dtype=cdt, device=x.device)
        for n, c in _chunks(x):
            g = grad_out[n, c].to(cdt)
            k = code[n, c] if mode == 'max' else code
            for a in (0, 1):
                ks = cand[2 * a][0]
                part = g.new_zeros((*g.shape[:2], h, W))
                for b in (0, 1):
                    ls = cand[2 * a + b][1]
                    gm = _candidate_grad(g, k, 2 * a + b, mode)
                    part.index_add_(-1, tw['i0'][ls], gm * tw['w0'][ls])
                    part.index_add_(-1, tw['i1'][ls], gm * tw['w1'][ls])
                    del gm
                gx = grad_x[n, c]
                gx.index_add_(-2, th['i0'][ks], part * th['w0'][ks][:, None])
                gx.index_add_(-2, th['i1'][ks], part * th['w1'][ks][:, None])
                del part
        grad_x = grad_x.to(x.dtype).contiguous(memory_format=_memory_format(x))
    return grad_x, grad_alpha


def _alpha_chunk(g, x, code, th, tw, cand, mode, position_grad, cdt):
    """``(dL/dn_h, dL/dn_w)`` (float64 scalars) of one chunk of planes."""
    N, C, H, W = x.shape
    xf = x.reshape(N, C, H * W)
    out = []
    for axis in (0, 1):
        ta, tb = (th, tw) if axis == 0 else (tw, th)
        plus = minus = None  # max D+ and min D- over tied candidates
        for m in range(4):
            idx_a, idx_b = cand[m] if axis == 0 else cand[m][::-1]
            d_plus, d_minus = _candidate_derivatives(xf, ta, tb, idx_a, idx_b,
                                                     axis, W, cdt)
            if mode == 'avg':
                plus = d_plus / 4 if plus is None else plus + d_plus / 4
                minus = d_minus / 4 if minus is None else minus + d_minus / 4
                continue
            tied = ((code >> (2 + m)) & 1).bool()
            d_plus = d_plus.masked_fill(~tied, float('-inf'))
            d_minus = d_minus.masked_fill(~tied, float('inf'))
            plus = d_plus if plus is None else torch.maximum(plus, d_plus)
            minus = d_minus if minus is None else torch.minimum(minus, d_minus)
            del d_plus, d_minus, tied
        d = plus.add_(minus).div_(2) if position_grad == 'central' else minus
        out.append((g * d).sum(dtype=torch.float64))
        del plus, minus, d
    return out


def _candidate_grad(g: Tensor, code: Tensor, m: int, mode: str) -> Tensor:
    """The part of the output gradient that candidate ``m`` receives."""
    if mode == 'avg':
        return g / 4
    return g.masked_fill((code & 3) != m, 0)


def _candidate_derivatives(xf, ta, tb, idx_a, idx_b, axis, W, cdt):
    """``(D+, D-)`` of one candidate of every cell along ``axis`` (0: height,
    1: width): slopes between the pixels around its query along ``axis``,
    interpolated along the other axis, times ``d t / d n``."""
    N, C = xf.shape[:2]
    lo, mid, hi = ta['rows'][:, idx_a]
    o0, o1 = tb['i0'][idx_b], tb['i1'][idx_b]
    ow0, ow1 = tb['w0'][idx_b], tb['w1'][idx_b]
    shape = (N, C, idx_a.numel(), idx_b.numel()) if axis == 0 else \
        (N, C, idx_b.numel(), idx_a.numel())
    w0, w1 = (ow0[None], ow1[None]) if axis == 0 else (ow0[:, None], ow1[:,
                                                                         None])

    def gather(along, across):
        idx = _flat(along, across, W) if axis == 0 else _flat(across, along, W)
        return xf.index_select(-1, idx).reshape(shape).to(cdt)

    def slope(p0, p1):  # x[p1] - x[p0] along the axis, interpolated across
        # In place, one output-sized temporary at a time (autograd records
        # these too: none of them needs an overwritten value).
        out = gather(p1, o0).sub_(gather(p0, o0)).mul_(w0)
        return out.add_(gather(p1, o1).sub_(gather(p0, o1)).mul_(w1))

    right = slope(mid, hi)
    left = torch.where(
        _along(ta['aligned'][idx_a], axis), slope(lo, mid), right)
    c_right = _along(ta['c_right'][idx_a], axis).to(cdt)
    c_left = _along(ta['c_left'][idx_a], axis).to(cdt)
    return left.mul_(c_left), right.mul_(c_right)


def _along(v: Tensor, axis: int) -> Tensor:
    """A per-row (axis 0) or per-column (axis 1) table, broadcastable."""
    return v[:, None] if axis == 0 else v[None, :]


# -- the ops ---------------------------------------------------------------


@torch.library.custom_op('mmdynopool::dynopool_forward', mutates_args=())
def dynopool_forward(x: Tensor, alpha: Tensor, h: int, w: int, mode: str,
                     position_grad: str) -> Tuple[Tensor, Tensor]:
    """``(output, code)`` of DynOPool on an ``h x w`` grid (see the module
    docstring); ``alpha`` and ``position_grad`` are used by the backward.
    """
    _check(x, mode, position_grad)
    return forward_generic(x, h, w, mode)


@dynopool_forward.register_kernel('cpu')
def _forward_cpu(x, alpha, h, w, mode, position_grad):
    _check(x, mode, position_grad)
    if fused_kernel_applies(x, mode):
        out, code = torch.ops.mmdynopool_cpu.dynopool_max_forward(
            x.contiguous(), h, w)
        return out.contiguous(memory_format=_memory_format(x)), code
    return forward_generic(x, h, w, mode)


@dynopool_forward.register_fake
def _forward_fake(x, alpha, h, w, mode, position_grad):
    out = x.new_empty((x.shape[0], x.shape[1], h, w))
    if mode == 'avg':
        return out, x.new_empty(0, dtype=torch.uint8)
    return out, x.new_empty((x.shape[0], x.shape[1], h, w), dtype=torch.uint8)


@torch.library.custom_op('mmdynopool::dynopool_backward', mutates_args=())
def dynopool_backward(grad_out: Tensor, x: Tensor, alpha: Tensor, code: Tensor,
                      h: int, w: int, mode: str, position_grad: str,
                      need_x: bool, need_alpha: bool) -> Tuple[Tensor, Tensor]:
    """``(grad_x, grad_alpha)``; a gradient not asked for is an empty
    tensor."""
    gx, ga = backward_generic(grad_out, x, alpha, code, h, w, mode,
                              position_grad, need_x, need_alpha)
    return _or_empty(gx, x), _or_empty(ga, alpha)


def _or_empty(t, like):
    return like.new_empty(0) if t is None else t


@dynopool_backward.register_kernel('cpu')
def _backward_cpu(grad_out, x, alpha, code, h, w, mode, position_grad, need_x,
                  need_alpha):
    if fused_kernel_applies(x, mode):
        gx, dn = torch.ops.mmdynopool_cpu.dynopool_max_backward(
            x.contiguous(), grad_out.contiguous(), code, need_x, need_alpha,
            position_grad == 'central')
        ga = None
        if need_alpha:
            n_in = dn.new_tensor(x.shape[-2:])
            ga = (dn * -n_in / alpha.double()**2).to(alpha.dtype)
        if need_x:
            gx = gx.contiguous(memory_format=_memory_format(x))
        return _or_empty(gx if need_x else None, x), _or_empty(ga, alpha)
    gx, ga = backward_generic(grad_out, x, alpha, code, h, w, mode,
                              position_grad, need_x, need_alpha)
    return _or_empty(gx, x), _or_empty(ga, alpha)


@dynopool_backward.register_fake
def _backward_fake(grad_out, x, alpha, code, h, w, mode, position_grad, need_x,
                   need_alpha):
    return (torch.empty_like(x) if need_x else x.new_empty(0),
            torch.empty_like(alpha) if need_alpha else alpha.new_empty(0))


def _setup_context(ctx, inputs, output):
    x, alpha, h, w, mode, position_grad = inputs
    ctx.save_for_backward(x, alpha, output[1])
    ctx.hw, ctx.mode, ctx.position_grad = (h, w), mode, position_grad
    ctx.mark_non_differentiable(output[1])


def _backward(ctx, grad_out, _grad_code):
    x, alpha, code = ctx.saved_tensors
    h, w = ctx.hw
    need_x, need_alpha = ctx.needs_input_grad[:2]
    if torch.is_grad_enabled():
        # create_graph=True: the plain-PyTorch backward records its own
        # graph, so second derivatives are exact on every path.
        gx, ga = backward_generic(grad_out, x, alpha, code, h, w, ctx.mode,
                                  ctx.position_grad, need_x, need_alpha)
    else:
        gx, ga = torch.ops.mmdynopool.dynopool_backward(
            grad_out, x, alpha, code, h, w, ctx.mode, ctx.position_grad,
            need_x, need_alpha)
    return (gx if need_x else None, ga if need_alpha else None, None, None,
            None, None)


dynopool_forward.register_autograd(_backward, setup_context=_setup_context)
