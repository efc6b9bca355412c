"""DynOPool: dynamically optimised pooling (Jang et al., CVPR 2022).

Convention:
    * Sizes and scales are ``(h, w)`` ordered.
    * Normalised coordinates follow ``F.grid_sample(align_corners=False)``:
      ``(-1, -1)`` and ``(1, 1)`` are the *outer corners* of the input, so
      pixel ``i`` of ``n`` has its centre at ``-1 + (2 i + 1) / n``.
    * Queries that fall outside the input clamp to the border, as
      ``F.interpolate(mode='bilinear', align_corners=False)`` does.
    * Output size: ``round(max(H_in / alpha_h, 1.5))`` with round-half-up,
      so it is never below 2, and ``r = 0.5`` reproduces a
      ``3x3/stride 2/pad 1`` convolution's ``ceil(H_in / 2)`` on odd sizes.
      It is computed exactly from alpha's value (as a fraction of integers),
      whatever alpha's dtype: ``bfloat16`` alpha 2 on 1021 px gives 511.

Position derivative (``position_grad``):
    Query positions depend only on the integer output size ``n``: query
    ``k`` of ``2 n`` sits at pixel ``((2 k + 1) H_in - 2 n) / (4 n)``. It
    lands exactly on a pixel centre whenever that is an integer: at
    ``n = H_in / 2`` on every even size (the human design, and the whole
    rounding bin around it, e.g. alpha in (1.94, 2.06] at 32 px) and at many
    other rational ratios. Bilinear sampling has a kink there, and the max
    of four candidates has another wherever two of them tie (after a ReLU,
    zeros tie everywhere), so the derivative w.r.t. the size has two
    one-sided values. Both are computed exactly (positions in integer
    arithmetic, ties as exact equality), on every path alike:

    * ``'central'`` (default): their mean, the derivative of the
      piecewise-linear output smoothed over an infinitesimal window; the
      choice the toy study in the docs supports (lower-variance alpha
      gradients, shapes that follow the data).
    * ``'one_sided'``: the derivative as alpha grows (the output shrinks),
      what a ``grid_sample`` implementation of the paper returns wherever
      floating-point rounding of its coordinates does not flip the side.

    Forward values and the input gradient do not depend on this choice.
    The definitions live with the ops in :mod:`mmdynopool.ops.dynopool`.

Paths: :func:`dynopool2d` reads alpha once on the host (the integer size),
then calls the dispatcher op ``torch.ops.mmdynopool.dynopool_forward``: the
fused CPU kernel for float32 / float64 ``'max'`` on the CPU, the
device-generic PyTorch implementation elsewhere (CUDA included); both give
the same values and winners bit for bit. A ``fixed`` layer keeps a host copy
of its alpha and reads nothing. :meth:`DynOPool2d.switch_to_deploy` turns a
trained layer into plain ATen ops (``F.interpolate`` + a 2x2 pool) whose
sizes are integer functions of the input size, for ``torch.export`` / ONNX.
"""
import math
from numbers import Real
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor, nn

from ...ops import MODES, POSITION_GRADS, dynopool_forward

__all__ = [
    'DynOPool2d', 'dynopool2d', 'dynopool_output_size', 'exact_output_size',
    'MIN_SIZE', 'POSITION_GRADS', 'MAX_SCALE', 'AlphaDivergedError'
]

#: Lower bound of the continuous size before rounding (paper Sec. 5.1):
#: ``round(max(x, 1.5)) >= 2``.
MIN_SIZE = 1.5

#: Cap on the scale factor, per axis: an output larger than ``MAX_SCALE``
#: times its input (plus the 2-pixel floor) is refused with a ValueError
#: rather than an allocation failure (``init_scale=1e4`` on an 8x8 map would
#: ask for an 80,000 x 80,000 map). Up-sampling in the papers stays below 2.
MAX_SCALE = 16.0

ScaleType = Union[float, Sequence[float]]


class AlphaDivergedError(ValueError):
    """A trained alpha left the valid range at forward time (not finite,
    <= 0, or a scale beyond :data:`MAX_SCALE`): training diverged."""


