"""Statistics for paired ablation comparisons: orientation, CIs, p-values, Holm, verdicts.

Conventions used everywhere in the analysis:

* **Orientation.** A paired difference is oriented so that *positive means "the component
  helps"*: ``baseline - ablated`` when the metric is maximised, ``ablated - baseline``
  when it is minimised.
* **Test.** The p-value is the two-sided paired t-test, i.e. a one-sample t-test of the
  per-seed differences against 0 (identical to ``scipy.stats.ttest_rel``). Wilcoxon's
  signed-rank test was considered and not used: with the 3-10 seeds of an ablation its
  smallest attainable two-sided p is ``2 / 2**n`` (0.25 at n=3, 0.0625 at n=5), so it could
  never reach significance where studies actually live. The t-test is exact for normal
  seed noise and conservative when one seed is an outlier (the outlier inflates the std).
* **CIs.** A t interval at level ``1 - alpha`` always (n >= 2), and beside it a percentile
  bootstrap interval (``scipy.stats.bootstrap``) when n >= ``MIN_BOOTSTRAP_N``. The
  percentile method is used rather than BCa because BCa's jackknife is unstable (often
  NaN) on 3-5 paired seeds.
* **Multiplicity.** Holm's step-down correction across the components of one analysis
  (a family); p-values that could not be computed (n < 2) are left out of the family.
* **Verdict.** ``essential`` when (a) the Holm-adjusted p < alpha, (b) the effect (mean
  paired difference) is at least ``min_effect`` and (c) *every* CI reported for it excludes
  0 on the "helps" side; ``harmful`` the same in the other direction; otherwise
  ``no evidence``. Condition (c) can only make the rule stricter than the Holm test, so
  the family-wise false-positive rate stays at most alpha, and a reader never sees a
  verdict next to a printed CI that contradicts it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

import numpy as np
from scipy import stats as st

ESSENTIAL, HARMFUL, NO_EVIDENCE = "essential", "harmful", "no evidence"
MIN_BOOTSTRAP_N = 3
BOOTSTRAP_METHOD = "percentile"


# ---------------------------------------------------------------- small helpers


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


# ---------------------------------------------------------------- intervals and tests


def t_ci(values: Sequence[float], alpha: float = 0.05) -> tuple[float, float]:
    """Two-sided t interval for the mean: mean +- t_{1-alpha/2, n-1} * s / sqrt(n)."""
    x = np.asarray(values, dtype=float)
    n = x.size
    if n < 2:
        return (float("nan"), float("nan"))
    m = float(np.mean(x))
    half = t_quantile(1 - alpha / 2, n - 1) * float(np.std(x, ddof=1)) / math.sqrt(n)
    return (m - half, m + half)


def bootstrap_ci(
    values,
    alpha: float = 0.05,
    n_resamples: int = 10000,
    random_state: int | None = 0,
    method: str = BOOTSTRAP_METHOD,
) -> tuple[float, float] | tuple[np.ndarray, np.ndarray]:
    """Bootstrap CI of the mean via ``scipy.stats.bootstrap``.

    ``values`` may be 1-D (one interval) or 2-D (one interval per row, all rows resampled
    with the same indices: row i's interval equals scipy's call on row i alone with the
    same ``random_state``). Degenerate data (all equal) gives the point itself.
    """
    x = np.asarray(values, dtype=float)
    n = x.shape[-1]
    if n < MIN_BOOTSTRAP_N:
        nan = np.full(x.shape[:-1], np.nan) if x.ndim > 1 else float("nan")
        return (nan, nan)
    res = st.bootstrap(
        (x,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=1 - alpha,
        method=method,
        rng=random_state,
        axis=-1,
        vectorized=True,
    )
    lo, hi = res.confidence_interval.low, res.confidence_interval.high
    if x.ndim == 1:
        return (float(lo), float(hi))
    return (np.asarray(lo, dtype=float), np.asarray(hi, dtype=float))


def one_sample_t(diffs: Sequence[float]) -> tuple[float, float]:
    """(t statistic, two-sided p) of the differences against 0 (= scipy.stats.ttest_rel).

    With zero spread (every seed gave the same difference) scipy returns NaN or inf; here a
    nonzero constant difference gives p = 0 and an all-zero one p = 1 (the caller flags it).
    """
    x = np.asarray(diffs, dtype=float)
    n = x.size
    if n < 2:
        return (float("nan"), float("nan"))
    sd = float(np.std(x, ddof=1))
    m = float(np.mean(x))
    if sd == 0.0 or not math.isfinite(sd):
        if m == 0.0:
            return (0.0, 1.0)
        return (math.copysign(math.inf, m), 0.0)
    tstat = m / (sd / math.sqrt(n))
    p = float(2 * st.t.sf(abs(tstat), n - 1))
    return (float(tstat), p)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error control, any dependence).

    adj_(i) = max_{j <= i} min(1, (m - j + 1) * p_(j)) over the sorted p-values. NaN entries
    (tests that could not be run) are left out of the family and stay NaN.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="mergesort")]
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        out[idx] = running
    return out


def prediction_interval(values: Sequence[float], alpha: float = 0.05) -> tuple[float, float]:
    """t prediction interval for one new run: mean +- t_{1-alpha/2,n-1} * s * sqrt(1 + 1/n)."""
    x = np.asarray(values, dtype=float)
    n = x.size
    if n < 2:
        return (float("nan"), float("nan"))
    m = float(np.mean(x))
    half = t_quantile(1 - alpha / 2, n - 1) * float(np.std(x, ddof=1)) * math.sqrt(1 + 1 / n)
    return (m - half, m + half)


# ---------------------------------------------------------------- verdicts


def verdict(
    effect: float,
    cis: Iterable[tuple[float, float]],
    p_holm: float,
    alpha: float,
    min_effect: float = 0.0,
) -> str:
    """essential / harmful / no evidence (see the module docstring for the rule)."""
    if not (finite(effect) and finite(p_holm)) or p_holm >= alpha:
        return NO_EVIDENCE
    intervals = [(lo, hi) for lo, hi in cis if finite(lo) and finite(hi)]
    if not intervals:
        return NO_EVIDENCE
    if effect > 0 and effect >= min_effect and all(lo > 0 for lo, _ in intervals):
        return ESSENTIAL
    if effect < 0 and -effect >= min_effect and all(hi < 0 for _, hi in intervals):
        return HARMFUL
    return NO_EVIDENCE


# ---------------------------------------------------------------- adaptive seeds


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


# ---------------------------------------------------------------- the paired comparison


def compare_paired(
    baseline_values_by_seed: Mapping[int, float],
    other_values_by_seed: Mapping[int, float],
    mode: str,
    alpha: float = 0.05,
    min_effect: float = 0.0,
    n_bootstrap: int = 10000,
    *,
    random_state: int | None = 0,
    bootstrap: bool = True,
) -> dict:
    """Paired comparison of a variant against the baseline on the seeds both have.

    Positive ``effect`` means the baseline is better, i.e. the thing the other variant lacks
    (or changes) helps. Only seeds where *both* values exist and are finite are paired;
    ``seeds`` lists them and ``unpaired`` says which seeds were dropped and why. The
    verdict treats this as a family of one test (``p_holm == p``); the study analysis
    re-adjusts across components. With fewer than two paired seeds the result is
    ``no evidence`` with ``conclusive: False`` and a note saying it cannot conclude.

    Returns a JSON-ready dict: n, seeds, diffs {seed: d}, effect, std, se, ci (t),
    ci_t, ci_bootstrap, t, p, p_holm, verdict, conclusive, note, unpaired,
    baseline {n,mean,std}, other {n,mean,std}.
    """
    seeds, diffs, b, o, unpaired = pair_values(dict(baseline_values_by_seed), dict(other_values_by_seed), mode)
    result = _summarise_diffs(diffs, alpha, n_bootstrap if bootstrap else 0, random_state)
    p_holm = result["p"]
    result.update(
        seeds=list(seeds),
        diffs={str(s): float(d) for s, d in zip(seeds, diffs)},
        unpaired=unpaired,
        baseline=_short(describe(b)),
        other=_short(describe(o)),
        p_holm=p_holm,
    )
    result["verdict"] = verdict(result["effect"], _cis(result), p_holm, alpha, min_effect)
    result["note"] = pairing_note(result["n"], unpaired)
    return result


def _summarise_diffs(diffs: np.ndarray, alpha: float, n_bootstrap: int, random_state, boot_ci=None) -> dict:
    d = describe(diffs)
    n = d["n"]
    tstat, p = one_sample_t(diffs)
    ci = t_ci(diffs, alpha)
    if boot_ci is None:
        boot_ci = bootstrap_ci(diffs, alpha, n_bootstrap, random_state) if (n_bootstrap and n >= MIN_BOOTSTRAP_N) else (float("nan"),) * 2
    return {
        "n": n,
        "effect": d["mean"],
        "std": d["std"],
        "se": d["sem"],
        "ci": [ci[0], ci[1]],
        "ci_t": [ci[0], ci[1]],
        "ci_bootstrap": [float(boot_ci[0]), float(boot_ci[1])],
        "t": tstat,
        "p": p,
        "conclusive": n >= 2,
        "zero_variance": bool(n >= 2 and d["std"] == 0.0),
    }


def _cis(result: dict) -> list[tuple[float, float]]:
    return [tuple(result["ci_t"]), tuple(result["ci_bootstrap"])]


def _short(d: dict) -> dict:
    return {"n": d["n"], "mean": d["mean"], "std": d["std"]}


def _seed_key(s):
    return (0, s) if isinstance(s, (int, float)) else (1, str(s))


def sort_seeds(seeds: Iterable) -> list:
    return sorted(seeds, key=_seed_key)


def pair_values(base: dict, other: dict, mode: str):
    """Seeds both have (finite), oriented diffs, baseline and other values, unpaired seeds."""
    unpaired: dict[str, list] = {"only_baseline": [], "only_other": [], "nonfinite": []}
    seeds = []
    for s in sort_seeds(set(base) | set(other)):
        if s not in other:
            unpaired["only_baseline"].append(s)
        elif s not in base:
            unpaired["only_other"].append(s)
        elif not (finite(base[s]) and finite(other[s])):
            unpaired["nonfinite"].append(s)
        else:
            seeds.append(s)
    b = np.array([float(base[s]) for s in seeds], dtype=float)
    o = np.array([float(other[s]) for s in seeds], dtype=float)
    return seeds, (orient(b, o, mode) if seeds else np.array([])), b, o, unpaired


def pairing_note(n: int, unpaired: Mapping[str, list]) -> str:
    """A sentence on which seeds were paired and which were dropped, and whether n suffices."""
    parts = []
    if n < 2:
        parts.append(f"cannot conclude: {n} paired seed{'s' if n != 1 else ''} (need at least 2)")
    dropped = []
    if unpaired.get("only_baseline"):
        dropped.append(f"seed(s) {_fmt_seeds(unpaired['only_baseline'])} lack the ablated run")
    if unpaired.get("only_other"):
        dropped.append(f"seed(s) {_fmt_seeds(unpaired['only_other'])} lack the baseline run")
    if unpaired.get("nonfinite"):
        dropped.append(f"seed(s) {_fmt_seeds(unpaired['nonfinite'])} have a non-finite metric")
    if dropped:
        parts.append(f"paired on {n} seed(s) only: " + "; ".join(dropped))
    return "; ".join(parts)


def _fmt_seeds(seeds) -> str:
    return ", ".join(str(s) for s in seeds)
