"""Statistics for paired ablation comparisons: tests, Holm families, verdicts and the paired comparison.

Its helpers live beside it: numbers.py (orientation, float ties, summaries), intervals.py (t, BCa,
prediction and simultaneous intervals), power.py (mde, seeds needed), sequential.py (adaptive seeds).
Conventions used everywhere in the analysis:

* **Orientation.** A paired difference is oriented so that *positive means "the component
  helps"*: ``baseline - ablated`` when the metric is maximised, ``ablated - baseline``
  when it is minimised.
* **Ties.** A paired difference smaller than ``TIE_RTOL`` times the metric's magnitude
  (the largest |value| of the pair) is float summation-order noise and counts as an exact
  0; all-zero differences give p = 1, so float noise never looks like an effect.
* **Tests.** ``significant``: the two-sided paired t-test against 0 (= ``scipy.stats.
  ttest_rel``), Holm-adjusted. ``essential``: the shifted one-sided test of "effect <=
  min_effect", its p doubled so that it is the two-sided test's tail: essential exactly
  when the (1 - alpha) t interval lies above min_effect (Holm-adjusted). ``harmful``: the
  mirror image. ``negligible`` (only when min_effect > 0): TOST, both one-sided tests of
  "effect <= -min_effect" and "effect >= +min_effect" rejected at alpha (the 1 - 2 alpha
  interval inside +-min_effect), Holm-adjusted. ``inconclusive``: none of these. The
  directional claim (essential or harmful: the smaller of the two p-values, which is
  valid since at most one of them is below 1) and negligibility are each a Holm family
  across the components, so wrong claims of either kind stay <= alpha family-wise.
  Wilcoxon's signed-rank test is not used: its smallest two-sided p is ``2 / 2**n``.
* **Intervals.** ``ci_sim``: the simultaneous interval the report shows and plots, the t
  interval at level 1 - alpha / m for a family of m (Bonferroni), so all of a family's
  intervals cover together with probability >= 1 - alpha and one clear of +-min_effect is
  decided by the Holm-adjusted test. The t interval (``ci``, method ``t``) always; beside it, from
  ``MIN_BOOTSTRAP_N`` seeds on, a BCa bootstrap interval (``ci_bootstrap``). Percentile
  bootstrap intervals at n = 3 cover about 74% of the time, not 95%
  (benchmarks/verdicts.py), so none is shown at small n.
* **Power.** ``mde``: the effect a two-sided test at alpha detects with 80% power at this
  n and the observed spread (non-central t); ``seeds_needed``: the seeds at which the mde
  falls to min_effect (to the observed |effect| when min_effect is 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..ledger.verdicts_json import ESSENTIAL, HARMFUL, INCONCLUSIVE, NEGLIGIBLE, Comparison, Deciding, Summary
from .intervals import BOOTSTRAP_METHOD, CI_METHOD, bootstrap_ci, interval, simultaneous_alpha, t_ci
from .numbers import describe, finite, fnum, orient, snap_ties, sort_seeds, t_quantile, t_sf
from .power import mde, seeds_needed

DECIDED = (ESSENTIAL, HARMFUL, NEGLIGIBLE)


# ---------------------------------------------------------------- tests


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
    p = float(2 * t_sf(abs(tstat), n - 1))
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


# ---------------------------------------------------------------- shifted tests


def tail_p(effect: float, se: float, df: float, shift: float, side: str) -> float:
    """One-sided t-test p of H0 'effect <= shift' (side 'greater') or 'effect >= shift' ('less').

    With se = 0 the estimate is exact: p is 0 when it is strictly on the alternative's side, else 1.
    """
    if not (finite(effect) and finite(se) and df >= 1):
        return float("nan")
    z = effect - shift if side == "greater" else shift - effect
    if se == 0:
        return 0.0 if z > 0 else 1.0
    return float(t_sf(z / se, df))


def judge(effect: float, se: float, df: float, alpha: float, min_effect: float) -> dict:
    """Raw p-values of the four questions about one estimate (t-based, df degrees of freedom).

    p: two-sided against 0; p_essential / p_harmful: the shifted one-sided tests against
    +-min_effect, doubled (so they match the two-sided (1 - alpha) interval); p_negligible:
    TOST within +-min_effect (NaN when min_effect is 0).
    """
    nan = float("nan")
    if not (finite(effect) and finite(se) and df >= 1):
        return {"p": nan, "p_essential": nan, "p_harmful": nan, "p_negligible": nan}
    p0 = min(1.0, 2 * min(tail_p(effect, se, df, 0.0, "greater"), tail_p(effect, se, df, 0.0, "less")))
    if se == 0 and effect == 0:
        p0 = 1.0
    p_neg = nan
    if min_effect > 0:
        p_neg = max(tail_p(effect, se, df, -min_effect, "greater"), tail_p(effect, se, df, min_effect, "less"))
    return {
        "p": p0,
        "p_essential": min(1.0, 2 * tail_p(effect, se, df, min_effect, "greater")),
        "p_harmful": min(1.0, 2 * tail_p(effect, se, df, -min_effect, "less")),
        "p_negligible": p_neg,
    }


def verdict(p_essential: float, p_harmful: float, p_negligible: float, alpha: float) -> str:
    """The verdict from the (Holm-adjusted) p-values of the three decisions."""
    if finite(p_essential) and p_essential < alpha:
        return ESSENTIAL
    if finite(p_harmful) and p_harmful < alpha:
        return HARMFUL
    if finite(p_negligible) and p_negligible < alpha:
        return NEGLIGIBLE
    return INCONCLUSIVE


def decide_family(results: Mapping[str, Comparison], alpha: float, adjust=None, min_effect: float = 0.0) -> None:
    """Holm across a family (components of one analysis), then verdicts, in place.

    Three Holm families: ``p`` (two-sided against 0: ``significant``), the directional
    claim ``min(p_essential, p_harmful)`` (at most one of the two is below 1, so it is a
    valid p-value for "essential or harmful is wrong"; with min_effect 0 it equals ``p``,
    so an effect is claimed exactly when it is significant) and ``p_negligible``.
    ``adjust(row)`` first gives the row's p-values valid under optional stopping (sequential
    seeds: ``effects.Sequential.row``: {p, essential, harmful, negligible, factor}). Sets
    ``p_holm``, ``p_essential_holm``, ``p_harmful_holm`` (1 for the direction not taken),
    ``p_negligible_holm``, ``significant``, ``verdict``, ``ci_sim`` (the simultaneous interval,
    see ``simultaneous_alpha``), ``deciding`` (``deciding_test``) and ``why`` (``disagreement``:
    why a row that looks decided is not, or the reverse; "" if none).
    """
    rows = list(results.values())
    adjusted = [adjust(r) if adjust is not None else None for r in rows]

    def family(key: str, values) -> np.ndarray:
        ps = [a[key] if a is not None and finite(p) else p for a, p in zip(adjusted, values)]
        return holm([p if finite(p) else np.nan for p in ps])

    nan = float("nan")
    two_sided = family("p", [r.p for r in rows])
    essential = [a["essential"] if a is not None else r.p_essential for a, r in zip(adjusted, rows)]
    harmful = [a["harmful"] if a is not None else r.p_harmful for a, r in zip(adjusted, rows)]
    directional = holm([min(e, h) if finite(e) and finite(h) else np.nan for e, h in zip(essential, harmful)])
    negligible = family("negligible", [r.p_negligible for r in rows])
    m = int(np.sum(np.isfinite(directional)))
    for r, a, e, h, p0, pd, pn in zip(rows, adjusted, essential, harmful, two_sided, directional, negligible):
        up = finite(e) and e <= h
        r.p_holm, r.p_negligible_holm = float(p0), float(pn)
        r.p_essential_holm = float(pd) if up else (1.0 if finite(pd) else nan)
        r.p_harmful_holm = (1.0 if finite(pd) else nan) if up else float(pd)
        r.significant = bool(finite(r.p_holm) and r.p_holm < alpha)
        r.verdict = verdict(r.p_essential_holm, r.p_harmful_holm, r.p_negligible_holm, alpha)
        sim_alpha = simultaneous_alpha(alpha, m, 1.0 if a is None else a["factor"])
        r.ci_sim_level = 1 - sim_alpha
        r.ci_sim = interval(r.effect, r.se, r.df, sim_alpha)
        r.deciding = deciding_test(r, min_effect)
        r.why = disagreement(r, alpha, min_effect)


#: what each verdict's test shows, in words (``deciding_test``)
CLAIMS = {ESSENTIAL: "effect > +min_effect", HARMFUL: "effect < -min_effect",
          NEGLIGIBLE: "within +-min_effect (TOST)"}


def deciding_test(r: Comparison, min_effect: float) -> Deciding | None:
    """The test that decides the verdict (p raw, p_holm what is compared with alpha).

    For an ``inconclusive`` row the test closest to deciding (smallest adjusted p) is named.
    None when no test could run.
    """
    v = r.verdict
    if v not in DECIDED:
        tests = [t for t in (ESSENTIAL, HARMFUL, NEGLIGIBLE) if finite(getattr(r, f"p_{t}_holm"))]
        if not tests:
            return None
        v = min(tests, key=lambda t: getattr(r, f"p_{t}_holm"))
    claim = CLAIMS[v].replace("min_effect", f"{min_effect:g}")
    return Deciding(test=v, claim=claim, p_holm=float(getattr(r, f"p_{v}_holm")), p=fnum(getattr(r, f"p_{v}")))


def disagreement(r: Comparison, alpha: float, min_effect: float) -> str:
    """Why a row whose numbers look decided is not (or decided while its interval looks not); "" if none.

    The words before the first " (" are the short reason the verdict cell shows; the rest gives the numbers.
    """
    d = r.deciding
    if d is None:
        return ""
    ph = f"{d.p_holm:.3g}"
    lo, hi = r.ci_sim
    if r.verdict == INCONCLUSIVE:
        band = "clears the band" if d.test != NEGLIGIBLE else "lies inside the band"
        if d.p is not None and d.p < alpha:
            return (f"{band} before Holm only (p {d.p:.3g} < {alpha:g}; Holm-adjusted p {ph} >= {alpha:g} "
                    f"for {d.claim})")
        if r.significant:
            return (f"differs from 0 but is not shown {'beyond' if d.test != NEGLIGIBLE else 'within'} "
                    f"+-{min_effect:g} (Holm-adjusted p {r.p_holm:.3g} < {alpha:g} against 0; {ph} >= {alpha:g} "
                    f"for {d.claim})")
        if finite(r.p) and r.p < alpha:
            return (f"p < {alpha:g} against 0 before Holm only (p {r.p:.3g}, Holm-adjusted {r.p_holm:.3g}; "
                    f"{ph} >= {alpha:g} for {d.claim})")
        return ""
    if not (finite(lo) and finite(hi)):
        return ""
    if d.test == ESSENTIAL and not lo > min_effect or d.test == HARMFUL and not hi < -min_effect:
        return (f"decided by Holm's step-down test though the Bonferroni interval touches the band (Holm is less "
                f"strict; adjusted p {ph} < {alpha:g})")
    if d.test == NEGLIGIBLE and not (lo > -min_effect and hi < min_effect):
        return (f"negligible by TOST though the simultaneous interval reaches past +-{min_effect:g} (TOST needs "
                f"only the 1-2alpha interval; Holm-adjusted p {ph} < {alpha:g})")
    return ""


def short_reason(why: str) -> str:
    """The words of a ``disagreement`` before its numbers."""
    return why.split(" (", 1)[0]


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
) -> Comparison:
    """Compare one variant with the baseline over paired seeds: effect, CI, p-values, verdict.

    Positive ``effect`` means the baseline is better, i.e. the thing the other variant lacks
    (or changes) helps. Only seeds where *both* values exist and are finite are paired;
    ``seeds`` lists them and ``unpaired`` says which seeds were dropped and why. This is a
    family of one (``*_holm`` equal the raw p-values); a study's analysis re-adjusts
    across components with ``decide_family``. With fewer than two paired seeds the verdict
    is ``inconclusive`` with ``estimable: False`` and a note saying it cannot conclude.
    ``baseline`` and ``variant`` summarise the two sides' values.
    """
    seeds, diffs, b, o, unpaired = pair_values(dict(baseline_values_by_seed), dict(other_values_by_seed), mode)
    result = Comparison(
        **summarise_diffs(diffs, alpha, min_effect, n_bootstrap if bootstrap else 0, random_state),
        method="paired",
        verdict=INCONCLUSIVE,
        seeds=list(seeds),
        diffs={str(s): float(d) for s, d in zip(seeds, diffs)},
        unpaired=unpaired,
        baseline=short(b),
        variant=short(o),
        note=pairing_note(len(seeds), unpaired),
    )
    decide_family({"variant": result}, alpha, min_effect=min_effect)
    return result


def summarise_diffs(diffs: np.ndarray, alpha: float, min_effect: float, n_bootstrap: int, random_state=0,
                    boot_ci=None) -> dict:
    """Everything about one vector of paired differences except the family's Holm adjustment."""
    d = describe(diffs)
    n = d["n"]
    tstat, _ = one_sample_t(diffs)
    ci = t_ci(diffs, alpha)
    if boot_ci is None:
        boot_ci = bootstrap_ci(diffs, alpha, n_bootstrap, random_state) if n_bootstrap else (float("nan"),) * 2
    target = min_effect if min_effect > 0 else abs(d["mean"]) if finite(d["mean"]) else float("nan")
    return {
        "n": n,
        "effect": d["mean"],
        "std": d["std"],
        "se": d["sem"],
        "df": n - 1,
        "ci": [ci[0], ci[1]],
        "ci_method": CI_METHOD,
        "ci_bootstrap": [float(boot_ci[0]), float(boot_ci[1])],
        "bootstrap_method": BOOTSTRAP_METHOD,
        "t": tstat,
        **judge(d["mean"], d["sem"], n - 1, alpha, min_effect),
        "mde": mde(d["sem"], n - 1, alpha),
        "seeds_needed": seeds_needed(d["std"], target, alpha) if n >= 2 else None,
        "estimable": n >= 2,
        "zero_variance": bool(n >= 2 and d["std"] == 0.0),
    }


