"""Training a DynOPool model to a GMACs target, without a lambda sweep.

:class:`GMACsTarget` asks for the cost ``X`` (GMACs of one image at the
counter's ``input_size``) in two phases:

1. **Adaptive lambda** (until ``settle`` of the schedule). The penalty is
   the paper's ``lambda * L_GMACs`` with
   ``lambda_t = loss_weight * m_t * f(C_t / X)`` and, after every step,
   ``m_{t+1} = m_t * (C_t / X) ** gain``, clipped to :data:`M_RANGE`
   (``C_t``: this step's GMACs per image with the real integer sizes). The
   ``m`` update is dual ascent on ``C = X`` in log space; the proportional
   factor ``f(r) = r ** p_gain``, continued below the target with the slope
   of ``1 + p_gain * log r`` (negative under ``r = exp(-1 / p_gain)``),
   damps the overshoot.
2. **Settle** (at ``settle`` of the schedule, once). All learnable alphas
   are multiplied by the common factor ``exp(s)`` with the smallest ``|s|``
   that brings the exact conv + linear MACs (``FlopCounterMode``, one image
   at ``input_size``) within ``tolerance`` of ``X`` (or closest to it where
   the integer sizes jump over that band), then single-pixel moves; the
   alphas are then frozen (``fixed``) and the remaining steps train the
   weights at the final sizes, as a Fix (Final) retrain does.

No host reads are added per step: the multiplier is updated on the device;
the settle reads once. :meth:`GMACsTarget.state_dict` holds the multiplier
and whether the sizes are settled (the hook puts it into checkpoints), so a
resumed run continues exactly. Why this design, and what was measured on the
way: ``docs/conventions.md`` ("The cost target").
"""
import math
import warnings
from numbers import Real
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

from ..models.layers import DynOPool2d
from ..models.layers.dynopool import AlphaDivergedError, exact_output_size
from ..utils.inspection import eval_mode
from .gmacs import GMACsCounter, count_macs

__all__ = ['GMACsTarget', 'settle_to_gmacs', 'exact_gmacs']

#: Range of the adaptive factor ``m_t``.
M_RANGE = (1e-4, 1e4)


def _positive(name, value, upper=None):
    if isinstance(value, bool) or not isinstance(value, Real) or not (
            math.isfinite(value) and value > 0) or (upper is not None
                                                    and value > upper):
        allowed = f'in (0, {upper}]' if upper is not None else \
            'finite and > 0'
        raise ValueError(f'{name} must be a number {allowed}, got {value!r}')
    return float(value)


def exact_gmacs(model: nn.Module,
                input_size: Sequence[int],
                in_channels: int = 3,
                forward: Optional[Callable] = None) -> float:
    """Conv + linear GMACs of one ``input_size`` image at the model's current
    shape, counted by ``FlopCounterMode`` (eval mode, no gradients).

    Args:
        model (nn.Module): The model (a backbone or an mmengine model).
        input_size (Sequence[int]): ``(H, W)``.
        in_channels (int): Input channels. Default: 3.
        forward (callable, optional): How to call the model on a tensor, e.g.
            ``lambda x: model(x, mode='tensor')``. Default: ``model(x)``.

    Returns:
        float: GMACs of one image.
    """
    param = next(model.parameters())
    x = torch.zeros(
        1, in_channels, *input_size, device=param.device, dtype=param.dtype)
    with eval_mode(model):
        return sum(count_macs(model, x, forward).values()) / 1e9


