"""Seeds where they decide sooner: an adaptive step's trials start in order of expected decisions per
trial-hour (predictive probability of a decision at max, over the measured trial time). No Ray: the records
come from the simulated trainable's formula, the order from the session's own rule."""

from __future__ import annotations

import math

from orchestrator import plan as planning
from orchestrator.analysis.adaptive import UNDECIDED, decisions
from orchestrator.analysis.seed_order import by_worth
from orchestrator.config import parse_config
from tests.support.simulated import records_for, simulated_config


def _study(slow: str | None = None):
    cfgd = simulated_config({"a": 0.0, "b": 0.3, "c": 0.9}, 0.5, 3)
    cfgd["seeds"] = {"initial": 3, "max": 10}
    config = parse_config(cfgd)
    records = records_for(config, [0, 1, 2])
    for r in records:
        if r.variant == slow:
            r.duration_s *= 20  # a variant that trains 20x longer
    return config, records


def _order(config, records):
    specs = planning.ablation_trials(config, seeds=[3])
    return [s.variant for s in by_worth(specs, records, config)]


def test_trials_start_in_order_of_expected_decisions_per_trial_hour():
    config, records = _study()
    states = decisions(records, config)["default"]
    open_ = {c: s["predictive_power"] for c, s in states.items() if s["state"] == UNDECIDED}
    assert len(open_) >= 2 and all(math.isfinite(p) for p in open_.values())
    order = _order(config, records)
    # equal trial times: the baseline (every undecided row) first, then the rows by predictive power,
    # then what informs no undecided row (worth 0) in the plan's order
    ranked = sorted(open_, key=lambda c: -open_[c])
    assert order[0] == planning.BASELINE
    assert [v for v in order if v.removeprefix("no-") in open_] == [f"no-{c}" for c in ranked]
    best = f"no-{ranked[0]}"
    slow_config, slow_records = _study(slow=best)
    # the most promising row's variant, 20x slower to train, yields its slot to the next one
    slowed = _order(slow_config, slow_records)
    assert slowed.index(best) > slowed.index(f"no-{ranked[1]}")
