"""Statistics of the seeded studies: paired differences, their confidence
intervals and t-tests, and the human resolution curve read at a cost.

Every comparison in the studies pairs two conditions by seed (same data
order and, where the code allows, the same initial weights), so the unit of
analysis is the per-seed difference ``d_s = a_s - b_s``:

* mean ``d``, its sample standard deviation ``s`` (``n - 1``);
* the 95 % confidence interval ``d +- t_{0.975, n-1} * s / sqrt(n)``
  (Student's t);
* the two-sided paired t-test p-value (``scipy.stats.ttest_rel``).
"""
import math
import statistics
from typing import Dict, Optional, Sequence, Tuple

__all__ = [
    'mean_std', 'paired_difference', 'format_paired', 'interpolate_log_cost',
    'cost_within'
]


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for one value).

    Args:
        values (Sequence[float]): At least one value.

    Returns:
        tuple[float, float]: Mean and standard deviation.

    Example:
        >>> mean_std([1.0, 2.0, 3.0])
        (2.0, 1.0)
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError('mean_std needs at least one value')
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.mean(values), sd


def _finite_or_none(x: float) -> Optional[float]:
    return float(x) if x is not None and math.isfinite(x) else None


def paired_difference(a: Sequence[float],
                      b: Sequence[float],
                      confidence: float = 0.95) -> Dict:
    """Paired comparison of ``a`` and ``b`` (one value per seed, same order).

    Args:
        a (Sequence[float]): Values of the first condition.
        b (Sequence[float]): Values of the second, paired with ``a``.
        confidence (float): Level of the interval. Default: 0.95.

    Returns:
        dict: ``n``, ``mean`` (of ``a - b``), ``sd``, ``ci`` (``(low, high)``,
        Student's t; None below 2 pairs), ``t`` and ``p`` (two-sided paired
        t-test; None below 2 pairs or where every difference is equal, which
        leaves the test undefined), ``mean_a`` and ``mean_b``.

    Example:
        >>> out = paired_difference([3.0, 4.0, 6.0], [1.0, 2.0, 2.0])
        >>> round(out['mean'], 4), out['t'], round(out['p'], 4)
        (2.6667, 4.0, 0.0572)
    """
    from scipy import stats
    if len(a) != len(b):
        raise ValueError(f'paired values need equal lengths, got {len(a)} '
                         f'and {len(b)}')
    if not 0 < confidence < 1:
        raise ValueError(f'confidence must be in (0, 1), got {confidence!r}')
    n = len(a)
    if n == 0:
        raise ValueError('paired_difference needs at least one pair')
    d = [float(x) - float(y) for x, y in zip(a, b)]
    mean, sd = mean_std(d)
    out = dict(
        n=n,
        mean=mean,
        sd=sd,
        ci=None,
        t=None,
        p=None,
        mean_a=statistics.mean(map(float, a)),
        mean_b=statistics.mean(map(float, b)))
    if n < 2:
        return out
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    out['ci'] = (mean - half, mean + half)
    if sd > 0:
        test = stats.ttest_rel([float(x) for x in a], [float(y) for y in b])
        out['t'] = _finite_or_none(test.statistic)
        out['p'] = _finite_or_none(test.pvalue)
    return out


def interpolate_log_cost(points: Sequence[Tuple[float, float]],
                         gmacs: float) -> Optional[float]:
    """The value of a resolution curve at a cost: linear in ``log(GMACs)``
    between the two measured points that bracket ``gmacs``.

    Args:
        points (Sequence[tuple]): ``(gmacs, value)`` per input resolution.
        gmacs (float): The cost to read the curve at.

    Returns:
        float | None: The interpolated value; the point's own value at an
        exact match; None outside the measured range (no extrapolation).

    Example:
        >>> interpolate_log_cost([(1.0, 10.0), (4.0, 20.0)], 2.0)
        15.0
    """
    if not gmacs > 0:
        raise ValueError(f'gmacs must be > 0, got {gmacs!r}')
    pts = sorted((float(g), float(v)) for g, v in points)
    if any(g <= 0 for g, _ in pts):
        raise ValueError(f'costs must be > 0, got {pts!r}')
    for g, v in pts:
        if g == gmacs:
            return v
    for (g0, v0), (g1, v1) in zip(pts, pts[1:]):
        if g0 < gmacs < g1:
            w = math.log(gmacs / g0) / math.log(g1 / g0)
            return v0 + w * (v1 - v0)
    return None


def cost_within(gmacs: float, target: float, tolerance: float = 0.05) -> bool:
    """Whether ``gmacs`` is within ``tolerance`` (relative) of ``target``.

    Args:
        gmacs (float): A cost.
        target (float): The target cost (> 0).
        tolerance (float): Relative band. Default: 0.05.

    Returns:
        bool: Whether ``|gmacs / target - 1| <= tolerance``.

    Example:
        >>> cost_within(1.04, 1.0), cost_within(0.94, 1.0)
        (True, False)
    """
    if not target > 0:
        raise ValueError(f'target must be > 0, got {target!r}')
    # The band is closed; 1e-12 absorbs float rounding at its edges.
    return abs(gmacs / target - 1) <= tolerance + 1e-12


def format_paired(out: Dict, digits: int = 2) -> str:
    """A :func:`paired_difference` as table text: mean difference, 95 %
    interval and p.

    Args:
        out (dict): :func:`paired_difference`'s result.
        digits (int): Decimals. Default: 2.

    Returns:
        str: The text.

    Example:
        >>> format_paired(paired_difference([1.0, 2.0, 3.0, 4.0], [0.0] * 4))
        '+2.50 [+0.45, +4.55] (p=0.03)'
    """
    text = f'{out["mean"]:+.{digits}f}'
    if out['ci'] is not None:
        lo, hi = out['ci']
        text += f' [{lo:+.{digits}f}, {hi:+.{digits}f}]'
    if out['p'] is not None:
        text += f' (p={out["p"]:.2g})'
    return text
