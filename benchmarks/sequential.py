"""Sequential seeds: error per family at the least favourable points, and the trials saved.

    python benchmarks/sequential.py           # 10,000 simulated studies per setting (a few minutes)
    python benchmarks/sequential.py --quick   # 1,000 per setting
    python benchmarks/sequential.py --savings-only --final-weight 1   # a candidate boundary shape

No Ray: each setting simulates many studies at once (numpy), one-at-a-time design, K = 6 components
sharing the baseline's seeds, seeds 3..10 (adaptive) against 10 fixed seeds, alpha 0.05, min_effect 0.5.
A study adds a seed to the baseline and to every variant whose row is undecided (not decided, not
futile by ``adaptive.predictive_power_of``, below max) until none is. Rules compared in the same run:

* ``fixed``   - 10 seeds for every variant, one look, Holm (the reference);
* ``naive``   - plain p-values re-tested after every seed (must exceed alpha: the benchmark checks it can fail);
* ``union``   - the previous rule: alpha split over the looks by the union bound (15% to the interim looks);
* ``pooled``  - a candidate: one variance pooled over the K rows of a look (more degrees of freedom), the
  new boundary; valid only when the variants are equally noisy;
* ``new``     - the package's rule (analysis/sequential.py): each row's own t test, repeated p-values of a
  boundary calibrated for the correlated looks, running minimum, Holm (graphical) across the family.

Errors, per family, at the least favourable points: every row's true effect at +min_effect (any
essential/harmful claim is wrong, and any negligible one) and at -min_effect; Gaussian and t(3) noise
(scaled to the same SD); equal trial SDs, and one variant 3x noisier (SD). A valid rule's upper 95%
bound (Clopper-Pearson) must stay <= alpha; the line prints FAIL otherwise, and FAIL when naive does
not exceed alpha. Savings on the stated mix (MIX, trial SD MIX_SD): trials against fixed seeds at
max (goal <= 0.60x) and rows decided (goal >= 95% of fixed's); then the same mix with noisier trials
(NOISY_SD), where more rows need every seed and the final look's stricter boundary costs decisions.
The decisions are the package's (``decide`` equals ``effects.finish_family`` row by row:
tests/test_sequential.py). Exit 1 when an error rate fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import stats as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.analysis.adaptive import FUTILITY, predictive_power_of
from orchestrator.analysis.sequential import Design

ALPHA, MIN_EFFECT, K, INITIAL, MAX = 0.05, 0.5, 6, 3, 10
INC, ESS, HARM, NEG = 0, 1, 2, 3
#: the savings mix: six components' true effects (min_effect 0.5) and the trials' noise SD
MIX = {"essential": 1.0, "strong": 2.0, "harmful": -1.0, "negligible": 0.1, "null": 0.0, "near-margin": 0.5}
MIX_SD = 0.15
#: the same mix with noisier trials (more rows need every seed: the final look's price shows)
NOISY_SD = 0.25
INTERIM_SHARE = 0.15  # the previous rule's share of alpha for the interim looks
DESIGN = Design(INITIAL, MAX)  # the package's design (--final-weight measures other shapes)


def holm_rows(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values along the last axis (equals stats.holm row by row, no NaN)."""
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="mergesort")
    ps = np.take_along_axis(p, order, -1) * (m - np.arange(m))
    adj = np.minimum(np.maximum.accumulate(ps, axis=-1), 1.0)
    out = np.empty_like(adj)
    np.put_along_axis(out, order, adj, -1)
    return out


