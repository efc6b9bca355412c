"""mmdynopool.analysis.stats against numbers computed by hand.

The t quantiles are the textbook table values (t_{0.975, 3} = 3.182,
t_{0.975, 1} = 12.706 = tan(0.475 pi)); the p-values come from the closed
forms of Student's t CDF for 1 and 3 degrees of freedom, not from scipy.
"""
import math

import pytest

from mmdynopool.analysis.stats import (cost_within, format_paired,
                                       interpolate_log_cost, mean_std,
                                       paired_difference)


def p_df3(t):
    """Two-sided p of Student's t with 3 degrees of freedom (closed form:
    F(t) = 1/2 + (x / (1 + x^2) + atan x) / pi, x = t / sqrt 3)."""
    x = abs(t) / math.sqrt(3)
    return 1 - 2 / math.pi * (x / (1 + x * x) + math.atan(x))


def test_paired_difference_four_seeds():
    # d = 1, 2, 3, 4: mean 2.5, sd sqrt(5/3), se = sd / 2, t = 3.873.
    out = paired_difference([1.5, 2.0, 3.5, 4.0], [0.5, 0.0, 0.5, 0.0])
    sd = math.sqrt(5 / 3)
    assert out['n'] == 4
    assert out['mean'] == pytest.approx(2.5)
    assert out['sd'] == pytest.approx(sd)
    assert out['t'] == pytest.approx(2.5 / (sd / 2))
    assert out['t'] == pytest.approx(3.8730, abs=1e-4)
    assert out['p'] == pytest.approx(p_df3(2.5 / (sd / 2)), rel=1e-9)
    assert out['p'] == pytest.approx(0.0305, abs=1e-4)
    lo, hi = out['ci']
    half = 3.182446 * sd / 2  # t_{0.975, 3} from the table
    assert lo == pytest.approx(2.5 - half, abs=1e-5)
    assert hi == pytest.approx(2.5 + half, abs=1e-5)
    assert (lo, hi) == pytest.approx((0.4457, 4.5543), abs=1e-4)
    assert out['mean_a'] == pytest.approx(2.75)
    assert out['mean_b'] == pytest.approx(0.25)


def test_paired_difference_two_seeds_and_sign():
    # d = 2, 3: mean 2.5, sd 1/sqrt 2, se 0.5, t = 5; df = 1 is Cauchy:
    # p = 1 - 2 atan(5) / pi.
    out = paired_difference([3.0, 5.0], [1.0, 2.0])
    assert out['t'] == pytest.approx(5.0)
    assert out['p'] == pytest.approx(1 - 2 * math.atan(5) / math.pi)
    half = math.tan(0.475 * math.pi) * 0.5
    assert out['ci'] == pytest.approx((2.5 - half, 2.5 + half))
    assert out['ci'] == pytest.approx((-3.853, 8.853), abs=1e-3)
    # Swapping the conditions flips the sign, not the p-value.
    back = paired_difference([1.0, 2.0], [3.0, 5.0])
    assert back['mean'] == -2.5 and back['t'] == pytest.approx(-5.0)
    assert back['p'] == pytest.approx(out['p'])


def test_paired_difference_degenerate():
    one = paired_difference([2.0], [1.0])
    assert one['mean'] == 1.0 and one['ci'] is None and one['p'] is None
    # Every difference equal: the interval is a point, the test undefined.
    same = paired_difference([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert same['ci'] == pytest.approx((1.0, 1.0))
    assert same['p'] is None and same['t'] is None
    with pytest.raises(ValueError, match='equal lengths'):
        paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match='at least one pair'):
        paired_difference([], [])
    with pytest.raises(ValueError, match='confidence'):
        paired_difference([1.0, 2.0], [0.0, 0.0], confidence=1.0)


def test_format_paired():
    out = paired_difference([1.5, 2.0, 3.5, 4.0], [0.5, 0.0, 0.5, 0.0])
    assert format_paired(out) == '+2.50 [+0.45, +4.55] (p=0.03)'
    assert format_paired(paired_difference([2.0], [3.5])) == '-1.50'
    assert format_paired(paired_difference([2.0, 3.0], [1.0, 2.0])) == \
        '+1.00 [+1.00, +1.00]'


def test_mean_std():
    assert mean_std([2.0, 4.0, 9.0]) == pytest.approx((5.0, math.sqrt(13)))
    assert mean_std([7.0]) == (7.0, 0.0)
    with pytest.raises(ValueError):
        mean_std([])


def test_interpolate_log_cost():
    # Halfway in log between 1 and 4 GMACs is 2.
    assert interpolate_log_cost([(4.0, 20.0), (1.0, 10.0)], 2.0) == \
        pytest.approx(15.0)
    # A quarter of the way in log from 1 to 16 is 2.
    pts = [(1.0, 10.0), (16.0, 30.0), (64.0, 0.0)]
    assert interpolate_log_cost(pts, 2.0) == pytest.approx(15.0)
    # Bracketed by 16 and 64: halfway in log is 32.
    assert interpolate_log_cost(pts, 32.0) == pytest.approx(15.0)
    assert interpolate_log_cost(pts, 16.0) == 30.0
    assert interpolate_log_cost(pts, 0.5) is None  # no extrapolation
    assert interpolate_log_cost(pts, 65.0) is None
    with pytest.raises(ValueError, match='gmacs must be > 0'):
        interpolate_log_cost(pts, 0.0)


def test_cost_within():
    assert cost_within(1.05, 1.0) and cost_within(0.95, 1.0)
    assert not cost_within(1.0501, 1.0) and not cost_within(0.9499, 1.0)
    assert cost_within(1.09, 1.0, tolerance=0.1)
    with pytest.raises(ValueError):
        cost_within(1.0, 0.0)
