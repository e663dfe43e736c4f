"""Small numeric helpers of the analysis: finite numbers, orientation, float ties, summaries, seed order.

**Orientation.** A paired difference is oriented so that positive means "the component helps":
``baseline - ablated`` when the metric is maximised, ``ablated - baseline`` when it is minimised.
**Ties.** A paired difference smaller than ``TIE_RTOL`` times the metric's magnitude is float
summation-order noise and counts as an exact 0 (``snap_ties``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
from scipy import special
from scipy import stats as st

TIE_RTOL = 1e-12


def finite(x) -> bool:
    """True for a real, finite number (bools and None are not)."""
    try:
        return x is not None and not isinstance(x, bool) and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def fnum(x) -> float | None:
    """A float for JSON (None for NaN/inf/None)."""
    return float(x) if finite(x) else None


def orient(baseline, ablated, mode: str):
    """Paired differences oriented so that positive means 'the component helps'."""
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', not {mode!r}")
    b = np.asarray(baseline, dtype=float)
    a = np.asarray(ablated, dtype=float)
    return b - a if mode == "max" else a - b


def describe(values: Iterable[float]) -> dict:
    """n, mean, std (ddof=1), sem, min, max of the values (NaN where undefined)."""
    x = [float(v) for v in values]  # plain Python: faster than numpy for a few seeds
    n = len(x)
    nan = float("nan")
    if n == 0:
        return {"n": 0, "mean": nan, "std": nan, "sem": nan, "min": nan, "max": nan}
    mean = math.fsum(x) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in x) / (n - 1)) if n >= 2 else nan
    return {
        "n": n,
        "mean": mean,
        "std": std,
        "sem": std / math.sqrt(n) if n >= 2 else nan,
        "min": min(x),
        "max": max(x),
    }


@lru_cache(maxsize=4096)
def t_quantile(q: float, df: float) -> float:
    """scipy.stats.t.ppf(q, df), cached (the same few quantiles are asked for again and again)."""
    return float(st.t.ppf(q, df))


def t_sf(x, df) -> np.ndarray:
    """scipy.stats.t.sf(x, df) (the same ufunc, NaN where df <= 0) without scipy.stats' per-call argument
    handling, which costs about 100x the ufunc on a scalar; the analysis asks for thousands of these."""
    df = np.asarray(df, dtype=float)
    return np.where(df > 0, special.stdtr(df, -np.asarray(x, dtype=float)), np.nan)


def snap_ties(diffs, scale) -> np.ndarray:
    """Differences with every |d| <= TIE_RTOL * scale (a number or one per d) set to 0 (float noise)."""
    d = np.asarray(diffs, dtype=float).copy()
    d[np.abs(d) <= TIE_RTOL * np.abs(np.asarray(scale, dtype=float))] = 0.0
    return d


def _seed_key(s):
    return (0, s) if isinstance(s, (int, float)) else (1, str(s))


def sort_seeds(seeds: Iterable) -> list:
    return sorted(seeds, key=_seed_key)