def prefix(D: np.ndarray):
    """Mean, SD and n of the first n differences for every n (last axis)."""
    n = np.arange(1, D.shape[-1] + 1)
    mean = np.cumsum(D, -1) / n
    sq = np.cumsum(D * D, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(n > 1, (sq - n * mean**2) / np.maximum(n - 1, 1), np.nan)
    return mean, np.sqrt(np.maximum(var, 0)), n


def tails(mean, sd, n, df, m=MIN_EFFECT):
    """One-sided t tails: essential (H0 effect <= m), harmful (>= -m), TOST's two, against 0 (two-sided)."""
    se = sd / np.sqrt(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        ess = st.t.sf((mean - m) / se, df)
        harm = st.t.sf((-m - mean) / se, df)
        tost = np.maximum(st.t.sf((mean + m) / se, df), st.t.sf((m - mean) / se, df))
    return ess, harm, tost


def pvalues(rule: str, D: np.ndarray):
    """Per rule, the tested p-values at every n (package conventions: doubled directional, TOST max)."""
    mean, sd, n = prefix(D)
    df = n - 1
    if rule == "pooled":
        sd = np.sqrt(np.mean(sd**2, axis=-2, keepdims=True)) * np.ones_like(sd)
        df = (n - 1) * D.shape[-2]
    ess, harm, tost = tails(mean, sd, n, np.maximum(df, 1))
    if rule in ("fixed", "naive"):
        return 2 * ess, 2 * harm, tost, mean, sd
    if rule == "union":
        level = np.where(n >= MAX, ALPHA * (1 - INTERIM_SHARE), ALPHA * INTERIM_SHARE / (MAX - INITIAL))
        f = ALPHA / level
        return np.minimum(2 * ess * f, 1), np.minimum(2 * harm * f, 1), np.minimum(tost * f, 1), mean, sd
    d = DESIGN
    w = np.where(n >= MAX, d.final_weight, 1.0)
    big = np.where(n >= d.first, 1.0, np.inf)

    def rep(t, sides):
        run = np.minimum.accumulate(np.where(np.isfinite(t), t / w * big, np.inf), axis=-1)
        return np.minimum(sides * d.cdf(run), 1.0)

    return rep(ess, 2), rep(harm, 2), rep(tost, 1), mean, sd


def decide(p_ess, p_harm, p_neg):
    """Verdicts of a family (last axis) from its rows' p-values (stats.decide_family's rule)."""
    directional = holm_rows(np.minimum(p_ess, p_harm))
    negligible = holm_rows(p_neg)
    up = p_ess <= p_harm
    return np.where(directional < ALPHA, np.where(up, ESS, HARM), np.where(negligible < ALPHA, NEG, INC))


def simulate(rule: str, D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(final verdicts (S, K), trials per study) of studies with these differences (S, K, MAX)."""
    p_ess, p_harm, p_neg, mean, sd = pvalues(rule, D)
    S = D.shape[0]
    if rule == "fixed":
        v = decide(p_ess[..., -1], p_harm[..., -1], p_neg[..., -1])
        return v, np.full(S, (K + 1) * MAX)
    final_alpha = {"naive": ALPHA, "union": ALPHA * (1 - INTERIM_SHARE)}.get(
        rule, 2 * DESIGN.boundary(MAX, ALPHA / 2))
    n = np.full((S, K), INITIAL)
    while True:
        at = (n - 1)[..., None]
        v = decide(*(np.take_along_axis(x, at, -1)[..., 0] for x in (p_ess, p_harm, p_neg)))
        m, s = (np.take_along_axis(x, at, -1)[..., 0] for x in (mean, sd))
        with np.errstate(invalid="ignore", divide="ignore"):
            pp = np.where(n < MAX, predictive_power_of(m, s, n, MAX, final_alpha, MIN_EFFECT), np.nan)
        open_ = (v == INC) & (n < MAX) & ~(pp < FUTILITY)
        if not open_.any():
            return v, n.sum(-1) + n.max(-1)
        n = n + open_


def differences(rng, S: int, effects, noise: str, sd_trial: float, noisy: bool) -> np.ndarray:
    """Paired differences baseline - ablated (positive: the component helps), shape (S, K, MAX)."""
    def draw(shape):
        if noise == "gaussian":
            return rng.standard_normal(shape)
        return rng.standard_t(3, shape) / np.sqrt(3.0)

    b = draw((S, 1, MAX)) * sd_trial
    scale = np.full((K, 1), sd_trial)
    if noisy:
        scale[0] = 3 * sd_trial
    a = draw((S, K, MAX)) * scale
    return np.asarray(effects, dtype=float)[:, None] + b - a


def upper95(k: int, n: int) -> float:
    return 1.0 if k == n else float(st.beta.ppf(0.975, k + 1, n - k))


def errors(S: int, seed: int) -> bool:
    ok = True
    print(f"Errors per family at the least favourable points ({S} studies per setting, alpha {ALPHA}, "
          f"K={K} rows, seeds {INITIAL}..{MAX}):")
    print(f"{'noise':9} {'variances':9} {'truth':7} {'rule':7} {'essential/harmful':>24} {'negligible':>24}")
    for noise in ("gaussian", "t3"):
        for noisy in (False, True):
            for sign in (+1, -1):
                rng = np.random.default_rng(seed)
                D = differences(rng, S, [sign * MIN_EFFECT] * K, noise, 1.0, noisy)
                for rule in ("fixed", "naive", "union", "pooled", "new"):
                    v, _ = simulate(rule, D)
                    fam = []
                    for wrong in ((v == ESS) | (v == HARM), v == NEG):
                        k = int(wrong.any(-1).sum())
                        fam.append((k / S, upper95(k, S)))
                    valid = rule not in ("naive",) and not (rule == "pooled" and noisy)
                    bad = valid and max(u for _, u in fam) > ALPHA
                    miss = rule == "naive" and max(r for r, _ in fam) <= ALPHA
                    ok &= not (bad or miss)
                    cells = " ".join(f"{r:9.4f} (<= {u:.4f})" for r, u in fam)
                    note = " FAIL" if bad or miss else ("" if valid else " (not claimed valid here)")
                    print(f"{noise:9} {'3x' if noisy else 'equal':9} {'+m' if sign > 0 else '-m':7} {rule:7} "
                          f"{cells}{note}")
    return ok


def savings(S: int, seed: int, sd: float) -> bool:
    rng = np.random.default_rng(seed)
    D = differences(rng, S, list(MIX.values()), "gaussian", sd, False)
    truth = np.array(list(MIX.values()))
    right = np.where(truth > MIN_EFFECT, ESS, np.where(truth < -MIN_EFFECT, HARM,
                                                       np.where(np.abs(truth) < MIN_EFFECT, NEG, -1)))
    print(f"\nSavings on the mix {MIX} (trial SD {sd}, min_effect {MIN_EFFECT}, {S} studies):")
    ref_t, ref_d = None, None
    ok = True
    for rule in ("fixed", "union", "new"):
        v, trials = simulate(rule, D)
        decided = (v != INC).sum(-1).mean()
        wrong = ((v != INC) & (v != right)).any(-1).mean()
        per_row = " ".join(f"{c}={np.mean(v[:, i] != INC):.2f}" for i, c in enumerate(MIX))
        if rule == "fixed":
            ref_t, ref_d = trials.mean(), decided
            print(f"  {rule:6} trials {ref_t:6.1f}          rows decided {decided:.2f}         "
                  f"any wrong {wrong:.4f}  [{per_row}]")
            continue
        rt, rd = trials.mean() / ref_t, decided / ref_d
        goal = rt <= 0.60 and rd >= 0.95
        if rule == "new":
            ok &= goal
        print(f"  {rule:6} trials {trials.mean():6.1f} ({rt:.2f}x) rows decided {decided:.2f} ({rd:.2f}x) "
              f"any wrong {wrong:.4f}  [{per_row}]{'' if goal else '  (goal: <= 0.60x trials, >= 0.95x rows)'}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1,000 simulated studies per setting")
    ap.add_argument("--seed", type=int, default=29)
    ap.add_argument("--final-weight", type=float, help="a candidate boundary shape (default: the package's)")
    ap.add_argument("--savings-only", action="store_true")
    args = ap.parse_args()
    global DESIGN
    if args.final_weight is not None:
        DESIGN = Design(INITIAL, MAX, args.final_weight)
    print(f"design: looks {INITIAL}..{MAX}, final weight {DESIGN.final_weight:g}")
    S = 1_000 if args.quick else 10_000
    ok = True if args.savings_only else errors(S, args.seed)
    goals = savings(S, args.seed + 1, MIX_SD)
    savings(S, args.seed + 2, NOISY_SD)
    print("\nerror rates: " + ("ok" if ok else "FAIL") + "; savings goals on the stated mix (trial SD "
          f"{MIX_SD}): " + ("met" if goals else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
