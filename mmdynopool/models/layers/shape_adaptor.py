"""Shape Adaptor: a learnable two-branch resizing module (Liu et al., ECCV
2020).

Convention:
    * Sizes are ``(h, w)``; each axis is scaled by the same ``s(alpha)``.
    * The adaptive resize ``G`` is ``F.interpolate(mode='bilinear',
      align_corners=True)``, as in the authors' release.
    * Output size ``max(floor(D_in * s), 1)`` per axis, ``D_in`` being the
      module's *input* size: the authors' ``int(current_dim * s)`` (their
      "local" adaptor always drops at least one pixel while ``s < 1``).
      ``rounding='round'`` (half up, like DynOPool2d) is the alternative;
      it starts VGG-16 at 32 px at 23/16/11/8 instead of 22/15/10/7 (+21 %
      MACs at initialisation).
"""
import math
from numbers import Integral, Real
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor, nn

__all__ = [
    'ShapeAdaptor', 'shape_adaptor', 'shape_adaptor_num_modules',
    'shape_adaptor_init_alpha', 'shape_adaptor_penalty',
    'set_shape_adaptor_penalty'
]

#: How the output size is rounded (see the module docstring).
ROUNDINGS = ('floor', 'round')

#: Small value of Eq. (5) that keeps the initial logit finite.
INIT_EPS = 1e-4

BranchType = Union[nn.Module, dict, None]


def _check_real(name: str, value) -> None:
    # bool is an int to Python, never a number here.
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f'{name} must be a real number, got {value!r}')


def _check_range(r1: float, r2: float) -> None:
    _check_real('r1', r1)
    _check_real('r2', r2)
    if not (math.isfinite(r1) and math.isfinite(r2) and 0 < r1 < r2):
        raise ValueError('the search space (r1, r2) must satisfy '
                         f'0 < r1 < r2, got r1={r1!r}, r2={r2!r}')


def shape_adaptor_num_modules(d_in: float,
                              d_last: float,
                              r_min: float = 0.5,
                              rounding: str = 'floor') -> int:
    """Number of shape adaptors ``N = log_{1/r_min}(D_in / D_last)`` (Eq. 3).

    The printed Eq. (3) takes the ceiling; the authors' code takes the
    floor (``int(log2(D_in / 2))``: 6 at 224 px, not 7), and so do the
    paper's tables (Table 2's ``N = 6`` column holds the Table 1 Aircraft
    numbers; Table 3's 0.58 is ``(8 / 224) ** (1 / 6)``). Both agree on
    exact powers (4 at 32 px).

    Args:
        d_in (float): Input size ``D_in``.
        d_last (float): ``D_last``, the smallest last size (2 in the paper).
        r_min (float): Smallest ratio of one adaptor. Default: 0.5.
        rounding (str): ``'floor'`` (the authors, default) or ``'ceil'``
            (the printed Eq. 3).

    Returns:
        int: ``N``.

    Example:
        >>> shape_adaptor_num_modules(32, 2), shape_adaptor_num_modules(224, 2)
        (4, 6)
        >>> shape_adaptor_num_modules(224, 2, rounding='ceil')
        7
    """
    if not 0 < r_min < 1:
        raise ValueError(f'r_min must be in (0, 1), got {r_min!r}')
    _check_real('d_in', d_in)
    _check_real('d_last', d_last)
    if not (math.isfinite(d_in) and 0 < d_last <= d_in):
        raise ValueError('need 0 < d_last <= d_in < inf, got '
                         f'd_in={d_in!r}, d_last={d_last!r}')
    if rounding not in ('floor', 'ceil'):
        raise ValueError("rounding must be 'floor' or 'ceil', got "
                         f'{rounding!r}')
    # The tolerance keeps exact powers (32 / 2 = 0.5 ** -4) exact.
    n = math.log(d_in / d_last) / math.log(1 / r_min)
    n = math.floor(n + 1e-9) if rounding == 'floor' else math.ceil(n - 1e-9)
    return max(int(n), 1)