def summarise_estimate(effect: float, se: float, df: int, alpha: float, min_effect: float, n_seeds: int,
                       tol: float = 0.0) -> dict:
    """Everything about one least-squares estimate (se and df from its fit) except the family's Holm.

    The same tests as ``summarise_diffs``: t interval, ``judge``'s p-values, mde; ``seeds_needed``
    scales se by sqrt(n_seeds / n) with df growing in proportion. An se at or below ``tol`` is an
    exact fit (float noise): se 0, and an effect at or below ``tol`` is 0. A non-finite effect or
    se, or df < 1, gives NaN tests and ``estimable: False``.
    """
    nan = float("nan")
    if not (finite(effect) and finite(se) and df >= 1):
        return {"df": df, "effect": fnum(effect) if finite(effect) else nan, "std": nan, "se": nan,
                "ci": [nan, nan], "ci_method": CI_METHOD, "ci_bootstrap": [nan, nan], "t": nan,
                **judge(nan, nan, 0, alpha, min_effect), "mde": nan, "seeds_needed": None, "estimable": False,
                "zero_variance": False}
    effect, se = float(effect), float(se)
    if se <= tol:
        se = 0.0
        effect = 0.0 if abs(effect) <= tol else effect
    tstat = effect / se if se > 0 else (0.0 if effect == 0 else math.copysign(math.inf, effect))
    half = t_quantile(1 - alpha / 2, df) * se
    ci = [effect - half, effect + half]
    target = min_effect if min_effect > 0 else abs(effect)
    return {"df": df, "effect": effect, "std": nan, "se": se, "ci": ci, "ci_method": CI_METHOD,
            "ci_bootstrap": [nan, nan], "t": float(tstat), **judge(effect, se, df, alpha, min_effect),
            "mde": mde(se, df, alpha),
            "seeds_needed": seeds_needed(se * math.sqrt(n_seeds), target, alpha, df / n_seeds, 0.0),
            "estimable": True, "zero_variance": bool(se == 0)}


def short(values) -> Summary:
    """n, mean and std of these values."""
    d = describe(values)
    return Summary(n=d["n"], mean=d["mean"], std=d["std"])


def pair_values(base: dict, other: dict, mode: str):
    """Seeds both have (finite), oriented diffs (float ties snapped to 0), both values, unpaired seeds."""
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
    diffs = snap_ties(orient(b, o, mode), np.maximum(np.abs(b), np.abs(o))) if seeds else np.array([])
    return seeds, diffs, b, o, unpaired


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
