"""Verdicts on simulated studies with known truth: error rates, power, coverage, recovery.

Many independent simulated studies (``replicate`` = an independent noise draw) are
analysed; rates are checked against alpha with a binomial tolerance of 3 standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from components.simulated import final_metrics, records_for, run, run_adaptive, simulated_config
from orchestrator.analysis import adaptive, analyse
from orchestrator.config import parse_config

ALPHA = 0.05
DECIDED_EFFECT = ("essential", "harmful")


def tol(p: float, n: int) -> float:
    return 3 * math.sqrt(p * (1 - p) / n)


def verdicts(records, config) -> dict:
    a = analyse(records, config, contamination=False)
    return a["groups"]["default"]


def test_one_at_a_time_error_rate_power_and_interaction_coverage():
    effects = {"n1": 0.0, "n2": 0.0, "n3": 0.0, "small": 0.3, "large": 3.0}
    config = parse_config(simulated_config(effects, 0.5, 5, pairs=[("large", "small")],
                                           interaction={"large+small": 1.0}, n_bootstrap=500))
    reps = 300
    any_fp = large_found = small_wrong_sign = covered = 0
    est = []
    for rep in range(reps):
        g = verdicts(records_for(config, replicate=rep), config)
        comps = g["components"]
        any_fp += any(comps[c]["verdict"] in DECIDED_EFFECT for c in ("n1", "n2", "n3"))
        large_found += comps["large"]["verdict"] == "essential"
        small_wrong_sign += comps["small"]["verdict"] == "harmful"
        inter = g["interactions"]["large+small"]
        lo, hi = inter["ci"]
        covered += lo <= 1.0 <= hi
        est.append(inter["effect"])
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
        comps = verdicts(records_for(config, replicate=rep), config)["components"]
        fp += any(comps[c]["verdict"] in DECIDED_EFFECT for c in ("n1", "n2"))
        big += comps["big"]["verdict"] == "essential" and comps["big"]["effect"] > 0
        bad += comps["bad"]["verdict"] == "harmful" and comps["bad"]["effect"] < 0
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
        for c, r in g["components"].items():
            assert r["method"] == "regression"
            est[c].append(r["effect"])
            cover[c] += r["ci"][0] <= truth[c] <= r["ci"][1]
        i = g["interactions"]["a+b"]
        inter_est.append(i["effect"])
        inter_cover += i["ci"][0] <= 0.6 <= i["ci"][1]
        any_fp += any(g["components"][c]["verdict"] in DECIDED_EFFECT for c in ("b", "e"))
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
    monkeypatch.setattr(adaptive, "FUTILITY", 0.0)
    effects = {"n1": 0.0, "n2": 0.0, "n3": 0.0}
    config = parse_config(simulated_config(effects, 1.0, 10, adaptive=(3, 10), n_bootstrap=200))
    reps = 200
    fp = 0
    for rep in range(reps):
        recs = run_adaptive(config, replicate=rep)
        comps = verdicts(recs, config)["components"]
        fp += any(r["verdict"] in DECIDED_EFFECT for r in comps.values())
    assert fp / reps <= ALPHA + tol(ALPHA, reps)


def test_adaptive_seeds_save_trials_without_losing_verdicts():
    effects = {"n1": 0.0, "n2": 0.0, "n3": 0.0, "medium": 1.0, "large": 2.0, "harmful": -1.5}
    common = {"min_effect": 0.5, "n_bootstrap": 200, "seed_noise": 0.25}
    fixed = parse_config(simulated_config(effects, 0.25, 10, **common))
    adapt = parse_config(simulated_config(effects, 0.25, 10, adaptive=(3, 10), **common))
    reps = 40
    fixed_trials = adapt_trials = 0
    found_f = found_a = fp_a = 0
    want = {"medium": "essential", "large": "essential", "harmful": "harmful"}
    for rep in range(reps):
        rf = records_for(fixed, replicate=rep)
        ra = run_adaptive(adapt, replicate=rep)
        fixed_trials += len(rf)
        adapt_trials += len(ra)
        cf, ca = verdicts(rf, fixed)["components"], verdicts(ra, adapt)["components"]
        found_f += sum(cf[c]["verdict"] == v for c, v in want.items())
        found_a += sum(ca[c]["verdict"] == v for c, v in want.items())
        fp_a += any(ca[c]["verdict"] in DECIDED_EFFECT for c in ("n1", "n2", "n3"))
    assert adapt_trials <= 0.7 * fixed_trials, adapt_trials / fixed_trials
    assert found_a >= found_f - 0.02 * 3 * reps
    assert fp_a / reps <= ALPHA + tol(ALPHA, reps)


def test_undecided_rule_states():
    effects = {"null": 0.0, "huge": 100.0, "unclear": 0.6}
    config = parse_config(simulated_config(effects, 0.5, 10, adaptive=(3, 10), min_effect=0.2, n_bootstrap=200))
    recs = records_for(config, config.seed_list)
    states = adaptive.decisions(recs, config)["default"]
    assert states["huge"]["state"] == "essential"  # decided at the first look
    assert adaptive.undecided(recs, config) == [c for c in effects if states[c]["state"] == "undecided"]
    # at max every component is decided
    recs10 = records_for(config, range(10))
    assert adaptive.undecided(recs10, config) == []
    # a single seed cannot decide anything (and does not crash)
    one = [r for r in recs if r["seed"] == 0]
    assert set(adaptive.undecided(one, config)) == set(effects)


def test_trainable_matches_simulated_records_and_resumes(tmp_path):
    from orchestrator.trial import TrialContext

    config = parse_config(simulated_config({"a": 2.0, "b": 0.0}, 0.5, 3, pairs=[("a", "b")],
                                           interaction={"a+b": 0.5}))
    recs = {r["trial_id"]: r for r in records_for(config)}
    for removed, seed in ([], 0), (["a"], 1), (["a", "b"], 2):
        cfg = config.resolved(removed)
        ctx = TrialContext.local(cfg, seed=seed, trial_dir=tmp_path / f"{'-'.join(removed)}{seed}")
        run(ctx)
        tid = ("no-" + "+".join(removed) if removed else "baseline") + f"-seed{seed}"
        assert ctx.final == pytest.approx(recs[tid]["final"])
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