def exact_output_size(n_in, alpha: float):
    """``round(max(n_in / alpha, 1.5))`` (half up) in integer arithmetic.

    ``alpha`` is a float, i.e. a fraction ``p / q`` of integers, so the size
    is ``max((2 n_in q + p) // (2 p), 2)``: exact for every input size and
    alpha dtype, and an integer expression of a symbolic ``n_in`` (a
    ``SymInt`` under ``torch.export`` / ``torch.compile``).

    Args:
        n_in (int | SymInt): Input size along one axis.
        alpha (float): That axis's alpha (``1 / r``), > 0.

    Returns:
        int | SymInt: The output size.

    Example:
        >>> exact_output_size(1021, 2.0), exact_output_size(7, 10.0)
        (511, 2)
    """
    p, q = float(alpha).as_integer_ratio()
    n = (2 * n_in * q + p) // (2 * p)
    if isinstance(n, int):
        return max(n, 2)
    if isinstance(n, Tensor):  # a size under torch.jit.trace
        return n.clamp(min=2)
    return torch.sym_max(n, 2)


def _check_alpha_value(alpha: Sequence[float], input_size) -> None:
    if not all(math.isfinite(a) and a > 0 for a in alpha):
        raise AlphaDivergedError(
            f'alpha (= 1 / scale) must be finite and > 0, got {list(alpha)}; '
            'if it diverged during training, lower the learning rate of '
            'alpha')
    if any(n / a > MAX_SCALE * n + 2 for n, a in zip(input_size, alpha)):
        raise AlphaDivergedError(
            f'DynOPool would resize {input_size[0]}x{input_size[1]} by '
            f'1/alpha = {[1 / a for a in alpha]}: beyond the cap MAX_SCALE = '
            f'{MAX_SCALE:g} per axis; if alpha diverged during training, '
            'lower its learning rate')


@torch.compiler.disable
def _read_output_size(alpha: Tensor, h_in: int, w_in: int) -> Tuple[int, int]:
    """The one host read of a DynOPool call: alpha's value, checked, and the
    exact integer output size. Opaque to ``torch.compile`` (it returns
    plain ints, which become dynamic after the first change: a new learned
    size costs no recompilation)."""
    a = alpha.detach().tolist()
    _check_alpha_value(a, (h_in, w_in))
    return exact_output_size(h_in, a[0]), exact_output_size(w_in, a[1])


def dynopool_output_size(input_size: Sequence[int], alpha: Tensor) -> Tensor:
    """Output size with the straight-through estimator of Eq. (3)-(4).

    The forward value is the integer size ``round(max(H_in / alpha, 1.5))``
    (computed in float64 on alpha's device, without a host read); the
    gradient is that of the continuous size ``H_in / alpha``. The surrogate
    is deliberately *not* clamped at 1.5 so that a layer collapsed to 2
    pixels still tells its ``alpha`` which way to move.

    Args:
        input_size (Sequence[int]): ``(H_in, W_in)``.
        alpha (Tensor): Inverse scale ``(alpha_h, alpha_w)``, shape ``(2,)``.

    Returns:
        Tensor: ``(H_out, W_out)`` in float64, shape ``(2,)``.

    Example:
        >>> dynopool_output_size((7, 224), torch.tensor([10.0, 2.0]))
        tensor([  2., 112.], dtype=torch.float64)
    """
    a = alpha.double()
    cont = torch.stack([input_size[0] / a[0], input_size[1] / a[1]])
    hard = torch.floor(cont.detach().clamp(min=MIN_SIZE) + 0.5)
    # Parenthesised so the forward value is exactly the integer.
    return hard + (cont - cont.detach())


def _check_input(input, alpha, mode, position_grad) -> None:
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
    if mode not in MODES:
        raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
    _check_position_grad(position_grad)


def _check_position_grad(position_grad) -> None:
    if not isinstance(position_grad, str) or \
            position_grad not in POSITION_GRADS:
        raise ValueError(f'position_grad must be one of {POSITION_GRADS}, '
                         f'got {position_grad!r}')