def settle_to_gmacs(model: nn.Module,
                    target_gmacs: float,
                    input_size: Sequence[int],
                    in_channels: int = 3,
                    forward: Optional[Callable] = None,
                    tolerance: float = 0.02,
                    pools: Optional[List[DynOPool2d]] = None,
                    max_evals: int = 80) -> Dict:
    """Move the learnable DynOPool alphas as little as possible so that the
    model's exact GMACs (:func:`exact_gmacs`) come within ``tolerance`` of
    ``target_gmacs``.

    First every alpha is multiplied by one factor ``exp(s)``, the smallest
    ``|s|`` that reaches the band (the cost is a non-increasing step
    function of ``s``: a bracket, then a bisection); this keeps the learned
    aspect ratios and relative scales. Where the integer sizes jump over the
    band (small maps: one pixel of a 16-pixel axis is 6 % of its cost), single
    axes then move by one output pixel at a time (each move tried, the best
    kept) while that brings the cost closer. If the band is still out of
    reach, the closest cost is kept and a warning says so.

    Args:
        model (nn.Module): Modified in place (its alphas).
        target_gmacs (float): Target conv + linear GMACs of one image.
        input_size (Sequence[int]): ``(H, W)`` of that image.
        in_channels (int): Its channels. Default: 3.
        forward (callable, optional): How to run the model on a tensor.
        tolerance (float): Accepted relative gap. Default: 0.02.
        pools (list[DynOPool2d], optional): The layers to move. Default:
            every DynOPool2d whose alpha requires grad.
        max_evals (int): Cost evaluations at most. Default: 80.

    Returns:
        dict: ``shift`` (``s``), ``moves`` (single-pixel moves),
        ``gmacs_before``, ``gmacs`` (after), ``gap``
        (``gmacs / target - 1``), ``evals``.

    Example:
        >>> from mmdynopool.models import DynOPoolVGG
        >>> model = DynOPoolVGG(11, out_indices=(4, ))
        >>> out = settle_to_gmacs(model, 0.1, (32, 32))
        >>> abs(out['gap']) <= 0.02
        True
    """
    target_gmacs = _positive('target_gmacs', target_gmacs)
    tolerance = _positive('tolerance', tolerance, 0.5)
    if pools is None:
        pools, seen = [], set()
        for m in model.modules():
            if isinstance(m, DynOPool2d) and m.alpha.requires_grad and id(
                    m.alpha) not in seen:
                seen.add(id(m.alpha))
                pools.append(m)
    if not pools:
        raise ValueError('settle_to_gmacs found no learnable DynOPool2d '
                         'layer to rescale')
    evals = [0]
    seen_in: Dict[int, tuple] = {}

    def record(pool):

        def hook(m, args):
            seen_in.setdefault(id(pool), tuple(args[0].shape[-2:]))

        return hook

    def measure(alphas) -> float:
        evals[0] += 1
        with torch.no_grad():
            for p, a in zip(pools, alphas):
                p.alpha.copy_(a)
        seen_in.clear()
        handles = [p.register_forward_pre_hook(record(p)) for p in pools]
        try:
            return exact_gmacs(model, input_size, in_channels,
                               forward) / target_gmacs - 1
        except AlphaDivergedError:
            return math.inf  # past the scale cap: too large by any measure
        finally:
            for h in handles:
                h.remove()

    base = [p.alpha.detach().clone() for p in pools]
    before = measure(base)
    best = ([a.clone() for a in base], before, 0.0)

    def consider(alphas, gap, shift=None):
        nonlocal best
        if abs(gap) < abs(
                best[1]) or (abs(gap) <= tolerance and shift is not None
                             and abs(shift) < abs(best[2])):
            best = ([a.clone() for a in alphas], gap,
                    best[2] if shift is None else shift)

    if abs(before) > tolerance:
        # Too expensive: larger alphas (s > 0) shrink; too cheap: s < 0.
        sign = 1.0 if before > 0 else -1.0
        inside, outside, step = None, 0.0, 0.05
        # exp(12.8) is far past any size change (the 2-pixel floor, the
        # scale cap): beyond it the band is out of reach.
        while evals[0] < max_evals // 2 and step <= 12.8:
            alphas = [a * math.exp(sign * step) for a in base]
            g = measure(alphas)
            consider(alphas, g, sign * step)
            if abs(g) <= tolerance or (g > 0) != (before > 0):
                inside = step
                break
            outside, step = step, step * 2
        while inside is not None and evals[0] < max_evals // 2 and \
                inside - outside > 1e-7:
            mid = (inside + outside) / 2
            alphas = [a * math.exp(sign * mid) for a in base]
            g = measure(alphas)
            consider(alphas, g, sign * mid)
            if abs(g) <= tolerance or (g > 0) != (before > 0):
                inside = mid
            else:
                outside = mid
    moves = 0
    while abs(best[1]) > tolerance and evals[0] < max_evals:
        current, improved = best, False
        measure(current[0])  # the input sizes at the current alphas
        sizes = dict(seen_in)
        for i, p in enumerate(pools):
            n_in = sizes.get(id(p))
            if n_in is None:
                continue
            for axis in (0, 1):
                n_out = exact_output_size(n_in[axis],
                                          float(current[0][i][axis]))
                for d in (-1, 1):
                    if n_out + d < 2 or evals[0] >= max_evals:
                        continue
                    alphas = [a.clone() for a in current[0]]
                    # The centre of the next size's rounding bin.
                    alphas[i][axis] = n_in[axis] / (n_out + d)
                    g = measure(alphas)
                    if abs(g) < abs(best[1]):
                        best, improved = (alphas, g, best[2]), True
        if not improved:
            break
        moves += 1
    if abs(best[1]) > tolerance:
        warnings.warn(
            f'settle_to_gmacs: the integer sizes jump over the '
            f'+-{tolerance:.0%} band around {target_gmacs:g} GMACs; the '
            f'closest cost is {100 * best[1]:+.2f} %')
    gap = measure(best[0])
    return dict(
        shift=best[2],
        moves=moves,
        gmacs_before=(1 + before) * target_gmacs,
        gmacs=(1 + gap) * target_gmacs,
        gap=gap,
        evals=evals[0])


