"""Adaptive seeds: which components still need more seeds (``seeds: {initial, max}``).

The study session runs ``initial`` seeds for every variant, then repeatedly asks
``undecided(records, config)`` and adds one seed to the baseline and to the variants that
remove an undecided component, until nothing is undecided or ``max`` seeds are reached.

The rule, per component and group, on the seeds paired so far (n of them):

* **decided: effect** - the verdict is ``essential`` or ``harmful``. The p-value behind
  it is made valid under optional stopping (``stats.sequential_p``): before any data,
  alpha is split over every sample size a component could stop at - ``INTERIM_SHARE *
  alpha`` spread evenly over n = initial .. max-1, the rest at n = max - and a look at n
  compares p with its own slice. By the union bound the probability that a null
  component is *ever* declared an effect is at most alpha, whatever the stopping rule
  (including stops caused by other components), so Holm across components on these
  p-values still controls the family-wise error rate at alpha. The final report applies
  the same adjustment, so the verdict a study ends with is the one this rule controlled.
* **decided: at max** - n >= max: no more seeds may be added.
* **decided: negligible** - ``min_effect > 0`` and the whole (1 - alpha) t CI lies
  inside (-min_effect, +min_effect): no practically relevant effect either way.
* **decided: futile** - the Bayesian predictive probability (flat prior, t predictive)
  that the effect would clear the verdict bar at n = max is below ``FUTILITY`` (0.2).
  The bar is deliberately lenient (the final look's alpha slice without Holm's division,
  and min_effect), so only hopeless components stop.
  Stopping for negligibility or futility never creates a false positive (it only gives up
  chances to reject); it can only cost power, which benchmarks/verdicts.py measures.
* otherwise **undecided**: the CI straddles a decision threshold (0 or +-min_effect) and
  the effect could still clear it, or fewer than two seeds are paired.

Tuned on simulated studies (benchmarks/verdicts.py; INTERIM_SHARE 0.15, FUTILITY 0.2;
3 null and 3 real components, min_effect 0.5, 200 studies per setting): where 10 fixed
seeds find the real effects (trial noise 0.25 / 0.5), adaptive 3..10 finds them as often
(true-positive rate 1.000 vs 1.000, 0.965 vs 0.973) with 49% / 29% fewer trials; where
10 seeds are already too few (noise 0.75 / 1.0) it saves 25% but loses 2-5 points of
true-positive rate. The family-wise false-positive rate stays below alpha throughout.

The price of peeking is a slightly stricter final look (alpha * (1 - INTERIM_SHARE) at
n = max); the saving is every seed not run for components decided early.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from scipy import stats as st

from ..config import AdaptiveSeeds, StudyConfig
from .effects import paired_effects, regression_effects
from .records import group_records
from .stats import NO_EVIDENCE, finite, t_quantile
from .verdicts import INTERIM_SHARE, sequential_for  # noqa: F401  (INTERIM_SHARE re-exported)

UNDECIDED, NEGLIGIBLE, FUTILE, AT_MAX = "undecided", "negligible", "futile", "at max"
FUTILITY = 0.20


def predictive_power(r: dict, n: int, maximum: int, alpha: float, min_effect: float, sequential) -> float:
    """Bayesian predictive probability (flat prior) that the effect clears the verdict bar at n = max.

    The bar is lenient on purpose (the final look's alpha slice without Holm's division,
    and min_effect): the rule may stop a hopeless component, never one with a real chance.
    Stopping for futility never adds a false positive; it can only cost power.
    """
    d, sd = r.get("effect"), r.get("std")
    if r.get("method") != "paired" or not (finite(d) and finite(sd)) or n < 2 or n >= maximum or sd <= 0:
        return float("nan")
    final_alpha = alpha if sequential is None else sequential.adjust_level(maximum)
    bar = max(min_effect, t_quantile(1 - final_alpha / 2, maximum - 1) * sd / math.sqrt(maximum))
    spread = sd * math.sqrt((maximum - n) / (maximum * n))
    up = float(st.t.sf((bar - d) / spread, n - 1))
    down = float(st.t.cdf((-bar - d) / spread, n - 1))
    return up + down


def _load(study_path_or_records, config: StudyConfig | None) -> tuple[list[dict], StudyConfig]:
    if isinstance(study_path_or_records, (str, Path)):
        from ..ledger import Study
        from .report import load_study_config

        study = Study(study_path_or_records)
        if config is None:
            config, _ = load_study_config(study)
        return study.records(), config
    if config is None:
        raise ValueError("undecided(records, config): give the config with a list of records")
    return list(study_path_or_records), config


def decisions(study_path_or_records: str | Path | Iterable[dict], config: StudyConfig | None = None
              ) -> dict[str, dict[str, dict]]:
    """{group: {component: {state, verdict, n, effect, ci, predictive_power}}} under the adaptive rule.

    state is one of essential / harmful / negligible / futile / at max / undecided.
    """
    records, config = _load(study_path_or_records, config)
    a = config.analysis
    primary = config.metrics.primary
    maximum = config.seeds.max if isinstance(config.seeds, AdaptiveSeeds) else len(config.seed_list)
    sequential = sequential_for(config)
    out: dict[str, dict[str, dict]] = {}
    for label, group in group_records(records).items():
        if config.design.type == "one_at_a_time":
            res = paired_effects(group, config.components, primary.name, primary.mode, a.alpha, a.min_effect,
                                 a.n_bootstrap, sequential)
        else:
            res, _ = regression_effects(group, config.components, config.design.pairs, primary.name,
                                        primary.mode, a.alpha, a.min_effect, sequential)
        states = {}
        for c, r in res.items():
            n = _seeds_of(r, group, c)
            lo, hi = r["ci_t"]
            pp = predictive_power(r, n, maximum, a.alpha, a.min_effect, sequential)
            if r["verdict"] != NO_EVIDENCE:
                state = r["verdict"]
            elif n >= maximum:
                state = AT_MAX
            elif a.min_effect > 0 and finite(lo) and finite(hi) and -a.min_effect < lo and hi < a.min_effect:
                state = NEGLIGIBLE
            elif finite(pp) and pp < FUTILITY:
                state = FUTILE
            else:
                state = UNDECIDED
            states[c] = {"state": state, "verdict": r["verdict"], "n": n, "effect": r["effect"], "ci": [lo, hi],
                         "predictive_power": pp}
        out[label] = states
    return out


def _seeds_of(r: dict, group, c: str) -> int:
    """Paired seeds (one-at-a-time) or distinct seeds with c removed (regression designs)."""
    if r.get("method") == "regression":
        seeds = set()
        for var in group.variants.values():
            if c in var.removed:
                seeds |= set(var.by_seed)
        return len(seeds)
    return int(r.get("n") or 0)


def undecided(study_path_or_records: str | Path | Iterable[dict], config: StudyConfig | None = None) -> list[str]:
    """Components still undecided in any group (config order): add seeds to these and the baseline."""
    records, config = _load(study_path_or_records, config)
    states = decisions(records, config)
    open_ = {c for g in states.values() for c, s in g.items() if s["state"] == UNDECIDED}
    return [c for c in config.components if c in open_]
