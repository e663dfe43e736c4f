"""The statistics, checked against scipy and hand computations on fixed data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from orchestrator.analysis import intervals, numbers, power, stats
from orchestrator.analysis.effects import batch_bootstrap, regression_effects
from orchestrator.analysis.records import group_records
from orchestrator.analysis.stats import (
    ESSENTIAL,
    HARMFUL,
    INCONCLUSIVE,
    NEGLIGIBLE,
    compare_paired,
    holm,
)
from orchestrator.ledger import TrialRecord

BASE = {0: 0.842, 1: 0.838, 2: 0.851, 3: 0.846, 4: 0.840}
ABL = {0: 0.830, 1: 0.829, 2: 0.845, 3: 0.839, 4: 0.826}


def test_orientation_max_and_min():
    assert numbers.orient([2.0], [1.0], "max")[0] == 1.0  # removal lowered a score: the component helps
    assert numbers.orient([1.0], [2.0], "min")[0] == 1.0  # removal raised a loss: the component helps
    with pytest.raises(ValueError):
        numbers.orient([1.0], [1.0], "maximise")
    up = compare_paired(BASE, ABL, "max", n_bootstrap=0)
    assert up.effect > 0
    # the same numbers read as a loss: removing the component lowered it, so it hurts
    down = compare_paired(BASE, ABL, "min", n_bootstrap=0)
    assert down.effect == pytest.approx(-up.effect)
    assert down.p == pytest.approx(up.p)


def test_p_value_equals_scipy_ttest_rel():
    res = compare_paired(BASE, ABL, "max", n_bootstrap=0)
    seeds = sorted(BASE)
    ref = st.ttest_rel([BASE[s] for s in seeds], [ABL[s] for s in seeds])
    assert res.p == pytest.approx(ref.pvalue, rel=1e-12)
    assert res.t == pytest.approx(ref.statistic, rel=1e-12)
    one = st.ttest_1samp(np.array([BASE[s] - ABL[s] for s in seeds]), 0.0)
    assert res.p == pytest.approx(one.pvalue, rel=1e-12)


def test_t_sf_is_scipy_stats_t_sf_exactly():
    """The analysis' fast t tail gives scipy.stats.t.sf's numbers bit for bit, edge cases included."""
    x = np.array([-np.inf, -1e300, -50.0, -3.2, -1e-9, 0.0, 1e-12, 0.3, 2.1, 7.5, 40.0, 1e10, np.inf, np.nan])
    df = np.array([0.5, 1, 2, 3, 9, 29.5, 200, 1e6, np.inf, 0, -1, np.nan])
    xx, dd = np.meshgrid(x, df)
    np.testing.assert_array_equal(numbers.t_sf(xx, dd), st.t.sf(xx, dd))  # NaN where scipy gives NaN
    np.testing.assert_array_equal(numbers.t_sf(-xx, dd), st.t.cdf(xx, dd))  # the lower tail (adaptive.py)
    assert isinstance(float(numbers.t_sf(2.1, 9)), float) and float(numbers.t_sf(2.1, 9)) == st.t.sf(2.1, 9)


def test_t_ci_equals_hand_formula():
    d = np.array([BASE[s] - ABL[s] for s in sorted(BASE)])
    n = len(d)
    half = st.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n)
    lo, hi = intervals.t_ci(d, 0.05)
    assert lo == pytest.approx(d.mean() - half, rel=1e-12)
    assert hi == pytest.approx(d.mean() + half, rel=1e-12)
    res = compare_paired(BASE, ABL, "max", alpha=0.05, n_bootstrap=0)
    assert res.ci == pytest.approx([d.mean() - half, d.mean() + half], rel=1e-12)
    # alpha 0.1 gives the 90% interval
    lo90, _ = intervals.t_ci(d, 0.10)
    assert lo90 == pytest.approx(d.mean() - st.t.ppf(0.95, n - 1) * d.std(ddof=1) / math.sqrt(n))


def test_bootstrap_ci_equals_scipy_own_call():
    rng = np.random.default_rng(1)
    d = rng.normal(0.5, 1.0, 12)
    ours = intervals.bootstrap_ci(d, alpha=0.05, n_resamples=2000, random_state=7)
    ref = st.bootstrap((d,), np.mean, n_resamples=2000, confidence_level=0.95, method="bca", rng=7)
    assert ours[0] == pytest.approx(ref.confidence_interval.low, rel=1e-12)
    assert ours[1] == pytest.approx(ref.confidence_interval.high, rel=1e-12)
    base = {i: 10.0 + x for i, x in enumerate(d)}
    res = compare_paired(base, {i: 10.0 for i in base}, "max", n_bootstrap=2000, random_state=7)
    assert res.ci_bootstrap == pytest.approx([ref.confidence_interval.low, ref.confidence_interval.high])
    assert res.bootstrap_method == "BCa" and res.ci_method == "t"
    # batched: every row equals its own scipy call with the same random_state
    rows = [d, d[::-1] * 2, d + 1]
    batched = batch_bootstrap(rows, 0.05, 2000, random_state=0)
    for row, (lo, hi) in zip(rows, batched):
        r = st.bootstrap((row,), np.mean, n_resamples=2000, method="bca", rng=0).confidence_interval
        assert (lo, hi) == pytest.approx((r.low, r.high), rel=1e-12)
    # at small n no bootstrap interval is shown: only the t interval
    small = compare_paired(BASE, ABL, "max", n_bootstrap=2000)
    assert all(math.isnan(x) for x in small.ci_bootstrap) and all(math.isfinite(x) for x in small.ci)


def test_holm_known_table():
    # hand-computed: sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    p = [0.01, 0.04, 0.03, 0.005]
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # caps at 1, keeps NaN out of the family
    out = holm([0.5, float("nan"), 0.4])
    assert out[0] == pytest.approx(0.8) and out[2] == pytest.approx(0.8) and math.isnan(out[1])
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])  # 0.8*2 caps at 1; monotone
    assert holm([0.3, 0.6]) == pytest.approx([0.6, 0.6])
    assert holm([]).size == 0


def test_verdict_rule():
    assert stats.verdict(0.01, 0.9, float("nan"), 0.05) == ESSENTIAL
    assert stats.verdict(0.9, 0.01, 0.9, 0.05) == HARMFUL
    assert stats.verdict(0.9, 0.9, 0.01, 0.05) == NEGLIGIBLE
    assert stats.verdict(0.06, 0.9, 0.2, 0.05) == INCONCLUSIVE
    assert stats.verdict(float("nan"), float("nan"), float("nan"), 0.05) == INCONCLUSIVE


def test_shifted_tests_and_tost_equal_scipy():
    d = np.array([BASE[s] - ABL[s] for s in sorted(BASE)])
    m = 0.004
    res = compare_paired(BASE, ABL, "max", min_effect=m, n_bootstrap=0)
    # essential: one-sided test of 'effect <= m', doubled (the two-sided interval's tail)
    greater = st.ttest_1samp(d, m, alternative="greater").pvalue
    assert res.p_essential == pytest.approx(min(1, 2 * greater), rel=1e-10)
    assert res.p_harmful == pytest.approx(min(1, 2 * st.ttest_1samp(d, -m, alternative="less").pvalue), rel=1e-10)
    tost = max(st.ttest_1samp(d, -m, alternative="greater").pvalue, st.ttest_1samp(d, m, alternative="less").pvalue)
    assert res.p_negligible == pytest.approx(tost, rel=1e-10)
    # essential exactly when the (1 - alpha) t interval lies above min_effect
    for me in (0.0, 0.002, 0.004, 0.008, 0.02):
        r = compare_paired(BASE, ABL, "max", min_effect=me, n_bootstrap=0)
        assert (r.verdict == ESSENTIAL) == (r.ci[0] > me), me
    # statsmodels' TOST gives the same p
    from statsmodels.stats.weightstats import ttost_paired

    b = np.array([BASE[s] for s in sorted(BASE)])
    a = np.array([ABL[s] for s in sorted(BASE)])
    assert res.p_negligible == pytest.approx(ttost_paired(b, a, -m, m)[0], rel=1e-8)


def test_min_effect_is_judged_on_the_interval_not_the_point():
    """A true effect of 0.9 x min_effect is called essential at most alpha of the time."""
    rng = np.random.default_rng(0)
    m, reps, hits = 1.0, 2000, 0
    for _ in range(reps):
        d = rng.normal(0.9 * m, 1.0, 8)
        hits += compare_paired(dict(enumerate(d)), dict.fromkeys(range(8), 0.0), "max", min_effect=m,
                               n_bootstrap=0).verdict == ESSENTIAL
    assert hits / reps <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / reps)


def test_float_ties_are_zero_and_never_significant():
    """Ten null components whose paired differences are summation-order noise (about 1e-16)."""
    rng = np.random.default_rng(3)
    differs = 0
    for _ in range(10):
        parts = rng.normal(0, 1, (5, 7))
        base = {s: float(sum(parts[s])) for s in range(5)}
        other = {s: float(sum(parts[s][::-1])) for s in range(5)}  # the same numbers, summed in another order
        differs += any(base[s] != other[s] for s in range(5))
        res = compare_paired(base, other, "max", n_bootstrap=0)
        assert res.verdict == INCONCLUSIVE and not res.significant
        assert res.p == 1.0 and res.effect == 0.0
    assert differs >= 5  # the float noise is really there
    # exact float noise near 1e-16 on a metric of magnitude 1: zeroed; a real 1e-6 effect is not
    base = {0: 0.3, 1: 0.7, 2: 0.5}
    noise = {0: 0.3 + 5.551115123125783e-17, 1: 0.7 - 1.1102230246251565e-16, 2: 0.5 + 1.1e-16}
    assert compare_paired(base, noise, "max", n_bootstrap=0).p == 1.0
    real = compare_paired(base, {s: v - 1e-6 * (1 + s / 10) for s, v in base.items()}, "max", n_bootstrap=0)
    assert real.effect > 0 and real.p < 0.05
    # with min_effect > 0, identical results are shown negligible
    assert compare_paired(base, noise, "max", min_effect=0.01, n_bootstrap=0).verdict == NEGLIGIBLE


def test_power_multiplier_is_the_root_of_the_noncentral_t_power():
    """The narrow bracket from scipy's inverse gives the root the wide search [0, 100] gives (brentq's tolerance)."""
    from scipy import optimize

    for df in (1, 2, 3, 5, 9, 30, 200, 4000):
        for alpha in (0.1, 0.05, 0.05 / 7, 0.001):
            crit = st.t.ppf(1 - alpha / 2, df)
            if st.nct.sf(crit, df, 100.0) < power.POWER:
                continue  # the root is beyond the wide search's bracket (1 degree of freedom at alpha 0.001)
            wide = optimize.brentq(lambda ncp, c=crit, k=df: st.nct.sf(c, k, ncp) - power.POWER, 0.0, 100.0)
            assert power.power_multiplier(df, alpha) == pytest.approx(wide, rel=1e-10, abs=0), (df, alpha)


def test_mde_and_seeds_needed_match_statsmodels_power():
    from statsmodels.stats.power import TTestPower

    for n in (3, 5, 10):
        sd = 2.0
        ours = power.mde(sd / math.sqrt(n), n - 1, 0.05)
        d = TTestPower().solve_power(effect_size=None, nobs=n, alpha=0.05, power=0.8, alternative="two-sided")
        # statsmodels adds the far tail (tiny here): agree to 1%
        assert ours == pytest.approx(d * sd, rel=0.01), n
    need = power.seeds_needed(2.0, 1.0, 0.05)
    assert (power.mde(2.0 / math.sqrt(need), need - 1, 0.05) <= 1.0
            < power.mde(2.0 / math.sqrt(need - 1), need - 2, 0.05))
    res = compare_paired(BASE, ABL, "max", min_effect=0.01, n_bootstrap=0)
    assert res.mde == pytest.approx(power.mde(res.se, res.n - 1, 0.05))
    assert res.seeds_needed == power.seeds_needed(res.std, 0.01, 0.05)
    assert power.seeds_needed(1.0, 0.0, 0.05) is None


def test_t_interval_coverage_at_three_seeds():
    """t intervals keep their level at n = 3 (percentile bootstrap intervals do not)."""
    rng = np.random.default_rng(5)
    reps, cover = 4000, 0
    x = rng.normal(0, 1, (reps, 3))
    for row in x:
        lo, hi = intervals.t_ci(row, 0.05)
        cover += lo <= 0 <= hi
    assert cover / reps >= 0.95 - 3 * math.sqrt(0.05 * 0.95 / reps)


def test_fewer_than_two_seeds_cannot_conclude():
    one = compare_paired({0: 1.0}, {0: 0.0}, "max")
    assert one.verdict == INCONCLUSIVE and not one.estimable and "cannot conclude" in one.note
    none = compare_paired({0: 1.0}, {1: 0.0}, "max")
    assert none.n == 0 and none.verdict == INCONCLUSIVE
    assert none.unpaired == {"only_baseline": [0], "only_other": [1], "nonfinite": []}


def test_pairing_uses_common_finite_seeds_and_says_so():
    res = compare_paired({0: 1.0, 1: 1.1, 2: 1.2, 3: 1.3}, {0: 0.5, 1: float("nan"), 2: 0.7}, "max", n_bootstrap=0)
    assert res.seeds == [0, 2] and res.n == 2
    assert res.unpaired["only_baseline"] == [3] and res.unpaired["nonfinite"] == [1]
    assert "paired on 2 seed(s) only" in res.note


def test_zero_variance_is_handled():
    assert stats.one_sample_t([0.5, 0.5, 0.5]) == (math.inf, 0.0)
    assert stats.one_sample_t([0.0, 0.0]) == (0.0, 1.0)
    res = compare_paired({0: 2.0, 1: 3.0, 2: 4.0}, {0: 1.0, 1: 2.0, 2: 3.0}, "max")
    assert res.zero_variance and res.verdict == ESSENTIAL


def test_prediction_interval_hand_formula():
    x = np.array([10.0, 10.5, 9.8, 10.2])
    lo, hi = intervals.prediction_interval(x, 0.05)
    half = st.t.ppf(0.975, 3) * x.std(ddof=1) * math.sqrt(1 + 1 / 4)
    assert (lo, hi) == pytest.approx((x.mean() - half, x.mean() + half))


def test_regression_recovers_exact_coefficients():
    # noiseless linear data: score = 10 + 2*a + 1*b - 0.5*(both removed) + seed offset
    from orchestrator.config import parse_config
    from tests.support.simulated import simulated_config

    cfg = parse_config(simulated_config({"a": 2.0, "b": 1.0}, 0.0, 3, design="full_factorial", pairs=[("a", "b")]))
    recs = []
    for removed in ([], ["a"], ["b"], ["a", "b"]):
        for seed in range(3):
            score = 10 + 2 * ("a" not in removed) + 1 * ("b" not in removed) - 0.5 * (len(removed) == 2) + 0.3 * seed
            recs.append(TrialRecord(trial_id=f"{removed}-{seed}", stage="ablation", variant="x", removed=removed,
                                    seed=seed, group=None, state="COMPLETED",
                                    final={"score": score + 1e-3 * np.sin(7 * seed + len(removed))}))
    g = group_records(recs)["default"]
    mains, inter, _ = regression_effects(g, cfg.components, [("a", "b")], "score", "max", 0.05, 0.0)
    assert mains["a"].effect == pytest.approx(2.0, abs=0.01)
    assert mains["b"].effect == pytest.approx(1.0, abs=0.01)
    assert inter["a+b"].effect == pytest.approx(0.5, abs=0.01)
    assert mains["a"].verdict == ESSENTIAL
    # the same data read as a minimised metric flips every sign
    mains_min, _, _ = regression_effects(g, cfg.components, [("a", "b")], "score", "min", 0.05, 0.0)
    assert mains_min["a"].effect == pytest.approx(-2.0, abs=0.01)
    assert mains_min["a"].verdict == HARMFUL


def test_the_fits_run_on_one_blas_thread_and_give_the_threads_back():
    from threadpoolctl import threadpool_info, threadpool_limits

    from orchestrator.analysis import effects, factors
    from orchestrator.analysis.blas import one_blas_thread

    def blas_threads():
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    with threadpool_limits(limits=2, user_api="blas"):  # the tests' processes run on one thread (conftest)
        before = blas_threads()
        assert before == {2} and one_blas_thread(blas_threads)() == {1}
        assert blas_threads() == before
    for fn in (effects._ols, factors.analyse_levels, factors.factor_effects, factors.factor_interactions):
        assert fn.__wrapped__ is not None  # wrapped by one_blas_thread