def _proportional(ratio: Tensor, p_gain: float) -> Tensor:
    """The immediate factor of lambda: ``ratio ** p_gain`` above the target,
    ``1 + p_gain * log(ratio)`` below it (the same slope at the target),
    which turns negative under ``exp(-1 / p_gain)`` of it: the penalty then
    rewards cost, so a model that fell far below the target climbs back
    without waiting for ``m`` to decay."""
    log_r = torch.log(ratio)
    return torch.where(log_r >= 0, torch.exp(p_gain * log_r),
                       1 + p_gain * log_r)


class GMACsTarget:
    """Drive a DynOPool model to ``target_gmacs`` (module docstring).

    Plain PyTorch use (``GMACsLossHook(target_gmacs=...)`` does this in an
    mmengine run)::

        counter = GMACsCounter(model, (224, 224))
        target = GMACsTarget(counter, target_gmacs=2.0, loss_weight=1e-4,
                             max_iters=len(loader) * epochs)
        counter.attach()
        for it, (x, y) in enumerate(batches):
            counter.reset()
            loss = criterion(model(x), y) + target.loss() * len(x)
            loss.backward(); optimizer.step(); optimizer.zero_grad()
            target.step(it + 1)  # settles once at settle * max_iters

    Args:
        counter (GMACsCounter): The model's counter (recording its
            DynOPool input sizes).
        target_gmacs (float): Target conv + linear GMACs of one image at the
            counter's ``input_size``.
        loss_weight (float): The paper's lambda, the penalty's weight at
            the start (``m_0 = 1``).
        max_iters (int): Training steps of the run.
        settle (float): Fraction of ``max_iters`` after which the sizes are
            settled on the target and the alphas frozen; 1 never settles.
            Default: 0.8.
        gain (float): Exponent of the multiplier update (integral).
            Default: 0.02 (a cost 2x the target doubles ``m`` in 50
            steps).
        p_gain (float): Exponent of the immediate factor (proportional).
            Default: 4 (a cost 20 % over the target weighs 2.1x).
        tolerance (float): Relative band the settle aims for. Default: 0.02.
        forward (callable, optional): How the settle runs the model on a
            tensor. Default: the counter's.
    """

    def __init__(self,
                 counter: GMACsCounter,
                 target_gmacs: float,
                 loss_weight: float,
                 max_iters: int,
                 settle: float = 0.8,
                 gain: float = 0.02,
                 p_gain: float = 4.0,
                 tolerance: float = 0.02,
                 forward: Optional[Callable] = None) -> None:
        self.counter = counter
        self.target = _positive('target_gmacs', target_gmacs)
        self.loss_weight = _positive(
            'loss_weight (lambda, the start of the '
            'adaptive one)', loss_weight)
        if isinstance(max_iters,
                      bool) or not isinstance(max_iters, int) or max_iters < 1:
            raise ValueError(f'max_iters must be an integer >= 1, got '
                             f'{max_iters!r}')
        self.max_iters = max_iters
        self.settle_frac = _positive('settle', settle, 1.0)
        self.gain = _positive('gain', gain, 1.0)
        if isinstance(p_gain, bool) or not isinstance(
                p_gain, Real) or not (0 <= p_gain <= 16):
            raise ValueError(f'p_gain must be a number in [0, 16], got '
                             f'{p_gain!r}')
        self.p_gain = float(p_gain)
        self.tolerance = _positive('tolerance', tolerance, 0.5)
        self.forward = forward or counter.forward
        param = next(counter.model.parameters())
        self.m = torch.ones((), dtype=torch.float64, device=param.device)
        self.settled: Optional[Dict] = None
        self._cost: Optional[Tensor] = None
        self._ratio: Optional[Tensor] = None

    @property
    def settle_iter(self) -> int:
        """The step after which the sizes are settled."""
        return max(1, int(round(self.settle_frac * self.max_iters)))

    def loss(self) -> Tensor:
        """``lambda_t * L_GMACs`` (per image) of the last recorded forward;
        zero once settled. Also keeps the cost for :meth:`step`.

        Returns:
            Tensor: The penalty, a 0-d device tensor.
        """
        cost = self.counter.loss()
        self._cost = cost.detach()
        if self.settled is not None:
            return cost * 0
        ratio = (self._cost.to(self.m) / self.target).clamp_min(1e-12)
        self._ratio = ratio
        lam = self.loss_weight * self.m * _proportional(ratio, self.p_gain)
        return lam.to(cost.dtype) * cost

    def weight(self) -> Tensor:
        """The current lambda (without the proportional factor's latest
        change): ``loss_weight * m_t``.

        Returns:
            Tensor: lambda, a 0-d device tensor.
        """
        return self.loss_weight * self.m

    def step(self, iteration: int) -> Optional[Dict]:
        """After optimizer step ``iteration`` (1-based): update the
        multiplier from the last :meth:`loss`'s cost, or settle the sizes
        when ``iteration`` reaches :attr:`settle_iter`. Returns the settle
        result the one time it happens.

        Args:
            iteration (int): The optimizer step just taken, 1-based.

        Returns:
            dict | None: :meth:`settle`'s result at the settle step, else None.
        """
        if self.settled is not None:
            return None
        if self._ratio is not None:
            self.m = (self.m * self._ratio**self.gain).clamp(*M_RANGE)
            self._ratio = None
        if self.settle_frac < 1 and iteration >= self.settle_iter:
            return self.settle()
        return None

    def settle(self) -> Dict:
        """Settle the sizes on the target and freeze the alphas now.

        Returns:
            dict: :func:`settle_to_gmacs`'s result and ``pools`` (how many
            layers were frozen).
        """
        c = self.counter
        pools = [p for p in c.pools if p.alpha.requires_grad]
        result = settle_to_gmacs(c.model, self.target, c.input_size,
                                 c.in_channels, self.forward, self.tolerance,
                                 pools)
        for p in pools:
            p.fixed = True
        result['pools'] = len(pools)
        self.settled = result
        return result

    def gap(self) -> Optional[Tensor]:
        """``C_t / X - 1`` of the last recorded forward (a device tensor).

        Returns:
            Tensor | None: A 0-d device tensor; None before the first
            recorded forward.
        """
        return None if self._cost is None else self._cost / self.target - 1

    def state_dict(self) -> Dict:
        """What a checkpoint keeps to resume exactly.

        Returns:
            dict: The multiplier ``m`` and whether the sizes are settled.
        """
        return dict(m=float(self.m), settled=self.settled, target=self.target)

    def load_state_dict(self, state: Dict) -> None:
        """Restore :meth:`state_dict`; settled alphas are frozen again (the
        checkpoint holds their settled values).

        Args:
            state (dict): What :meth:`state_dict` returned.
        """
        self.m.fill_(state['m'])
        self.settled = state.get('settled')
        if self.settled is not None:
            for p in self.counter.pools:
                p.fixed = True
