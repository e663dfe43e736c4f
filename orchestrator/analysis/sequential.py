"""Sequential seeds: p-values that stay valid however a study decides when to stop adding seeds.

A row (component, alternative, factor level, interaction pair) is looked at after every seed from
``initial`` to ``max``. Each one-sided test (essential, harmful, either side of TOST, either side of
the test against 0) is a t test whose nominal p-value is compared, at look n, with the boundary
``gamma * w(n)``; ``w`` is 1 at interim looks and the final weight at ``max`` (the design's shape,
fixed before any data: ``DESIGNS``, named in the study config), and ``gamma`` is calibrated so that
under the row's least favourable null the chance of crossing the boundary at *any* look is exactly
the row's alpha. Adaptive seeds look first at ``FIRST_LOOK`` seeds (``adaptive_design``): a look
at 3 seeds, a t test on 2 degrees of freedom, would spend alpha it can rarely use.

The calibration is the exact joint law of the repeated t statistics of one row (Gaussian
differences: the statistic at the null's edge does not depend on the unknown variance, so one
simulation of ``PATHS`` paths serves every study): ``F(u) = P(min_n p_n / w(n) <= u)``. The
*repeated p-value* of a row at look n is ``F(min over its looks so far of p_k / w(k))``: the
smallest alpha at which the design would have stopped by now. It is valid at any stopping time
(P(repeated p <= u) <= u), never rises as seeds arrive (a row decided early stays decided), and
Holm on these is the graphical procedure on repeated p-values: a rejected row's alpha is recycled
to the family's other rows. Each row keeps its own variance and degrees of freedom, so one variant
three times noisier than the others does not borrow a precision it lacks.

Looks whose timing depends on the data (allocation order, batches, a budget stop) only skip or
end the planned looks: the boundary at each n was fixed before any data, so a study that stops
before ``max`` has spent at most ``alpha_spent(n)``, the alpha planned up to its last look, never
more. Rows with fewer than ``initial`` paired seeds are not tested (repeated p = 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats as st

#: adaptive seeds' first look (seed count): a look at 3 seeds spends as much alpha as any other look but
#: its t test has 2 degrees of freedom, so it rarely decides; without it more rows are decided at max
FIRST_LOOK = 4


@dataclass(frozen=True)
class Choice:
    """A named design of adaptive seeds (``seeds: {design: ...}``; looks from ``FIRST_LOOK``): the final
    look's boundary relative to an interim look's, and the predictive power below which a row gets no
    more seeds (adaptive.py's futility)."""

    final_weight: float
    futility: float


#: the named designs, a trade measured by benchmarks/sequential.py (10,000 studies; trials / rows decided
#: against 10 fixed seeds; stated mix, then the same mix with noisier trials):
#: ``lean`` 0.592x / 0.982x, noisier 0.666x / 0.801x: fewest trials, noisy studies leave more rows inconclusive;
#: ``thorough`` 0.694x / 0.996x, noisier 0.815x / 0.957x: more trials, keeps noisy studies' decisions
DESIGNS = {"lean": Choice(final_weight=1.5, futility=0.35), "thorough": Choice(final_weight=8.0, futility=0.20)}
DEFAULT = "lean"
#: the final look's boundary of the default design (also interim looks at fixed seeds)
FINAL_WEIGHT = DESIGNS[DEFAULT].final_weight
#: simulated paths of the calibration (fixed random state: the design is the same in every run)
PATHS = 200_000


@lru_cache(maxsize=32)
def _calibration(initial: int, maximum: int, final_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """(sorted min over all looks of p_n / w(n), running minimum per look: shape (looks, PATHS))."""
    rng = np.random.default_rng(20_291)
    total = np.zeros(PATHS)
    squares = np.zeros(PATHS)
    mean = np.zeros(PATHS)
    running = np.full(PATHS, np.inf)
    per_look = []
    for n in range(1, maximum + 1):
        x = rng.standard_normal(PATHS)
        total += x
        delta = x - mean
        mean += delta / n
        squares += delta * (x - mean)  # Welford: sum of squared deviations
        if n < max(initial, 2):
            continue
        t = mean / np.sqrt(squares / (n - 1) / n)
        p = st.t.sf(t, n - 1)
        running = np.minimum(running, p / weight(n, maximum, final_weight))
        per_look.append(np.sort(running))
    return per_look[-1], np.array(per_look)


def weight(n: int, maximum: int, final_weight: float = FINAL_WEIGHT) -> float:
    """w(n): the boundary's shape, 1 at interim looks, ``final_weight`` at max."""
    return final_weight if n >= maximum else 1.0


@dataclass(frozen=True)
class Design:
    """A sequential design: looks after every seed from ``initial`` to ``max``, the boundary's shape."""

    initial: int
    maximum: int
    final_weight: float = FINAL_WEIGHT

    @property
    def first(self) -> int:
        return max(self.initial, 2)

    def looks(self) -> list[int]:
        return list(range(self.first, self.maximum + 1))

    def cdf(self, u) -> np.ndarray:
        """F(u): P(some look's p / w <= u) under the least favourable null (bounded by the union bound)."""
        u = np.asarray(u, dtype=float)
        final, _ = _calibration(self.first, self.maximum, self.final_weight)
        emp = np.searchsorted(final, u, side="right") / final.size
        union = u * sum(weight(n, self.maximum, self.final_weight) for n in self.looks())
        return np.minimum(np.maximum(emp, np.minimum(u * self.final_weight, 1.0)), np.minimum(union, 1.0))

    def gamma(self, alpha: float) -> float:
        """The boundary's scale at level alpha: F(gamma) = alpha."""
        final, _ = _calibration(self.first, self.maximum, self.final_weight)
        k = int(np.floor(alpha * final.size))
        return float(final[max(k - 1, 0)])

    def boundary(self, n: int, alpha: float) -> float:
        """The nominal one-sided p a look at n must reach for a test at level alpha."""
        if n < self.first:
            return 0.0
        return self.gamma(alpha) * weight(min(n, self.maximum), self.maximum, self.final_weight)

    def alpha_spent(self, looks, alpha: float) -> float:
        """The alpha a test at level alpha has spent after these looks (seed counts, in order): the chance,
        under its null, of crossing the boundary at one of them. A study ended early (a budget stop)
        has spent this much, the alpha planned up to its last look, and no more."""
        ns = sorted({min(int(n), self.maximum) for n in looks if int(n) >= self.first})
        if not ns:
            return 0.0
        g = self.gamma(alpha)
        if ns == list(range(self.first, ns[-1] + 1)):
            _, per_look = _calibration(self.first, self.maximum, self.final_weight)
            row = per_look[ns[-1] - self.first]
            return float(np.searchsorted(row, g, side="right") / row.size)
        # looks skipped (batches): crossing at a subset of looks is at most crossing at all of them
        return self.alpha_spent(range(self.first, ns[-1] + 1), alpha)

    def repeated(self, p, n) -> np.ndarray:
        """Repeated p-values of one-sided tests: F(p / w(n)); 1 below ``initial`` seeds, NaN stays NaN.

        ``p`` and ``n`` broadcast; give the running minimum of p / w over a row's looks as ``p`` with
        ``n = max`` weight folded in by the caller (``repeated_min``)."""
        p = np.asarray(p, dtype=float)
        n = np.asarray(n)
        w = np.where(n >= self.maximum, self.final_weight, 1.0)
        out = self.cdf(np.where(np.isfinite(p), p, 1.0) / w)
        out = np.where(n < self.first, 1.0, out)
        return np.where(np.isfinite(p), out, np.nan)

    def repeated_min(self, ps, ns) -> float:
        """The repeated p-value of one row after looks at seed counts ``ns`` with one-sided p-values ``ps``:
        F of the running minimum of p / w(n) over the looks (so it never rises as seeds arrive)."""
        best = float("nan")
        for p, n in zip(ps, ns):
            if not np.isfinite(p) or n < self.first:
                continue
            q = p / weight(min(n, self.maximum), self.maximum, self.final_weight)
            best = q if not np.isfinite(best) else min(best, q)
        if not np.isfinite(best):
            return 1.0 if any(np.isfinite(p) for p in ps) else float("nan")
        return float(self.cdf(best))


def adaptive_design(initial: int, maximum: int, name: str = DEFAULT) -> Design:
    """The design of adaptive seeds ``{initial, max, design: name}``: looks from ``FIRST_LOOK`` (or ``initial``
    if later, ``max`` if sooner) to ``max``, the named design's final weight; rows below the first look are
    not tested (futility may still stop them)."""
    return Design(min(max(initial, FIRST_LOOK), maximum), maximum, DESIGNS[name].final_weight)
