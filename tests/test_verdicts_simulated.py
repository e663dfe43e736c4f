"""Verdicts on simulated studies with known truth: error rates, power, coverage, recovery.

Many independent simulated studies (``replicate`` = an independent noise draw) are
analysed; rates are checked against alpha with a binomial tolerance of 3 standard errors.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from orchestrator.analysis import adaptive, analyse, sequential
from orchestrator.analysis.model import GroupAnalysis
from orchestrator.config import parse_config
from tests.support.simulated import final_metrics, records_for, run, run_adaptive, simulated_config

ALPHA = 0.05
DECIDED_EFFECT = ("essential", "harmful")


def tol(p: float, n: int) -> float:
    return 3 * math.sqrt(p * (1 - p) / n)


def verdicts(records, config) -> GroupAnalysis:
    a = analyse(records, config, contamination=False)
    return a.groups["default"]


def test_one_at_a_time_error_rate_power_and_interaction_coverage():
    effects = {"n1": 0.0, "n2": 0.0, "n3": 0.0, "small": 0.3, "large": 3.0}
    config = parse_config(simulated_config(effects, 0.5, 5, pairs=[("large", "small")],
                                           interaction={"large+small": 1.0}, n_bootstrap=500))
    reps = 300
    any_fp = large_found = small_wrong_sign = covered = 0
    est = []
    for rep in range(reps):
        g = verdicts(records_for(config, replicate=rep), config)
        comps = g.components
        any_fp += any(comps[c].verdict in DECIDED_EFFECT for c in ("n1", "n2", "n3"))
        large_found += comps["large"].verdict == "essential"
        small_wrong_sign += comps["small"].verdict == "harmful"
        inter = g.interactions["large+small"]
        lo, hi = inter.ci
        covered += lo <= 1.0 <= hi
        est.append(inter.effect)
    assert any_fp / reps <= ALPHA + tol(ALPHA, reps), any_fp / reps  # family-wise, after Holm
    assert large_found / reps >= 0.95
    assert small_wrong_sign / reps <= ALPHA + tol(ALPHA, reps)
    assert covered / reps >= 1 - ALPHA - tol(ALPHA, reps)
    assert abs(np.mean(est) - 1.0) < 4 * np.std(est) / math.sqrt(reps)  # unbiased


def test_minimised_primary_is_oriented():
    """With loss (min) as primary, a component whose removal raises the loss is essential."""
    effects = {"n1": 0.0, "n2": 0.0, "big": 3.0, "bad": -3.0}
    cfgd = simulated_config(effects, 0.5, 5, n_bootstrap=500)
    cfgd["metrics"] = {"primary": {"name": "loss", "mode": "min"}, "secondary": [{"name": "score", "mode": "max"}]}
    config = parse_config(cfgd)
    reps = 120
    fp = big = bad = 0
    for rep in range(reps):
        comps = verdicts(records_for(config, replicate=rep), config).components
        fp += any(comps[c].verdict in DECIDED_EFFECT for c in ("n1", "n2"))
        big += comps["big"].verdict == "essential" and comps["big"].effect > 0
        bad += comps["bad"].verdict == "harmful" and comps["bad"].effect < 0
    assert fp / reps <= ALPHA + tol(ALPHA, reps)
    assert big / reps >= 0.95 and bad / reps >= 0.95


@pytest.mark.parametrize("design", ["full_factorial", "random"])
def test_regression_recovers_main_effects_and_interaction(design):
    effects = {"a": 1.0, "b": 0.0, "c": 0.5, "d": -0.8, "e": 0.0}
    truth = dict(effects)
    config = parse_config(simulated_config(effects, 0.5, 3, design=design, pairs=[("a", "b")],
                                           interaction={"a+b": 0.6}, total_trials=60, design_seed=3))
    reps = 100
    est = {c: [] for c in effects}
    cover = {c: 0 for c in effects}
    inter_est, inter_cover, any_fp = [], 0, 0
    for rep in range(reps):
        g = verdicts(records_for(config, replicate=rep), config)
        for c, r in g.components.items():
            assert r.method == "regression"
            est[c].append(r.effect)
            cover[c] += r.ci[0] <= truth[c] <= r.ci[1]
        i = g.interactions["a+b"]
        inter_est.append(i.effect)
        inter_cover += i.ci[0] <= 0.6 <= i.ci[1]
        any_fp += any(g.components[c].verdict in DECIDED_EFFECT for c in ("b", "e"))
    for c in effects:
        e = np.array(est[c])
        assert abs(e.mean() - truth[c]) < 4 * e.std() / math.sqrt(reps) + 1e-9, (c, e.mean())
        assert cover[c] / reps >= 1 - ALPHA - tol(ALPHA, reps), (c, cover[c])
    e = np.array(inter_est)
    assert abs(e.mean() - 0.6) < 4 * e.std() / math.sqrt(reps)
    assert inter_cover / reps >= 1 - ALPHA - tol(ALPHA, reps)
    assert any_fp / reps <= ALPHA + tol(ALPHA, reps)


def test_adaptive_seeds_keep_error_rate_under_peeking(monkeypatch):
    """Null components looked at after every seed from 3 to 10: FWER stays <= alpha.

    Futility stopping is switched off so every null runs to max: the most peeking possible.
    """
    monkeypatch.setitem(sequential.DESIGNS, "lean", replace(sequential.DESIGNS["lean"], futility=0.0))
    effects = {"n1": 0.0, "n2": 0.0, "n3": 0.0}
    config = parse_config(simulated_config(effects, 1.0, 10, adaptive=(3, 10), n_bootstrap=200))
    reps = 200
    fp = 0
    for rep in range(reps):
        recs = run_adaptive(config, replicate=rep)
        comps = verdicts(recs, config).components
        fp += any(r.verdict in DECIDED_EFFECT for r in comps.values())
    assert fp / reps <= ALPHA + tol(ALPHA, reps)


@pytest.mark.parametrize("design,bar", [("lean", 0.90), ("thorough", 0.95)])
def test_adaptive_seeds_save_trials_without_losing_verdicts(design, bar):
    effects = {"n1": 0.0, "n2": 0.0, "n3": 0.0, "medium": 1.0, "large": 2.0, "harmful": -1.5}
    common = {"min_effect": 0.5, "n_bootstrap": 200, "seed_noise": 0.25}
    fixed = parse_config(simulated_config(effects, 0.25, 10, **common))
    adapt = parse_config(simulated_config(effects, 0.25, 10, adaptive=(3, 10), **common)
                         | {"seeds": {"initial": 3, "max": 10, "design": design}})
    reps = 40
    fixed_trials = adapt_trials = 0
    found_f = found_a = fp_a = 0
    want = {"medium": "essential", "large": "essential", "harmful": "harmful"}
    for rep in range(reps):
        rf = records_for(fixed, replicate=rep)
        ra = run_adaptive(adapt, replicate=rep)
        fixed_trials += len(rf)
        adapt_trials += len(ra)
        cf, ca = verdicts(rf, fixed).components, verdicts(ra, adapt).components
        found_f += sum(cf[c].verdict == v for c, v in want.items())
        found_a += sum(ca[c].verdict == v for c, v in want.items())
        fp_a += any(ca[c].verdict in DECIDED_EFFECT for c in ("n1", "n2", "n3"))
    assert adapt_trials <= 0.95 * fixed_trials, adapt_trials / fixed_trials  # nulls must now be shown negligible
    # on noisy rows ``lean`` (the default) trades decisions for trials (interim looks' alpha, futility 0.35): the
    # benchmark's noisier mix keeps 0.80x of fixed seeds' decisions, ``thorough`` 0.96x (benchmarks/sequential.py,
    # docs/concepts/statistics.md)
    assert found_a >= bar * found_f, (found_a, found_f)
    assert fp_a / reps <= ALPHA + tol(ALPHA, reps)


def test_each_verdict_on_ground_truth():
    """essential, harmful, negligible and inconclusive where the truth says so (min_effect = 1 = 2 SD).

    'near' has a true effect of 0.9 x min_effect: it must not be called essential more than
    alpha of the time (the interval, not the point estimate, is compared with min_effect).
    """
    effects = {"ess": 3.0, "harm": -3.0, "null": 0.0, "near": 0.9}
    config = parse_config(simulated_config(effects, 0.5 / math.sqrt(2), 6, seed_noise=1.0, min_effect=1.0,
                                           n_bootstrap=200))
    reps = 200
    counts = {c: {} for c in effects}
    for rep in range(reps):
        for c, r in verdicts(records_for(config, replicate=rep), config).components.items():
            counts[c][r.verdict] = counts[c].get(r.verdict, 0) + 1
    rate = {c: {v: k / reps for v, k in cs.items()} for c, cs in counts.items()}
    assert rate["ess"].get("essential", 0) >= 0.8, rate["ess"]
    assert rate["harm"].get("harmful", 0) >= 0.8, rate["harm"]
    assert rate["null"].get("negligible", 0) >= 0.8, rate["null"]  # TOST power, 6 seeds, min_effect 2 SD
    assert rate["null"].get("essential", 0) + rate["null"].get("harmful", 0) <= ALPHA + tol(ALPHA, reps)
    assert rate["near"].get("essential", 0) <= ALPHA + tol(ALPHA, reps), rate["near"]
    assert rate["near"].get("negligible", 0) <= ALPHA + tol(ALPHA, reps), rate["near"]
    # the payload says what the study could detect and how many seeds would decide
    g = verdicts(records_for(config, replicate=0), config)
    assert all(r.mde > 0 and r.seeds_needed >= 2 for r in g.components.values())


def test_float_noise_components_are_not_essential():
    """Ten components that do nothing, five seeds, metric differences of float noise only."""
    effects = {f"n{i}": 0.0 for i in range(10)}
    config = parse_config(simulated_config(effects, 0.0, 5, seed_noise=1.0, n_bootstrap=200))
    recs = records_for(config)
    for r in recs:  # a removal that changes nothing but the float summation order
        if r.removed:
            r.final["score"] = r.final["score"] * (1 + 2e-16 * (1 + r.seed % 3))
    comps = verdicts(recs, config).components
    assert any(r.diffs for r in comps.values())
    assert all(r.verdict == "inconclusive" and r.p == 1.0 for r in comps.values())


def test_random_design_warns_about_an_unlisted_interaction():
    """ffn matters only while attention is present (attention x ffn, not listed in the config).

    Averaged over the design's variants ffn's effect is diluted; the check finds the pair,
    warns naming it, and judges ffn in the baseline's context, where it costs 0.03.
    """
    effects = {"attention": 0.08, "ffn": 0.03, "norm": 0.0, "dropout": 0.0, "pos": 0.02}
    kw = {"design": "random", "interaction": {"attention+ffn": -0.03}, "total_trials": 60, "design_seed": 1,
          "n_bootstrap": 200}
    config = parse_config(simulated_config(effects, 0.01, 5, **kw))
    reps = 20
    from orchestrator.analysis.effects import regression_effects
    from orchestrator.analysis.records import group_records

    warned = ffn_kept = 0
    averaged = []
    for rep in range(reps):
        recs = records_for(config, replicate=rep)
        mains, _, _ = regression_effects(group_records(recs)["default"], config.components, [], "score", "max",
                                         0.05, 0.0, scan=False)
        averaged.append(mains["ffn"].effect)  # the statistics engine's own row
        a = analyse(recs, config, contamination=False)
        g = a.groups["default"]
        msgs = [f.message for f in a.flags if f.kind == "interaction"]
        warned += any(m.startswith("attention x ffn") for m in msgs)
        ffn = g.components["ffn"]
        ffn_kept += ffn.verdict == "essential" and abs(ffn.effect - 0.03) < 0.015
        if "attention x ffn" in g.fit_check.found:
            assert "baseline's context" in ffn.note and ffn.average_effect is not None
    assert warned / reps >= 0.8 and ffn_kept / reps >= 0.8, (warned, ffn_kept)
    # main effects only: ffn's effect is averaged with variants where attention is gone
    assert np.mean(averaged) < 0.025, np.mean(averaged)


def test_no_interaction_no_warning():
    effects = {"a": 0.5, "b": 0.3, "c": 0.0, "d": 0.0}
    config = parse_config(simulated_config(effects, 0.2, 4, design="full_factorial", n_bootstrap=200))
    reps, warned = 60, 0
    for rep in range(reps):
        a = analyse(records_for(config, replicate=rep), config, contamination=False)
        warned += any(f.kind == "interaction" for f in a.flags)
    assert warned / reps <= 2 * ALPHA + tol(2 * ALPHA, reps)  # pair scan and lack of fit, each at alpha


def test_adaptive_stops_when_every_component_is_decided(monkeypatch):
    """Clear effects and clear nulls (min_effect > 0) are all decided at the first look: no seed added."""
    effects = {"big": 5.0, "bad": -5.0, "null": 0.0}
    config = parse_config(simulated_config(effects, 0.05, 10, seed_noise=0.05, adaptive=(4, 10), min_effect=1.0,
                                           n_bootstrap=200))
    recs = run_adaptive(config)
    assert {r.seed for r in recs} == {0, 1, 2, 3}
    comps = verdicts(recs, config).components
    assert [comps[c].verdict for c in effects] == ["essential", "harmful", "negligible"]
    # an undecidable component (true effect = min_effect) gets seeds up to max (futility stop off);
    # the decided one stops
    monkeypatch.setitem(sequential.DESIGNS, "lean", replace(sequential.DESIGNS["lean"], futility=0.0))
    effects = {"big": 5.0, "edge": 1.0}
    config = parse_config(simulated_config(effects, 0.5, 10, adaptive=(3, 6), min_effect=1.0, n_bootstrap=200))
    recs = run_adaptive(config)
    seeds = {v: {r.seed for r in recs if r.variant == v} for v in ("baseline", "no-big", "no-edge")}
    assert seeds["baseline"] == seeds["no-edge"] == set(range(6))
    assert len(seeds["no-big"]) < 6  # decided early (the first looks spend little alpha)


def test_undecided_rule_states():
    effects = {"null": 0.0, "huge": 100.0, "unclear": 0.6}
    config = parse_config(simulated_config(effects, 0.5, 10, adaptive=(3, 10), min_effect=0.2, n_bootstrap=200))
    recs = records_for(config, config.seed_list)
    states = adaptive.decisions(recs, config)["default"]
    assert states["huge"]["state"] == "undecided"  # 3 seeds: before the first look (4 seeds), not tested
    four = adaptive.decisions(records_for(config, range(4)), config)["default"]
    assert four["huge"]["state"] == "essential"  # decided at the first look
    assert adaptive.undecided(recs, config) == [c for c in effects if states[c]["state"] == "undecided"]
    # at max every component is decided
    recs10 = records_for(config, range(10))
    assert adaptive.undecided(recs10, config) == []
    # a single seed cannot decide anything (and does not crash)
    one = [r for r in recs if r.seed == 0]
    assert set(adaptive.undecided(one, config)) == set(effects)


def test_trainable_matches_simulated_records_and_resumes(tmp_path):
    from orchestrator.trial import TrialContext

    config = parse_config(simulated_config({"a": 2.0, "b": 0.0}, 0.5, 3, pairs=[("a", "b")],
                                           interaction={"a+b": 0.5}))
    recs = {r.trial_id: r for r in records_for(config)}
    for removed, seed in ([], 0), (["a"], 1), (["a", "b"], 2):
        cfg = config.resolved(removed)
        ctx = TrialContext.local(cfg, seed=seed, trial_dir=tmp_path / f"{'-'.join(removed)}{seed}")
        run(ctx)
        tid = ("no-" + "+".join(removed) if removed else "baseline") + f"-seed{seed}"
        assert ctx.final == pytest.approx(recs[tid].final)
        assert ctx.final == pytest.approx(final_metrics(cfg, seed))
    # true removal effects: the pair's extra drop is the interaction
    s = {tuple(r): final_metrics({**config.resolved(r), "sim": {**config.resolved(r)["sim"], "noise": 0.0,
                                                                "seed_noise": 0.0}}, 0)["score"]
         for r in ([], ["a"], ["b"], ["a", "b"])}
    assert s[()] - s[("a",)] == pytest.approx(2.0)
    assert (s[()] - s[("a", "b")]) - (s[()] - s[("a",)]) - (s[()] - s[("b",)]) == pytest.approx(0.5)
    # a crash at epoch 1 on the first attempt; the restart resumes from the epoch-0 checkpoint
    cfg = config.resolved([])
    cfg["sim"] = {**cfg["sim"], "fail_at_epoch": 1, "epochs": 3}
    trial_dir = tmp_path / "crash"
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(TrialContext.local(cfg, seed=0, trial_dir=trial_dir))
    ctx = TrialContext.local(cfg, seed=0, trial_dir=trial_dir)
    assert ctx.restore() == {"epoch": 0}
    run(ctx)
    assert ctx.final == pytest.approx(final_metrics(cfg, 0))
    assert [row["step"] for row in ctx.history] == [0, 1, 2]


def test_row_that_clears_the_band_before_holm_only_says_so():
    """'edge' (true effect 1.0, min_effect 0.3) clears the band before Holm in some noise draws, not after:
    its row names the deciding test with its Holm-adjusted p, the note and the verdict say why in words,
    the simultaneous interval touches the band, and no field of verdicts.json says conclusive."""
    from orchestrator.analysis import tables, verdicts_payload

    effects = {"edge": 1.0, "n1": 0.0, "n2": 0.0, "n3": 0.0}
    config = parse_config(simulated_config(effects, 0.5, 6, min_effect=0.3, n_bootstrap=100))
    for rep in range(40):
        a = analyse(records_for(config, replicate=rep), config, contamination=False)
        r = a.groups["default"].components["edge"]
        if r.p_essential < ALPHA <= r.p_essential_holm:
            break
    else:
        pytest.fail("no noise draw where edge clears the band before Holm only")
    assert r.verdict == "inconclusive" and r.ci[0] > 0.3  # the plain 95% t interval clears the band
    assert r.deciding.test == "essential" and r.deciding.p_holm == r.p_essential_holm >= ALPHA
    assert r.ci_sim[0] <= 0.3 < r.ci_sim[1]  # the interval shown agrees with the verdict
    assert "clears the band before Holm" in r.why and f"{r.p_essential_holm:.3g}" in r.why
    row = dict(zip(tables.SUMMARY_HEADER, tables.summary_rows(a.groups["default"])[0]))
    assert row["verdict"].startswith("inconclusive") and row["verdict"].endswith("clears the band before Holm only")
    assert row["deciding test: p (Holm)"].startswith(f"effect > +0.3 (essential): {r.p_essential_holm:.4f}")
    payload = verdicts_payload(a)
    edge = payload.components["edge"]
    assert "clears the band before Holm" in edge.why and edge.deciding.test == "essential"

    def keys(x):
        if isinstance(x, dict):
            return set(x) | set().union(*(keys(v) for v in x.values()))
        return set().union(*(keys(v) for v in x)) if isinstance(x, list) else set()

    assert "conclusive" not in keys(payload.model_dump())


def test_simultaneous_intervals_cover_every_component_together():
    """The plotted intervals (Bonferroni, 1 - alpha/m) cover all components' true effects at once >= 1 - alpha."""
    effects = {"a": 1.0, "b": 0.0, "c": -0.5, "d": 0.2, "e": 0.0}
    config = parse_config(simulated_config(effects, 0.5, 5, min_effect=0.3, n_bootstrap=100))
    reps = 200
    together = 0
    for rep in range(reps):
        comps = verdicts(records_for(config, replicate=rep), config).components
        assert all(math.isfinite(x) for r in comps.values() for x in r.ci_sim)
        together += all(r.ci_sim[0] <= effects[c] <= r.ci_sim[1] for c, r in comps.items())
    assert together / reps >= 1 - ALPHA - tol(ALPHA, reps), together / reps
