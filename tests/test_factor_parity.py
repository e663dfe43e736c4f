"""Factors at parity with components (simulated studies, known truth, no Ray).

Secondary-metric effects and their flag, BCa intervals with >= 10 seeds, pair interactions in
random designs (found when planted, rare when absent), and the plotted interval that matches
the Holm decision.
"""

from __future__ import annotations

import math

from orchestrator.analysis.factor_report import decision_caption
from orchestrator.analysis.factors import analyse_levels
from orchestrator.analysis.records import group_records
from orchestrator.config import parse_config
from tests.support.simulated_factors import NESTED_TRUTH, TRUTH, nested_study, records, study

ALPHA = 0.05


def _analyse(cfg: dict, rep: int = 0, n_bootstrap: int = 500) -> dict:
    config = parse_config(cfg)
    return analyse_levels(group_records(records(config, rep))["default"], config, ALPHA, 0.0, n_bootstrap)


def test_secondary_effects_bootstrap_and_decision_intervals():
    cfg = study({"type": "random", "total_trials": 120, "seed": 1}, list(range(12)), TRUTH, 0.3)
    cfg["metrics"]["secondary"] = [{"name": "score", "mode": "min"}]  # the same score, read the other way
    out = _analyse(cfg)
    width = out["factors"]["model.width"]
    assert width.ci_method == "BCa" and width.ci_bootstrap != width.ci  # ci stays the t interval
    assert width.ci_bootstrap[0] <= 0.5 <= width.ci_bootstrap[1]
    sec = width.secondary["score"]
    assert math.isclose(sec.effect, -width.effect, rel_tol=1e-9) and sec.ci[1] < 0
    act = out["factors"]["model.act"]
    assert act.secondary["score"].level == act.effect_level
    flagged = {f.subject for f in out["factor_flags"] if f.kind == "secondary"}
    assert {"model.width", "model.act"} <= flagged and "model.depth" not in flagged
    assert width.decision_k and len(width.ci_decision) == 2

    few = study({"type": "random", "total_trials": 40, "seed": 1}, [0, 1, 2, 3], TRUTH, 0.3)
    assert _analyse(few)["factors"]["model.width"].ci_method == "t"  # under 10 seeds: t


def test_the_decision_interval_excludes_zero_exactly_when_holm_says_significant():
    mismatches, decided = 0, 0
    for design, seeds in (({"type": "random", "total_trials": 60, "seed": 2}, [0, 1, 2]),
                          ({"type": "one_at_a_time"}, [0, 1, 2, 3])):
        for rep in range(8):
            truth = {**TRUTH, "noise": 1.5}  # noisy enough that some factors are undecided
            for name, r in _analyse(study(design, seeds, truth, 0.3), rep, 0)["factors"].items():
                if r.kind != "numeric" or r.ci_decision is None:
                    continue
                lo, hi = r.ci_decision
                assert math.isfinite(lo) and math.isfinite(hi), name
                mismatches += (lo > 0 or hi < 0) != r.significant
                decided += r.significant
                assert r.decision_k <= r.decision_m
    assert mismatches == 0 and decided > 0
    r = _analyse(study({"type": "one_at_a_time"}, [0, 1, 2], TRUTH, 0.3), 0, 0)["factors"]["model.width"]
    caption = decision_caption(r, ALPHA)
    assert f"1 - 0.05/{r.decision_k}" in caption and "Holm step" in caption and "significant" in caption


def test_pair_interactions_found_when_planted_and_rare_when_absent():
    def cfg(when: dict | None) -> dict:
        truth = {k: dict(v) if isinstance(v, dict) else v for k, v in NESTED_TRUTH.items()}
        truth["trends"] = {**truth["trends"], "model.width": {"at": 32, "log": True, "slope": 0.5,
                                                              **({"when": when} if when else {})}}
        c = nested_study({"type": "random", "total_trials": 120, "seed": 1}, [0, 1, 2, 3], truth)
        c["baseline"]["model"] = {"width": 32}
        c["factors"]["model.width"] = {"value_range": [8, 128], "value_type": "int", "log": True}
        return c

    planted = _analyse(cfg({"train.optimizer.name": "sgd"}), 0, 0)
    pair = "train.optimizer x model.width"
    assert planted["factor_interactions"][pair].significant
    assert any(f.kind == "interaction" and f.subject == pair for f in planted["factor_flags"])
    reps = 10
    false = sum(r.significant for rep in range(reps)
                for r in _analyse(cfg(None), rep, 0)["factor_interactions"].values())
    assert false <= 2, false  # 4 pairs x 10 studies under Holm at 0.05
