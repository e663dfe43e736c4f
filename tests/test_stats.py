"""The statistics, checked against scipy and hand computations on fixed data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from orchestrator.analysis import stats
from orchestrator.analysis.effects import batch_bootstrap, regression_effects
from orchestrator.analysis.records import group_records
from orchestrator.analysis.stats import ESSENTIAL, HARMFUL, NO_EVIDENCE, compare_paired, holm

BASE = {0: 0.842, 1: 0.838, 2: 0.851, 3: 0.846, 4: 0.840}
ABL = {0: 0.830, 1: 0.829, 2: 0.845, 3: 0.839, 4: 0.826}


def test_orientation_max_and_min():
    assert stats.orient([2.0], [1.0], "max")[0] == 1.0  # removal lowered a score: the component helps
    assert stats.orient([1.0], [2.0], "min")[0] == 1.0  # removal raised a loss: the component helps
    with pytest.raises(ValueError):
        stats.orient([1.0], [1.0], "maximise")
    up = compare_paired(BASE, ABL, "max", n_bootstrap=0)
    assert up["effect"] > 0
    # the same numbers read as a loss: removing the component lowered it, so it hurts
    down = compare_paired(BASE, ABL, "min", n_bootstrap=0)
    assert down["effect"] == pytest.approx(-up["effect"])
    assert down["p"] == pytest.approx(up["p"])


def test_p_value_equals_scipy_ttest_rel():
    res = compare_paired(BASE, ABL, "max", n_bootstrap=0)
    seeds = sorted(BASE)
    ref = st.ttest_rel([BASE[s] for s in seeds], [ABL[s] for s in seeds])
    assert res["p"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert res["t"] == pytest.approx(ref.statistic, rel=1e-12)
    one = st.ttest_1samp(np.array([BASE[s] - ABL[s] for s in seeds]), 0.0)
    assert res["p"] == pytest.approx(one.pvalue, rel=1e-12)


def test_t_ci_equals_hand_formula():
    d = np.array([BASE[s] - ABL[s] for s in sorted(BASE)])
    n = len(d)
    half = st.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n)
    lo, hi = stats.t_ci(d, 0.05)
    assert lo == pytest.approx(d.mean() - half, rel=1e-12)
    assert hi == pytest.approx(d.mean() + half, rel=1e-12)
    res = compare_paired(BASE, ABL, "max", alpha=0.05, n_bootstrap=0)
    assert res["ci"] == pytest.approx([d.mean() - half, d.mean() + half], rel=1e-12)
    # alpha 0.1 gives the 90% interval
    lo90, _ = stats.t_ci(d, 0.10)
    assert lo90 == pytest.approx(d.mean() - st.t.ppf(0.95, n - 1) * d.std(ddof=1) / math.sqrt(n))


def test_bootstrap_ci_equals_scipy_own_call():
    d = np.array([BASE[s] - ABL[s] for s in sorted(BASE)])
    ours = stats.bootstrap_ci(d, alpha=0.05, n_resamples=2000, random_state=7)
    ref = st.bootstrap((d,), np.mean, n_resamples=2000, confidence_level=0.95, method="percentile", rng=7)
    assert ours[0] == pytest.approx(ref.confidence_interval.low, rel=1e-12)
    assert ours[1] == pytest.approx(ref.confidence_interval.high, rel=1e-12)
    res = compare_paired(BASE, ABL, "max", n_bootstrap=2000, random_state=7)
    assert res["ci_bootstrap"] == pytest.approx([ref.confidence_interval.low, ref.confidence_interval.high])
    # batched: every row equals its own scipy call with the same random_state
    rows = [d, d[::-1] * 2, d + 1]
    batched = batch_bootstrap(rows, 0.05, 2000, random_state=0)
    for row, (lo, hi) in zip(rows, batched):
        r = st.bootstrap((row,), np.mean, n_resamples=2000, method="percentile", rng=0).confidence_interval
        assert (lo, hi) == pytest.approx((r.low, r.high), rel=1e-12)


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
    assert stats.verdict(1.0, [(0.5, 1.5)], 0.01, 0.05) == ESSENTIAL
    assert stats.verdict(-1.0, [(-1.5, -0.5)], 0.01, 0.05) == HARMFUL
    assert stats.verdict(1.0, [(0.5, 1.5)], 0.06, 0.05) == NO_EVIDENCE  # not significant after Holm
    assert stats.verdict(1.0, [(0.5, 1.5)], 0.01, 0.05, min_effect=2.0) == NO_EVIDENCE  # too small to matter
    assert stats.verdict(1.0, [(0.5, 1.5), (-0.1, 1.2)], 0.01, 0.05) == NO_EVIDENCE  # a CI straddles 0
    assert stats.verdict(float("nan"), [(0.5, 1.5)], 0.01, 0.05) == NO_EVIDENCE


def test_fewer_than_two_seeds_cannot_conclude():
    one = compare_paired({0: 1.0}, {0: 0.0}, "max")
    assert one["verdict"] == NO_EVIDENCE and not one["conclusive"] and "cannot conclude" in one["note"]
    none = compare_paired({0: 1.0}, {1: 0.0}, "max")
    assert none["n"] == 0 and none["verdict"] == NO_EVIDENCE
    assert none["unpaired"] == {"only_baseline": [0], "only_other": [1], "nonfinite": []}


def test_pairing_uses_common_finite_seeds_and_says_so():
    res = compare_paired({0: 1.0, 1: 1.1, 2: 1.2, 3: 1.3}, {0: 0.5, 1: float("nan"), 2: 0.7}, "max", n_bootstrap=0)
    assert res["seeds"] == [0, 2] and res["n"] == 2
    assert res["unpaired"]["only_baseline"] == [3] and res["unpaired"]["nonfinite"] == [1]
    assert "paired on 2 seed(s) only" in res["note"]


def test_zero_variance_is_handled():
    assert stats.one_sample_t([0.5, 0.5, 0.5]) == (math.inf, 0.0)
    assert stats.one_sample_t([0.0, 0.0]) == (0.0, 1.0)
    res = compare_paired({0: 2.0, 1: 3.0, 2: 4.0}, {0: 1.0, 1: 2.0, 2: 3.0}, "max")
    assert res["zero_variance"] and res["verdict"] == ESSENTIAL


def test_prediction_interval_hand_formula():
    x = np.array([10.0, 10.5, 9.8, 10.2])
    lo, hi = stats.prediction_interval(x, 0.05)
    half = st.t.ppf(0.975, 3) * x.std(ddof=1) * math.sqrt(1 + 1 / 4)
    assert (lo, hi) == pytest.approx((x.mean() - half, x.mean() + half))


def test_sequential_levels_spend_exactly_alpha():
    alpha, initial, maximum, share = 0.05, 3, 10, 0.3
    levels = [stats.sequential_level(n, initial, maximum, alpha, share) for n in range(initial, maximum + 1)]
    assert sum(levels) == pytest.approx(alpha)
    assert stats.sequential_level(10, 3, 10, alpha, share) == pytest.approx(alpha * 0.7)
    assert stats.sequential_p(0.001, 10, 3, 10, alpha, share) == pytest.approx(0.001 / 0.7)
    assert stats.sequential_level(5, 5, 5, alpha, share) == alpha  # no adaptivity: plain alpha


def test_regression_recovers_exact_coefficients():
    # noiseless linear data: score = 10 + 2*a + 1*b - 0.5*(both removed) + seed offset
    from components.simulated import simulated_config
    from orchestrator.config import parse_config

    cfg = parse_config(simulated_config({"a": 2.0, "b": 1.0}, 0.0, 3, design="full_factorial", pairs=[("a", "b")]))
    recs = []
    for removed in ([], ["a"], ["b"], ["a", "b"]):
        for seed in range(3):
            score = 10 + 2 * ("a" not in removed) + 1 * ("b" not in removed) - 0.5 * (len(removed) == 2) + 0.3 * seed
            recs.append({"trial_id": f"{removed}-{seed}", "stage": "ablation", "variant": "x", "removed": removed,
                         "seed": seed, "group": None, "state": "COMPLETED",
                         "final": {"score": score + 1e-3 * np.sin(7 * seed + len(removed))}})
    g = group_records(recs)["default"]
    mains, inter = regression_effects(g, cfg.components, [("a", "b")], "score", "max", 0.05, 0.0)
    assert mains["a"]["effect"] == pytest.approx(2.0, abs=0.01)
    assert mains["b"]["effect"] == pytest.approx(1.0, abs=0.01)
    assert inter["a+b"]["effect"] == pytest.approx(0.5, abs=0.01)
    assert mains["a"]["verdict"] == ESSENTIAL
    # the same data read as a minimised metric flips every sign
    mains_min, _ = regression_effects(g, cfg.components, [("a", "b")], "score", "min", 0.05, 0.0)
    assert mains_min["a"]["effect"] == pytest.approx(-2.0, abs=0.01)
    assert mains_min["a"]["verdict"] == HARMFUL
