"""Power: the minimum detectable effect (80% power, non-central t) and the seeds that would bring it
down to a target effect.
"""

from __future__ import annotations

import math
from functools import lru_cache

from scipy import optimize
from scipy import stats as st

from .numbers import finite, t_quantile

POWER = 0.80


MAX_SEEDS = 1000


@lru_cache(maxsize=4096)
def power_multiplier(df: int, alpha: float, power: float = POWER) -> float:
    """c such that a two-sided t-test at alpha with df detects an effect of c * se with this power."""
    crit = t_quantile(1 - alpha / 2, df)
    return float(optimize.brentq(lambda ncp: st.nct.sf(crit, df, ncp) - power, 0.0, 100.0))


def mde(se: float, df: int, alpha: float) -> float:
    """Minimum detectable effect (80% power, two-sided alpha) at this standard error."""
    if not (finite(se) and df >= 1) or se <= 0:
        return float("nan")
    return power_multiplier(int(df), alpha) * se


def seeds_needed(sd_per_seed: float, target: float, alpha: float, df_per_seed: float = 1.0,
                 df_offset: float = -1.0) -> int | None:
    """Smallest n whose mde (se = sd_per_seed / sqrt(n), df = df_per_seed * n + df_offset) <= target.

    None when the target is 0 or the spread unknown; MAX_SEEDS + 1 when even MAX_SEEDS do not suffice.
    """
    if not (finite(sd_per_seed) and finite(target)) or target <= 0 or sd_per_seed < 0:
        return None
    if sd_per_seed == 0:
        return 2

    def ok(n: int) -> bool:
        df = max(1, round(df_per_seed * n + df_offset))
        return power_multiplier(df, alpha) * sd_per_seed / math.sqrt(n) <= target

    if not ok(MAX_SEEDS):
        return MAX_SEEDS + 1
    lo, hi = 2, MAX_SEEDS
    if ok(lo):
        return lo
    while hi - lo > 1:  # ok() is monotone in n
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi
