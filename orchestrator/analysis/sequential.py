"""Adaptive seeds: alpha split over the sample sizes a component may stop at, so tests stay valid under
optional stopping (see adaptive.py).
"""

from __future__ import annotations

from .numbers import finite


def sequential_level(n: int, initial: int, maximum: int, alpha: float, interim_share: float) -> float:
    """The share of alpha spent by a look at n paired seeds (adaptive seeds; see adaptive.py).

    Every sample size a component can stop at (initial .. max) gets its own slice of alpha,
    chosen before any data: ``interim_share * alpha`` is split evenly over the interim sizes
    initial .. max-1, the rest goes to n = max. The slices sum to alpha, so by the union
    bound the test stays at level alpha whatever rule decides when to stop adding seeds.
    """
    if maximum <= initial:
        return alpha
    if n >= maximum:
        return alpha * (1 - interim_share)
    return alpha * interim_share / (maximum - initial)


def sequential_p(p: float, n: int, initial: int, maximum: int, alpha: float, interim_share: float) -> float:
    """A p-value valid under optional stopping: p * alpha / level(n), capped at 1.

    P(sequential_p <= u) <= sum_n level(n) * u / alpha = u for every u <= alpha, so Holm may
    be applied to these as to ordinary p-values.
    """
    if not finite(p):
        return float("nan")
    level = sequential_level(n, initial, maximum, alpha, interim_share)
    return min(1.0, p * alpha / level)