def shape_adaptor_init_alpha(d_in: float,
                             d_out: float,
                             num_modules: int,
                             r_min: float = 0.5,
                             r_max: float = 1.0) -> float:
    """Initial raw (pre-sigmoid) alpha of Eq. (5).

    Solves ``D_in * s(sigmoid(alpha)) ** N = D_out`` for the logit:
    ``alpha = ln((s - r_min) / (r_max - s) + eps)`` with
    ``s = (D_out / D_in) ** (1 / N)``. When even the smallest shape
    ``D_in * r_min ** N`` exceeds ``D_out`` it returns ``ln(eps)``, the
    smallest shape (the paper's "otherwise" case, tested exactly as the
    authors' code does).

    Args:
        d_in (float): Input size ``D_in``.
        d_out (float): The wanted output size ``D_out``.
        num_modules (int): ``N``, the adaptors in the network.
        r_min (float): Smallest ratio of one adaptor. Default: 0.5.
        r_max (float): Largest ratio. Default: 1.0.

    Returns:
        float: The raw alpha.

    Example:
        >>> a = shape_adaptor_init_alpha(32, 8, 4)
        >>> s = 0.5 + 0.5 / (1 + math.exp(-a))
        >>> round(32 * s ** 4, 2)  # the eps of Eq. (5) adds 0.001
        8.0
    """
    _check_range(r_min, r_max)
    if isinstance(num_modules, bool) or not isinstance(num_modules, Integral):
        raise TypeError('num_modules must be an integer >= 1, got '
                        f'{num_modules!r}')
    if num_modules < 1:
        raise ValueError(f'num_modules must be >= 1, got {num_modules!r}')
    _check_real('d_in', d_in)
    _check_real('d_out', d_out)
    if not (0 < d_in < math.inf and 0 < d_out < math.inf):
        raise ValueError(f'd_in and d_out must be finite and > 0, got '
                         f'd_in={d_in!r}, d_out={d_out!r}')
    if d_in * r_min**num_modules > d_out:
        return math.log(INIT_EPS)
    s = (d_out / d_in)**(1.0 / num_modules)
    if s >= r_max:
        raise ValueError(
            f'd_out={d_out!r} is out of reach: {num_modules} modules scale '
            f'd_in={d_in!r} by at most r_max={r_max!r} each')
    return math.log((s - r_min) / (r_max - s) + INIT_EPS)


def shape_adaptor_penalty(scales: Sequence[float], d_in: float,
                          d_limit: Optional[float]) -> float:
    """The memory penalty ``rho`` of Eq. (8) for unpenalised factors
    ``scales = [s(a_1), ..., s(a_N)]``: ``(D_limit / D_cout) ** (1 / N)``
    when ``D_cout = D_in * prod s(a_i)`` exceeds ``D_limit``, else 1 (and 1
    without a limit).

    Args:
        scales (Sequence[float]): The unpenalised factors ``s(a_i)``.
        d_in (float): Input size ``D_in``.
        d_limit (float, optional): ``D_limit``; None for no limit.

    Returns:
        float: ``rho``, in (0, 1].

    Example:
        >>> shape_adaptor_penalty([0.75] * 4, 32, 10)  # D_cout = 10.125
        0.996...
    """
    if d_limit is None:
        return 1.0
    d_cout = d_in * math.prod(scales)
    return (d_limit / d_cout)**(1 / len(scales)) if d_cout > d_limit \
        else 1.0


def set_shape_adaptor_penalty(adaptors: Sequence['ShapeAdaptor'], d_in: float,
                              d_limit: Optional[float]) -> float:
    """Give every adaptor of ``adaptors`` the memory penalty of Eq. (8) for
    their current alphas (:func:`shape_adaptor_penalty` of their
    unpenalised factors) and return it. Fixed adaptors ("Fix (Final)")
    keep theirs and are left out. The penalty is not in the state dict:
    whoever builds a trained network with a memory limit sets it again.

    Args:
        adaptors (Sequence[ShapeAdaptor]): The network's adaptors.
        d_in (float): Input size ``D_in``.
        d_limit (float, optional): ``D_limit``; None for no limit.

    Returns:
        float: The penalty set.
    """
    adaptors = [sa for sa in adaptors if not sa.fixed]
    if d_limit is None or not adaptors:
        return 1.0
    rho = shape_adaptor_penalty([sa.scale / sa.penalty for sa in adaptors],
                                d_in, d_limit)
    for sa in adaptors:
        sa.penalty = rho
    return rho


def _check_penalty(value) -> None:
    # Eq. (8) only ever shrinks (rho = (D_limit / D_cout) ** (1 / N) with
    # D_cout > D_limit); a rho above 1 would push s(a) beyond r2 and up-sample
    # (penalty 5 turned 16x16 into 60x60).
    _check_real('penalty (rho)', value)
    if not (math.isfinite(value) and 0 < value <= 1):
        raise ValueError(f'penalty (rho) must be in (0, 1], got {value!r}')


