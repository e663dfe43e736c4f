"""Intervals: the t interval, the BCa bootstrap (from ``MIN_BOOTSTRAP_N`` seeds), the prediction
interval for one new run, and the simultaneous (Bonferroni) interval the report shows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as st

from .numbers import finite, t_quantile

MIN_BOOTSTRAP_N = 10


BOOTSTRAP_METHOD = "BCa"


CI_METHOD = "t"


def t_ci(values: Sequence[float], alpha: float = 0.05) -> tuple[float, float]:
    """Two-sided t interval for the mean: mean +- t_{1-alpha/2, n-1} * s / sqrt(n)."""
    return _t_interval(values, alpha, lambda n: 1 / math.sqrt(n))


def _t_interval(values: Sequence[float], alpha: float, scale) -> tuple[float, float]:
    """mean +- t_{1-alpha/2, n-1} * s * scale(n); NaNs below two values."""
    x = np.asarray(values, dtype=float)
    n = x.size
    if n < 2:
        return (float("nan"), float("nan"))
    m = float(np.mean(x))
    half = t_quantile(1 - alpha / 2, n - 1) * float(np.std(x, ddof=1)) * scale(n)
    return (m - half, m + half)


#: memory for one batch of resamples (and of BCa's jackknife): 2,000 seeds x 49 rows at once took 2.3 GB
BOOTSTRAP_BATCH_BYTES = 16 << 20


def bootstrap_ci(
    values,
    alpha: float = 0.05,
    n_resamples: int = 10000,
    random_state: int | None = 0,
    method: str = BOOTSTRAP_METHOD,
    min_n: int = MIN_BOOTSTRAP_N,
) -> tuple[float, float] | tuple[np.ndarray, np.ndarray]:
    """Bootstrap CI of the mean via ``scipy.stats.bootstrap``.

    ``values`` may be 1-D (one interval) or 2-D (one interval per row, all rows resampled
    with the same indices: row i's interval equals scipy's call on row i alone with the
    same ``random_state``). Fewer than ``min_n`` values, or all equal, give NaN.
    """
    x = np.asarray(values, dtype=float)
    n = x.shape[-1]
    if n < min_n or np.all(np.ptp(x, axis=-1) == 0):
        nan = np.full(x.shape[:-1], np.nan) if x.ndim > 1 else float("nan")
        return (nan, nan)
    res = st.bootstrap(
        (x,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=1 - alpha,
        method=method.lower(),
        rng=random_state,
        axis=-1,
        vectorized=True,
        batch=max(1, BOOTSTRAP_BATCH_BYTES // (8 * x.size)),  # resamples at a time: bounded memory
    )
    lo, hi = res.confidence_interval.low, res.confidence_interval.high
    if x.ndim == 1:
        return (float(lo), float(hi))
    return (np.asarray(lo, dtype=float), np.asarray(hi, dtype=float))


def prediction_interval(values: Sequence[float], alpha: float = 0.05) -> tuple[float, float]:
    """t prediction interval for one new run: mean +- t_{1-alpha/2,n-1} * s * sqrt(1 + 1/n)."""
    return _t_interval(values, alpha, lambda n: math.sqrt(1 + 1 / n))


def simultaneous_alpha(alpha: float, m: int, factor: float = 1.0) -> float:
    """Per-row level of Bonferroni-adjusted simultaneous intervals: alpha / (m * factor).

    All m intervals of a family at 1 - alpha / m cover their effects together with probability
    at least 1 - alpha. ``factor`` is the adaptive-seeds adjustment (p * factor is the p-value
    Holm sees), so the interval matches that p-value. An interval clear of +-min_effect means the
    Holm-adjusted directional p is below alpha (Holm never rejects less than Bonferroni).
    """
    return alpha / (max(m, 1) * max(factor, 1.0))


def interval(effect: float, se: float, df: float, alpha: float) -> list[float]:
    """The two-sided (1 - alpha) t interval effect +- t_{1-alpha/2, df} * se (NaN if undefined)."""
    if not (finite(effect) and finite(se) and finite(df) and df >= 1):
        return [float("nan"), float("nan")]
    half = t_quantile(1 - alpha / 2, df) * se
    return [float(effect) - half, float(effect) + half]
