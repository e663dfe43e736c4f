"""Alternatives and factors on simulated studies with known truth (tests/support/simulated_factors.py).

Truth: norm=batch is worse than the baseline's layer norm by 1.0 (essential), norm=rms better by
1.0 (harmful), norm=group equal (negligible); width +0.5 per doubling; act: gelu +0.8, tanh -0.8;
depth has no effect. Many independent replicates (noise draws) are analysed; rates are checked
against alpha with a binomial tolerance of 3 standard errors.
"""

from __future__ import annotations

import functools
import json
import math

import pytest
from scipy import stats as st

from orchestrator.analysis import analyse
from orchestrator.analysis.factors import analyse_levels
from orchestrator.analysis.records import group_records
from orchestrator.config import parse_config
from tests.support.simulated_factors import TRUTH, records, study

ALPHA = 0.05
MIN_EFFECT = 0.5
REPS = 200
# Lowest acceptable share of right essential/harmful calls for norm=batch/rms (truth +-1.0,
# min_effect 0.5). one_at_a_time: alternatives share the components' rule (the 1 - alpha t
# interval beyond min_effect, Holm across the 3 alternatives), so the floor is the power of
# that test at Bonferroni's level alpha / 3 (a lower bound on Holm's; paired-difference SD
# 0.3 * sqrt(2), 10 seeds, df 9: 0.77) less 3 binomial standard errors.
_SE = 0.3 * math.sqrt(2) / math.sqrt(10)
_BONFERRONI_POWER = float(st.nct.sf(st.t.ppf(1 - ALPHA / 6, 9), 9, (1.0 - MIN_EFFECT) / _SE))
POWER_FLOOR = {"one_at_a_time": _BONFERRONI_POWER - 3 * math.sqrt(_BONFERRONI_POWER * (1 - _BONFERRONI_POWER) / REPS),
               "random": 0.85}
DESIGNS = {
    "one_at_a_time": ({"type": "one_at_a_time"}, list(range(10))),
    "random": ({"type": "random", "total_trials": 240, "seed": 3}, list(range(4))),
}


def tol(p: float, n: int) -> float:
    return 3 * math.sqrt(p * (1 - p) / n)


def levels(config, rep: int) -> dict:
    group = group_records(records(config, rep))["default"]
    return analyse_levels(group, config, ALPHA, MIN_EFFECT)


@functools.cache
def truth_levels(design: str) -> tuple[dict, ...]:
    """``levels`` of every replicate of the TRUTH study: the verdict and the factor tests read the same analyses."""
    d, seeds = DESIGNS[design]
    config = parse_config(study(d, seeds, TRUTH, MIN_EFFECT))
    return tuple(levels(config, rep) for rep in range(REPS))


def _truth(**changes) -> dict:
    truth = {k: dict(v) if isinstance(v, dict) else v for k, v in TRUTH.items()}
    truth.update(changes)
    return truth


@pytest.mark.parametrize("design", list(DESIGNS))
def test_right_verdict_per_alternative(design):
    counts = {"batch": {}, "rms": {}, "group": {}}
    for out in truth_levels(design):
        for alt, r in out["alternatives"]["norm"].items():
            counts[alt][r.verdict] = counts[alt].get(r.verdict, 0) + 1
    assert counts["batch"].get("essential", 0) / REPS >= POWER_FLOOR[design], counts
    assert counts["rms"].get("harmful", 0) / REPS >= POWER_FLOOR[design], counts
    assert counts["group"].get("negligible", 0) / REPS >= 0.6, counts
    wrong = counts["batch"].get("harmful", 0) + counts["rms"].get("essential", 0)
    wrong += counts["group"].get("essential", 0) + counts["group"].get("harmful", 0)
    assert wrong / REPS <= ALPHA + tol(ALPHA, REPS), counts