def _check_residual(value) -> None:
    if not isinstance(value, bool):
        raise TypeError(f'residual must be a bool, got {value!r}')


def _check_rounding(rounding: str) -> None:
    if rounding not in ROUNDINGS:
        raise ValueError(f'rounding must be one of {ROUNDINGS}, got '
                         f'{rounding!r}')


def _scaled_size(input_size: Tuple[int, int],
                 s: float,
                 rounding: str = 'floor') -> Tuple[int, int]:
    """``floor(D * s)`` (or half up) per axis, never below one pixel, in
    integer arithmetic (``s`` is a fraction ``p / q`` of integers): exact,
    and an integer expression of a symbolic ``D`` under ``torch.export``
    or ``torch.jit.trace``."""
    p, q = float(s).as_integer_ratio()
    out = []
    for d in input_size:
        n = (d * p) // q if rounding == 'floor' else (2 * d * p + q) // (2 * q)
        if isinstance(n, int):
            n = max(n, 1)
        elif isinstance(n, Tensor):  # a size under torch.jit.trace
            n = n.clamp(min=1)
        else:
            n = torch.sym_max(n, 1)
        out.append(n)
    return tuple(out)


def _mixing_weight(alpha: Tensor, r1: float, r2: float,
                   penalty: float) -> Tensor:
    """``a_rho`` of Eq. (6): the penalised mixing weight."""
    return torch.sigmoid(alpha) * penalty + r1 / (r2 - r1) * (penalty - 1)


@torch.compiler.disable
def _read_scale(a: Tensor, r1: float, r2: float) -> float:
    """The one host read of a Shape Adaptor call: ``s = (r2 - r1) a + r1``.
    Opaque to ``torch.compile``, so a new learned size costs no
    recompilation (the sizes come back as plain ints)."""
    s = (r2 - r1) * float(a.detach()) + r1
    if not math.isfinite(s):  # a diverged alpha step gives no size
        raise ValueError(f'alpha gives no output size (a = {s!r}): it must '
                         'be finite')
    return s


@torch.compiler.disable
def _read_size(a: Tensor, r1: float, r2: float, input_size,
               rounding: str) -> Tuple[int, int]:
    return _scaled_size(
        tuple(int(d) for d in input_size), _read_scale(a, r1, r2), rounding)


def shape_adaptor(x1: Tensor,
                  x2: Tensor,
                  alpha: Tensor,
                  input_size: Tuple[int, int],
                  r1: float = 0.5,
                  r2: float = 1.0,
                  penalty: float = 1.0,
                  residual: bool = False,
                  rounding: str = 'floor') -> Tensor:
    """Mix two resized branches (Eq. 1) with the penalised alpha (Eq. 6).

    ``alpha`` (raw, pre-sigmoid) gets its gradient only through the mixing
    weights ``1 - a`` and ``a``: the output size ``round(D_in * s(a))`` is not
    differentiable and follows ``a`` as the paper's ``grad s(a) ~ s(grad a)``.

    Args:
        x1 (Tensor): Branch ``F1(x, r1)``, shape ``(N, C, H1, W1)``.
        x2 (Tensor): Branch ``F2(x, r2)``, shape ``(N, C, H2, W2)``.
        alpha (Tensor): Raw scalar parameter, ``a = sigmoid(alpha)``.
        input_size (tuple[int, int]): ``(H_in, W_in)`` of the module's input.
        r1 (float): Scale of branch 1 (the smaller). Default: 0.5.
        r2 (float): Scale of branch 2. Default: 1.0.
        penalty (float): Memory penalty ``rho`` of Eq. (6)-(8), in
            ``(0, 1]``; 1 is none. Default: 1.0.
        residual (bool): Double the mixing weights, so that ``a = 0.5`` gives
            ``x1 + x2`` like a residual cell. Default: False.
        rounding (str): Output size ``floor(D_in * s)`` (``'floor'``, the
            authors') or rounded half up (``'round'``), at least 1.
            Default: ``'floor'``.

    Returns:
        Tensor: Shape ``(N, C, floor(H_in * s), floor(W_in * s))``.

    Example:
        >>> x = torch.rand(1, 4, 15, 15)
        >>> y = F.max_pool2d(x, 2)
        >>> shape_adaptor(y, x, torch.tensor(0.), (15, 15)).shape
        torch.Size([1, 4, 11, 11])
    """
    _check_penalty(penalty)
    _check_residual(residual)
    _check_rounding(rounding)
    a = _mixing_weight(alpha, r1, r2, penalty)
    if torch.jit.is_tracing():
        # A trace is an inference graph: alpha's value is frozen into it,
        # the sizes follow the traced input size.
        size = _scaled_size(input_size, _read_scale(a, r1, r2), rounding)
    else:
        size = _read_size(a, r1, r2, input_size, rounding)
    return _mix(x1, x2, a, size, residual)


