"""The statistics of comparing one row (a component, alternative, factor level or pair) between two studies.

Each study gives the row an effect with its standard error and degrees of freedom (``Estimate``, oriented so
that positive means the part helps). The comparison is about ``diff = effect_new - effect_old``:

* **unpaired** (the default; Welch): ``se = sqrt(se_old² + se_new²)``, Welch-Satterthwaite df. Valid for any
  two studies, also regression designs, other seeds or other code.
* **paired** (``--paired``): on the seeds both studies share, the per-seed differences of the two studies'
  paired differences, a one-sample t on them. Valid too; it only gains when the same seed gives correlated
  results under both codes, which is rarely so once the code changes (see docs/compare.md).

Three tests per row, each a Holm family across the rows compared: ``changed`` (two-sided, diff != 0),
``beyond`` (the shifted one-sided test that |diff| > min_effect, its p doubled as for verdicts) and ``same``
(TOST: diff within ±min_effect). A row is ``changed`` when its Holm-adjusted p < alpha, else ``same`` when
TOST's is, else ``unclear``.

**Adaptive studies** stop a row once decided (or futile), so its estimate at the stopping look is not a
fixed-n one. A study with adaptive seeds initial..max has L = max - initial + 1 looks a row can stop at; each
gets the weight 1/L, fixed by the design before any data, and a p-value divided by ``w_old · w_new`` is valid
whatever the stopping: the weights of all (n_old, n_new) sum to 1, so by the union bound P(p / w <= u) <= u.
A fixed-seed study has weight 1. (Uniform weights, not the study's own alpha spending, which puts most of
alpha on the last look: rows compared mostly stopped before it.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..analysis.intervals import interval
from ..analysis.numbers import TIE_RTOL, finite
from ..analysis.stats import holm, judge

CHANGED, SAME, UNCLEAR, NOT_COMPARED = "changed", "same", "unclear", "not compared"


@dataclass
class Side:
    """One study's estimate of a row: effect, se, df, paired seeds, per-seed differences, look weight."""

    effect: float
    se: float
    df: float
    n: int = 0
    diffs: dict[str, float] = field(default_factory=dict)
    weight: float = 1.0

    @property
    def estimable(self) -> bool:
        return finite(self.effect) and finite(self.se) and finite(self.df) and self.df >= 1


def look_weight(adaptive: dict | None) -> float:
    """The share of alpha a row of this study is tested at: 1 for fixed seeds; with adaptive seeds 1 / L for
    the L looks (initial .. max) a row could have stopped at, whichever it stopped at."""
    if not adaptive:
        return 1.0
    return 1.0 / (adaptive["max"] - adaptive["initial"] + 1)


def unpaired(old: Side, new: Side) -> tuple[float, float, float]:
    """(diff, se, df) by Welch: the two estimates independent."""
    diff = _snap(new.effect - old.effect, old.effect, new.effect)
    var = old.se ** 2 + new.se ** 2
    if var == 0:
        return diff, 0.0, old.df + new.df
    df = var ** 2 / sum(s.se ** 4 / s.df for s in (old, new) if s.se > 0)
    return diff, math.sqrt(var), df


def paired(old: Side, new: Side) -> tuple[float, float, float, int]:
    """(diff, se, df, n) on the seeds both rows have a paired difference for (at least 2)."""
    shared = [s for s in old.diffs if s in new.diffs]
    d = np.array([new.diffs[s] - old.diffs[s] for s in shared], dtype=float)
    scale = np.maximum(np.abs([old.diffs[s] for s in shared]), np.abs([new.diffs[s] for s in shared]))
    d[np.abs(d) <= TIE_RTOL * scale] = 0.0
    n = d.size
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(n)), float(n - 1), n


def _snap(diff: float, a: float, b: float) -> float:
    """Float noise is not a difference."""
    return 0.0 if abs(diff) <= TIE_RTOL * max(abs(a), abs(b)) else diff


def tests(diff: float, se: float, df: float, min_effect: float, weight: float) -> dict[str, float]:
    """Raw p-values (divided by the look weight, capped at 1): changed, beyond (|diff| > min_effect), same."""
    p = judge(diff, se, df, 1.0, min_effect)

    def valid(x: float) -> float:
        return min(1.0, x / weight) if finite(x) else float("nan")

    return {"p_changed": valid(p["p"]), "p_beyond": valid(min(p["p_essential"], p["p_harmful"])),
            "p_same": valid(p["p_negligible"])}


def decide(rows: list[dict], alpha: float) -> None:
    """Holm across the rows for each test, then each row's call, in place.

    A row is a dict with ``p_changed``, ``p_beyond``, ``p_same`` (NaN when it could not be compared);
    sets ``p_changed_holm``, ``p_beyond_holm``, ``p_same_holm``, ``call`` and ``beyond_min_effect``."""
    for name in ("changed", "beyond", "same"):
        adjusted = holm([r.get(f"p_{name}", float("nan")) for r in rows])
        for r, p in zip(rows, adjusted):
            r[f"p_{name}_holm"] = float(p)
    for r in rows:
        if not finite(r["p_changed_holm"]):
            r["call"] = NOT_COMPARED
        elif r["p_changed_holm"] < alpha:
            r["call"] = CHANGED
        elif finite(r["p_same_holm"]) and r["p_same_holm"] < alpha:
            r["call"] = SAME
        else:
            r["call"] = UNCLEAR
        r["beyond_min_effect"] = bool(r["call"] == CHANGED and finite(r["p_beyond_holm"])
                                      and r["p_beyond_holm"] < alpha)


def difference(old: Side, new: Side, *, pair: bool, alpha: float, min_effect: float) -> dict:
    """One row's difference, its (1 - alpha) interval (at the look-weighted level) and raw p-values.

    ``pair``: by seed (the caller checks that at least 2 seeds are shared). ``pairing`` says how it was
    computed; ``reason`` why it could not be (then the p-values are NaN)."""
    nan = float("nan")
    out = {"diff": nan, "se": nan, "df": nan, "ci": [nan, nan], "pairing": "unpaired", "n_shared": 0,
           "p_changed": nan, "p_beyond": nan, "p_same": nan, "reason": ""}
    missing = [name for name, s in (("old", old), ("new", new)) if not s.estimable]
    if missing:
        out["reason"] = f"no estimate in the {' and '.join(missing)} study (too few seeds, or not estimable)"
        return out
    weight = old.weight * new.weight
    if pair:
        diff, se, df, out["n_shared"] = paired(old, new)
        out["pairing"] = "paired"
    else:
        diff, se, df = unpaired(old, new)
    out.update(diff=diff, se=se, df=df, ci=interval(diff, se, df, alpha * weight),
               **tests(diff, se, df, min_effect, weight))
    return out
