"""Power: the minimum detectable effect (80% power, non-central t) and the seeds that would bring it
down to a target effect.
"""

from __future__ import annotations

import math
from functools import lru_cache

from scipy import optimize, special
from scipy import stats as st

from .numbers import finite, t_quantile

POWER = 0.80


MAX_SEEDS = 1000


@lru_cache(maxsize=1 << 16)
def power_multiplier(df: int, alpha: float, power: float = POWER) -> float:
    """c such that a two-sided t-test at alpha with df detects an effect of c * se with this power.

    The root of ``nct.sf(crit, df, c) = power``. scipy's own inverse (``nctdtrinc``, good to about 1e-5)
    gives a narrow bracket, so the root finder needs a few steps instead of ~15; the root is the same to
    brentq's tolerance (falls back to the bracket [0, 100] should the narrow one not hold the root).
    """
    crit = t_quantile(1 - alpha / 2, df)

    def gap(ncp: float) -> float:
        return st.nct.sf(crit, df, ncp) - power

    guess = float(special.nctdtrinc(df, 1 - power, crit))
    if math.isfinite(guess) and guess > 0:
        try:
            return float(optimize.brentq(gap, guess * (1 - 1e-4), guess * (1 + 1e-4)))
        except ValueError:  # the bracket missed the root
            pass
    return float(optimize.brentq(gap, 0.0, 100.0))


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