def _mix(x1: Tensor,
         x2: Tensor,
         a,
         size,
         residual: bool,
         symbolic: bool = False) -> Tensor:
    # A branch already at the target size needs no resize (an
    # align_corners=True resize to the same size is the identity), but with
    # symbolic sizes (export) comparing them would guard on their values.
    y1, y2 = (
        t if not symbolic and tuple(t.shape[-2:]) == tuple(size) else
        F.interpolate(t, size=size, mode='bilinear', align_corners=True)
        for t in (x1, x2))
    out = (1 - a) * y1 + a * y2
    return 2 * out if residual else out


def _build_branch(branch: BranchType, default: nn.Module) -> nn.Module:
    if branch is None:
        return default
    if isinstance(branch, nn.Module):
        return branch
    if isinstance(branch, dict):
        return MODELS.build(branch)
    raise TypeError('a branch must be an nn.Module, a config dict or None, '
                    f'got {type(branch).__name__}')


@MODELS.register_module()
class ShapeAdaptor(nn.Module):
    """Learnable resizing between two fixed-ratio branches (Shape Adaptor).

    ``out = (1 - a) G(F1(x), s / r1) + a G(F2(x), s / r2)`` with
    ``a = sigmoid(alpha)`` and ``s(a) = (r2 - r1) a + r1`` (Eq. 1-2). With the
    defaults it is the paper's VGG cell: ``F1`` = 2x2 max-pool, ``F2`` =
    identity, search space ``(0.5, 1)``. For a ResNet cell pass the strided
    shortcut as ``branch1``, the stride-1 weight layers as ``branch2`` and
    ``residual=True``.

    Args:
        branch1 (nn.Module | dict, optional): ``F1`` with ratio ``r1``.
            Default: ``nn.MaxPool2d(2, 2)``.
        branch2 (nn.Module | dict, optional): ``F2`` with ratio ``r2``.
            Default: ``nn.Identity()``.
        r1 (float): Ratio of ``branch1``. Default: 0.5.
        r2 (float): Ratio of ``branch2``, ``> r1``. Default: 1.0.
        init_alpha (float): Initial raw alpha (logit); see
            :func:`shape_adaptor_init_alpha` for Eq. (5). Default: 0.0.
        residual (bool): Double the mixing weights (ResNet cell).
            Default: False.
        rounding (str): ``'floor'`` (the authors') or ``'round'`` (half up)
            output size; see :func:`shape_adaptor`. Default: ``'floor'``.
        fixed (bool): Freeze ``alpha`` (still a parameter, so checkpoint
            keys stay; :class:`ShapeAdaptorHook` leaves it alone): "Fix
            (Final)", a learned shape retrained. Default: False.
        penalty (float): Initial memory penalty ``rho`` (Eq. 6-8), in
            ``(0, 1]``, e.g. the one a learned shape ended with. Default: 1.0.
        device (torch.device, optional): Device of ``alpha``.
        dtype (torch.dtype, optional): Dtype of ``alpha``.

    Attributes:
        penalty (float): Memory penalty ``rho`` (Eq. 6-8) in ``(0, 1]``,
            set from outside (e.g. by a hook every iteration). Default: 1.0.

    Example:
        >>> sa = ShapeAdaptor(init_alpha=0.0)
        >>> sa(torch.rand(2, 8, 30, 30)).shape
        torch.Size([2, 8, 22, 22])
    """

    def __init__(self,
                 branch1: BranchType = None,
                 branch2: BranchType = None,
                 r1: float = 0.5,
                 r2: float = 1.0,
                 init_alpha: float = 0.0,
                 residual: bool = False,
                 rounding: str = 'floor',
                 fixed: bool = False,
                 penalty: float = 1.0,
                 device: Optional[torch.device] = None,
                 dtype: Optional[torch.dtype] = None) -> None:
        super().__init__()
        _check_range(r1, r2)
        _check_rounding(rounding)
        self.rounding = rounding
        _check_real('init_alpha', init_alpha)
        if not math.isfinite(init_alpha):
            raise ValueError(f'init_alpha must be finite, got {init_alpha!r}')
        self.branch1 = _build_branch(branch1, nn.MaxPool2d(2, 2))
        self.branch2 = _build_branch(branch2, nn.Identity())
        self.r1, self.r2 = float(r1), float(r2)
        self.init_alpha = float(init_alpha)
        self.residual = residual
        self.penalty = penalty
        self.alpha = nn.Parameter(torch.empty((), device=device, dtype=dtype))
        self.reset_parameters()
        self.deploy = False
        self.fixed = fixed

    @property
    def fixed(self) -> bool:
        """A final shape ("Fix (Final)"): alpha takes no gradient and keeps
        the penalty it was given. Unlike an alpha frozen by
        ``frozen_stages``, whose penalty still follows Eq. (8)."""
        return self._fixed

    @fixed.setter
    def fixed(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f'fixed must be a bool, got {value!r}')
        if getattr(self, 'deploy', False) and not value:
            raise RuntimeError('a deployed ShapeAdaptor cannot learn again')
        self._fixed = value
        self.alpha.requires_grad_(not value)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.alpha.fill_(self.init_alpha)

    @property
    def residual(self) -> bool:
        """Double the mixing weights (the ResNet cell)."""
        return self._residual

    @residual.setter
    def residual(self, value: bool) -> None:
        _check_residual(value)
        self._residual = value

    @property
    def penalty(self) -> float:
        return self._penalty

    @penalty.setter
    def penalty(self, value: float) -> None:
        _check_penalty(value)
        self._penalty = float(value)

    @property
    def scale(self) -> float:
        """Current reshaping factor ``s(a_rho)`` (Eq. 7)."""
        a = torch.sigmoid(self.alpha.detach()).item()
        return ((self.r2 - self.r1) * a + self.r1) * self.penalty

    def output_size(self, input_size: Tuple[int, int]) -> Tuple[int, int]:
        """Integer ``(H_out, W_out)`` for an input of ``(H_in, W_in)``.

        Args:
            input_size (tuple[int, int]): ``(H_in, W_in)``.

        Returns:
            tuple[int, int]: ``(H_out, W_out)``.
        """
        return _scaled_size(input_size, self.scale, self.rounding)

    def forward(
            self,
            x: Tensor,
            branch_outputs: Optional[Tuple[Tensor, Tensor]] = None) -> Tensor:
        """Mix ``F1(x)`` and ``F2(x)`` resized from ``x``'s size (Eq. 1).

        Args:
            x (Tensor): Module input, shape ``(N, C, H, W)``.
            branch_outputs (tuple[Tensor, Tensor], optional): ``(F1(x),
                F2(x))`` computed by the caller, e.g. the shortcut and the
                weight layers of a residual block; ``branch1``/``branch2``
                are then not called.
        """
        if x.dim() != 4:
            raise ValueError(f'input must be 4-D (N, C, H, W), got shape '
                             f'{tuple(x.shape)}')
        if branch_outputs is None:
            branch_outputs = (self.branch1(x), self.branch2(x))
        if self.deploy:
            a, s = self._deploy_values
            return _mix(
                *branch_outputs,
                a,
                _scaled_size(x.shape[-2:], s, self.rounding),
                self.residual,
                symbolic=True)
        return shape_adaptor(*branch_outputs, self.alpha, x.shape[-2:],
                             self.r1, self.r2, self.penalty, self.residual,
                             self.rounding)

    def switch_to_deploy(self) -> None:
        """Deployment mode (mmpretrain's ``switch_to_deploy`` convention):
        the mixing weight and the scale become Python numbers (at the
        current penalty), the output size an integer expression of the input
        size, the forward plain ATen ops for ``torch.export`` and ONNX.
        Irreversible; ``alpha`` stays a (frozen) parameter."""
        self.fixed = True
        a = _mixing_weight(self.alpha.detach(), self.r1, self.r2, self.penalty)
        self._deploy_values = (float(a), _read_scale(a, self.r1, self.r2))
        self.deploy = True

    def extra_repr(self) -> str:
        return (f'r=({self.r1:g}, {self.r2:g}), scale={self.scale:.4g}, '
                f'penalty={self.penalty:.4g}, residual={self.residual}, '
                f'rounding={self.rounding!r}, fixed={self.fixed}')