def dynopool2d(input: Tensor,
               alpha: Tensor,
               mode: str = 'max',
               position_grad: str = 'central',
               output_size: Optional[Tuple[int, int]] = None) -> Tensor:
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
        position_grad (str): Derivative of the output w.r.t. the size at
            kinks: ``'central'`` or ``'one_sided'`` (module docstring).
            Default: ``'central'``.
        output_size (tuple[int, int], optional): The output size when the
            caller already knows it (a fixed layer); by default it is read
            from ``alpha`` (one host read).

    Returns:
        Tensor: Shape ``(N, C, H_out, W_out)``.

    Example:
        >>> x = torch.rand(2, 3, 7, 10)
        >>> dynopool2d(x, torch.tensor([2.0, 0.5])).shape
        torch.Size([2, 3, 4, 20])
    """
    _check_input(input, alpha, mode, position_grad)
    if torch.jit.is_tracing():
        # A trace is an inference graph: alpha's value is frozen into it and
        # the ops must be ones the tracer and ONNX know.
        a = alpha.detach().tolist()
        _check_alpha_value(a, (1, 1))
        return _plain_dynopool2d(input, a, mode)
    if output_size is None:
        output_size = _read_output_size(alpha, input.shape[-2],
                                        input.shape[-1])
    h, w = output_size
    return dynopool_forward(input, alpha, h, w, mode, position_grad)[0]


def _plain_dynopool2d(x: Tensor, alpha: Sequence[float], mode: str) -> Tensor:
    """Deployment form: plain ATen ops whose sizes are integer expressions of
    the input size (``SymInt`` under ``torch.export``, traced sizes under
    ``torch.jit.trace``)."""
    h = exact_output_size(x.shape[-2], alpha[0])
    w = exact_output_size(x.shape[-1], alpha[1])
    up = F.interpolate(
        x, size=(2 * h, 2 * w), mode='bilinear', align_corners=False)
    if mode == 'max':
        return F.max_pool2d(up, 2)
    return F.avg_pool2d(up, 2)


def _pair_scale(init_scale: ScaleType) -> Tuple[float, float]:
    if isinstance(init_scale, Real) and not isinstance(init_scale, bool):
        pair = (float(init_scale), float(init_scale))
    elif (isinstance(init_scale, Sequence) and len(init_scale) == 2 and all(
            isinstance(v, Real) and not isinstance(v, bool)
            for v in init_scale)):
        pair = (float(init_scale[0]), float(init_scale[1]))
    else:
        raise TypeError('init_scale must be a positive float or a pair '
                        f'(r_h, r_w) of positive floats, got {init_scale!r}')
    if not all(math.isfinite(v) and v > 0 for v in pair):
        raise ValueError('init_scale must be finite and > 0 (r = 1/alpha), '
                         f'got {init_scale!r}')
    return pair


def _check_input_size(input_size) -> Tuple[int, int]:
    if not (isinstance(input_size, Sequence) and len(input_size) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1
            for v in input_size)):
        raise ValueError('input_size must be (H, W) with two integers >= 1, '
                         f'got {input_size!r}')
    return int(input_size[0]), int(input_size[1])


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
        position_grad (str): Derivative w.r.t. the size at kinks:
            ``'central'`` (mean of both sides) or ``'one_sided'`` (as alpha
            grows); see the module docstring. Default: ``'central'``.
        fixed (bool): Freeze ``alpha`` (``requires_grad=False``), e.g. to
            retrain a learned shape from scratch ("Fix (Final)"). ``alpha``
            stays a parameter so checkpoint keys do not change; the layer
            keeps a host copy of it and reads nothing from the device.
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
        if mode not in MODES:
            raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
        self.mode = mode
        _check_position_grad(position_grad)
        self.position_grad = position_grad
        self.deploy = False
        self._host_alpha = None  # (value, version) while fixed
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
        if self.deploy and not value:
            raise RuntimeError('a deployed DynOPool2d cannot learn again; '
                               'build a new one from its alpha')
        self.alpha.requires_grad_(not value)
        self._host_alpha = None
        if value:
            self._refresh_host_alpha()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.alpha.copy_(
                torch.tensor([1 / r for r in self.init_scale],
                             dtype=self.alpha.dtype))

    def _fixed_alpha(self) -> Tuple[float, float]:
        """The host copy of a fixed alpha. Taken when the layer is fixed and
        whenever the parameter changes in place (``load_state_dict``,
        ``.to()``, ``fill_``: its version counter moves) or is replaced;
        under ``torch.compile`` the copy is used as it is (a constant)."""
        alpha = self.alpha
        if torch.compiler.is_compiling():
            return self._host_alpha[0]
        key = (id(alpha), alpha._version, alpha.dtype)
        if self._host_alpha is None or self._host_alpha[1] != key:
            self._refresh_host_alpha()
        return self._host_alpha[0]

    def _refresh_host_alpha(self) -> None:
        alpha = self.alpha
        self._host_alpha = (tuple(alpha.detach().tolist()),
                            (id(alpha), alpha._version, alpha.dtype))

    def _apply(self, fn, *args, **kwargs):
        out = super()._apply(fn, *args, **kwargs)
        if self.fixed:
            self._refresh_host_alpha()
        return out

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        if self.fixed:
            self._refresh_host_alpha()

    @property
    def scale(self) -> Tuple[float, float]:
        """Current scale factor ``(r_h, r_w) = 1 / alpha``."""
        a_h, a_w = self.alpha.detach().tolist()
        return 1 / a_h, 1 / a_w

    def output_size(self, input_size: Sequence[int]) -> Tuple[int, int]:
        """Integer ``(H_out, W_out)`` for an input of ``(H_in, W_in)``.

        Args:
            input_size (Sequence[int]): ``(H_in, W_in)``.

        Returns:
            tuple[int, int]: ``(H_out, W_out)``.

        Example:
            >>> DynOPool2d(0.5, dtype=torch.bfloat16).output_size((1021, 8))
            (511, 4)
        """
        h, w = _check_input_size(input_size)
        a = self.alpha.detach().tolist()
        _check_alpha_value(a, (h, w))
        return exact_output_size(h, a[0]), exact_output_size(w, a[1])

    def continuous_output_size(self, input_size: Sequence[int]) -> Tensor:
        """Differentiable ``(H_out, W_out)``: integer forward value, gradient
        of ``H_in / alpha_h`` (the straight-through estimator, Eq. 3-4).

        Args:
            input_size (Sequence[int]): ``(H_in, W_in)``.

        Returns:
            Tensor: ``(H_out, W_out)``, float, with the straight-through
            gradient.
        """
        return dynopool_output_size(_check_input_size(input_size), self.alpha)

    def forward(self, x: Tensor) -> Tensor:
        if self.deploy:
            return _plain_dynopool2d(x, self._deploy_alpha, self.mode)
        size = None
        if self.fixed:
            a = self._fixed_alpha()
            if not torch.compiler.is_compiling():
                _check_alpha_value(a, tuple(x.shape[-2:]))
            size = (exact_output_size(x.shape[-2], a[0]),
                    exact_output_size(x.shape[-1], a[1]))
        return dynopool2d(
            x, self.alpha, self.mode, self.position_grad, output_size=size)

    def switch_to_deploy(self) -> None:
        """Deployment mode (mmpretrain's ``switch_to_deploy`` convention):
        ``alpha`` is frozen into Python numbers, the output size becomes an
        integer expression of the input size and the forward plain ATen
        (``F.interpolate(bilinear, align_corners=False)`` to the ``2h x 2w``
        query grid, then a 2x2 max / average pool), which ``torch.export``
        (static or dynamic input size) and ONNX take as they are. Values
        equal the training forward's to float rounding (the interpolation
        weights are computed in floating point there). Irreversible;
        ``alpha`` stays a (frozen) parameter so checkpoints still load.
        """
        self.fixed = True
        self._deploy_alpha = tuple(self.alpha.detach().tolist())
        _check_alpha_value(self._deploy_alpha, (1, 1))
        self.deploy = True

    def extra_repr(self) -> str:
        a_h, a_w = self.alpha.detach().tolist()
        scale = ', '.join(f'{1 / a:.4g}' if a != 0 else 'inf'
                          for a in (a_h, a_w))
        return (f'scale=({scale}), mode={self.mode!r}, '
                f'position_grad={self.position_grad!r}, fixed={self.fixed}' +
                (', deploy=True' if self.deploy else ''))