@pytest.mark.parametrize("design", list(DESIGNS))
def test_factor_effect_sign_and_ci_coverage(design):
    covered = {"width": 0, "gelu": 0, "tanh": 0}
    right_sign = 0
    first = 0
    for out in truth_levels(design):
        f = out["factors"]
        lo, hi = f["model.width"].ci
        covered["width"] += lo <= 0.5 <= hi
        right_sign += f["model.width"].effect > 0 and f["model.width"].significant
        for level, truth in (("gelu", 0.8), ("tanh", -0.8)):
            lo, hi = f["model.act"].levels[level].ci
            covered[level] += lo <= truth <= hi
        first += f["model.width"].rank == 1 and f["model.depth"].rank == 3
    for name, n in covered.items():
        assert n / REPS >= 1 - ALPHA - tol(ALPHA, REPS), (name, n)
    assert right_sign / REPS >= 0.95
    assert first / REPS >= 0.9  # width moves the metric most over its range; depth not at all


@pytest.mark.parametrize("design", list(DESIGNS))
def test_null_factors_false_positive_rate_at_alpha(design):
    d, seeds = DESIGNS[design]
    null = _truth(choices={**TRUTH["choices"], "model.act": {}}, trends={"model.width": {"at": 32, "slope": 0.0}})
    config = parse_config(study(d, seeds, null, MIN_EFFECT))
    hits = {"model.width": 0, "model.depth": 0, "model.act": 0}
    fit_warnings = 0
    for rep in range(REPS):
        out = levels(config, rep)
        for path in hits:
            hits[path] += out["factors"][path].p < ALPHA
        fit_warnings += bool(out["factor_flags"])
    for path, n in hits.items():
        assert n / REPS <= ALPHA + tol(ALPHA, REPS), (path, n)
    assert fit_warnings / REPS <= 2 * ALPHA + tol(2 * ALPHA, REPS)  # two numeric factors, each at alpha


def test_a_bending_trend_gets_a_poor_fit_warning():
    bent = _truth(trends={**TRUTH["trends"], "model.width": {"at": 32, "log": True, "slope": 0.5, "curve": -0.6}})
    d, seeds = DESIGNS["one_at_a_time"]
    config = parse_config(study(d, seeds, bent, MIN_EFFECT))
    a = analyse(records(config, 0), config, contamination=False, n_bootstrap=0)
    warned = [f for f in a.flags if f.kind == "factor_fit"]
    assert [f.subject for f in warned] == ["model.width"], a.flags
    assert "straight-line fit is poor" in warned[0].message


def test_random_design_component_effects_account_for_alternatives_and_factors():
    """The removal effects stay right while alternatives and factors vary in the same trials."""
    d, seeds = DESIGNS["random"]
    config = parse_config(study(d, seeds, TRUTH, MIN_EFFECT))
    covered = 0
    reps = 60
    for rep in range(reps):
        g = analyse(records(config, rep), config, contamination=False, n_bootstrap=0).groups["default"]
        lo, hi = g.components["gate"].ci
        covered += lo <= 1.0 <= hi
    assert covered / reps >= 1 - ALPHA - tol(ALPHA, reps)


@pytest.mark.parametrize("design", list(DESIGNS))
def test_alternatives_carry_every_component_field(design):
    """verdicts.json: components.<c>.alternatives.<alt> has a component's fields (seeds_needed too)."""
    from orchestrator.analysis.study_analysis import verdicts_payload

    d, seeds = DESIGNS[design]
    config = parse_config(study(d, seeds, TRUTH, MIN_EFFECT))
    payload = verdicts_payload(analyse(records(config, 0), config, contamination=False, n_bootstrap=0))
    norm = json.loads(payload.model_dump_json())["components"]["norm"]  # as verdicts.json holds it
    alts = norm["alternatives"]
    assert set(alts) == {"batch", "rms", "group"}
    for alt, r in alts.items():
        assert set(r) == set(norm), alt  # one model: a component's fields, overrides included
        assert r["kind"] == "structural" and r["overrides"] == {"model.norm": alt}
        assert isinstance(r["seeds_needed"], int) and r["seeds_needed"] >= 2, (alt, r["seeds_needed"])
        assert r["mde"] > 0 and 0 <= r["p_essential_holm"] <= 1
    typed = payload.components["norm"].alternatives
    assert typed["batch"].verdict == "essential" and typed["rms"].verdict == "harmful"
