"""Adaptive seeds: which components still need more seeds (``seeds: {initial, max}``).

The study session runs ``initial`` seeds for every variant, then repeatedly asks
``next_seed(records, config)`` for the next seed and the variants to run it on (the
baseline and the variants that remove an undecided component), until nothing is
undecided or ``max`` seeds are reached.

The rule, per component and group, on the seeds paired so far (n of them):

* **decided** - the verdict is ``essential``, ``harmful`` or ``negligible`` (stats.py), on the
  row's repeated p-values (sequential.py): each one-sided test is compared at every look with a
  boundary calibrated for the correlated looks, so the probability that a row is *ever* wrongly
  decided is at most its alpha whatever rule decides when to stop adding seeds, and Holm across
  the family on these (alpha recycled from rejected rows) keeps the family-wise error rate. A
  decided row stays decided (the running minimum over its looks). The final report applies the
  same design, so the verdict a study ends with is the one this rule controlled.
* **at max** - n >= max: no more seeds may be added.
* **futile** - the Bayesian predictive probability (flat prior, t predictive) that any
  decision (essential, harmful or negligible) would be reached at n = max is below the
  named design's futility (sequential.DESIGNS: 0.35 ``lean``, 0.2 ``thorough``); the bars are
  lenient (the final look's boundary without Holm's division). Futility is judged from
  ``initial`` seeds on, before the first look. Stopping for futility never creates a wrong
  decision; it can only cost power, which benchmarks/sequential.py measures (rows decided against
  fixed seeds). The verdict stays ``inconclusive`` and the report says how many seeds would decide it.
* otherwise **undecided**, or fewer than two seeds are paired.

The price of peeking is a stricter final look (benchmarks/sequential.py measures both sides);
the saving is every seed not run for rows decided early.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..config import AdaptiveSeeds, StudyConfig
from ..ledger import Study, TrialRecord
from ..ledger.verdicts_json import Comparison
from . import alternatives, factors
from .numbers import finite, t_quantile, t_sf
from .records import group_records
from .sequential import DEFAULT, DESIGNS
from .stats import DECIDED
from .study_analysis import design_effects, sequential_for

UNDECIDED, FUTILE, AT_MAX = "undecided", "futile", "at max"


def futility_of(config: StudyConfig) -> float:
    """The predictive power below which a row gets no more seeds: the named design's (sequential.DESIGNS)."""
    return DESIGNS[config.seeds.design if isinstance(config.seeds, AdaptiveSeeds) else DEFAULT].futility


def predictive_power(r: Comparison, n: int, maximum: int, alpha: float, min_effect: float, sequential) -> float:
    """Bayesian predictive probability (flat prior) that a decision is reached at n = max.

    The bars are lenient on purpose (the final look's boundary without Holm's division):
    the rule may stop a hopeless component, never one with a real chance.
    """
    d, sd = r.effect, r.std
    if r.method != "paired" or not (finite(d) and finite(sd)) or n < 2 or n >= maximum or sd <= 0:
        return float("nan")
    final_alpha = alpha if sequential is None else sequential.adjust_level(maximum)
    return float(predictive_power_of(d, sd, n, maximum, final_alpha, min_effect))


def predictive_power_of(d, sd, n, maximum: int, final_alpha: float, min_effect: float) -> np.ndarray:
    """``predictive_power`` on arrays: mean difference d, its spread sd at n paired seeds (n < max, sd > 0)."""
    d, sd, n = (np.asarray(x, dtype=float) for x in (d, sd, n))
    se_max = sd / math.sqrt(maximum)
    bar = min_effect + t_quantile(1 - final_alpha / 2, maximum - 1) * se_max
    spread = sd * np.sqrt((maximum - n) / (maximum * n))
    prob = t_sf((bar - d) / spread, n - 1) + t_sf((bar + d) / spread, n - 1)  # beyond +bar or -bar
    inner = min_effect - t_quantile(1 - final_alpha, maximum - 1) * se_max
    if min_effect > 0:
        prob = prob + np.where(inner > 0, t_sf((d - inner) / spread, n - 1)
                               - t_sf((d + inner) / spread, n - 1), 0.0)
    return prob


def _load(study_path_or_records, config: StudyConfig | None) -> tuple[list[TrialRecord], StudyConfig]:
    if isinstance(study_path_or_records, (str, Path)):
        from .report import load_study_config

        study = Study(study_path_or_records)
        if config is None:
            config = load_study_config(study)
        return study.records(), config
    if config is None:
        raise ValueError("undecided(records, config): give the config with a list of records")
    return list(study_path_or_records), config


def decisions(study_path_or_records: str | Path | Iterable[TrialRecord], config: StudyConfig | None = None
              ) -> dict[str, dict[str, dict]]:
    """{group: {component: {state, verdict, n, effect, ci, predictive_power}}} under the adaptive rule.

    state is one of essential / harmful / negligible / futile / at max / undecided.
    Decisions use t intervals only (no bootstrap), as the verdicts do.
    """
    records, config = _load(study_path_or_records, config)
    a = config.analysis
    maximum = config.seeds.max if isinstance(config.seeds, AdaptiveSeeds) else len(config.seed_list)
    sequential = sequential_for(config)
    futility = futility_of(config)
    out: dict[str, dict[str, dict]] = {}
    for label, group in group_records(records).items():
        res, _, _ = design_effects(group, config, 0, sequential, interactions=False)
        states = {}
        for c, r in res.items():
            n = _seeds_of(r, group, c)
            lo, hi = r.ci
            pp = predictive_power(r, n, maximum, a.alpha, a.min_effect, sequential)
            if r.verdict in DECIDED:
                state = r.verdict
            elif n >= maximum:
                state = AT_MAX
            elif finite(pp) and pp < futility:
                state = FUTILE
            else:
                state = UNDECIDED
            states[c] = {"state": state, "verdict": r.verdict, "n": n, "effect": r.effect, "ci": [lo, hi],
                         "predictive_power": pp}
        if config.has_levels:
            states |= _level_states(group, config, sequential, maximum)
        out[label] = states
    return out


def _level_states(group, config: StudyConfig, sequential, maximum: int) -> dict[str, dict]:
    """Alternatives ("c=a": the components' rule) and factors (path: decided once significant or negligible,
    Holm, under the same sequential design)."""
    a = config.analysis
    futility = futility_of(config)
    levels = factors.analyse_levels(group, config, a.alpha, a.min_effect, 0)
    alternatives.adjust_for_peeking(levels, sequential, config, group)
    states = {}
    for c, by_alt in levels["alternatives"].items():
        for alt, r in by_alt.items():
            key = f"{c}={alt}"
            n = r.n if r.method == "paired" else alternatives.seeds_of(group, alternative=key)
            pp = predictive_power(r, n, maximum, a.alpha, a.min_effect, sequential)
            state = (r.verdict if r.verdict in DECIDED else AT_MAX if n >= maximum
                     else FUTILE if finite(pp) and pp < futility else UNDECIDED)
            states[key] = {"state": state, "verdict": r.verdict, "n": n, "effect": r.effect,
                           "ci": list(r.ci), "predictive_power": pp}
    for path, r in levels["factors"].items():
        n = alternatives.seeds_of(group, factor=path)
        state = ("significant" if r.significant else "negligible" if r.negligible else AT_MAX if n >= maximum
                 else UNDECIDED)
        states[path] = {"state": state, "verdict": state, "n": n, "effect": r.effect, "ci": list(r.ci),
                        "predictive_power": float("nan")}
    return states


def look(records: Iterable[TrialRecord], config: StudyConfig, tier: str | None = None) -> dict:
    """This look, as the ledger's log of looks keeps it (ledger/looks.py): the baseline's seeds ``n``, the
    design, and per group and row its seeds, state, boundary (two-sided nominal p at its seeds, for a row
    alone in its family) and the alpha spent by then."""
    from ..plan import BASELINE

    records = list(records)
    sequential = sequential_for(config)
    d, alpha = sequential.design, sequential.alpha
    rows = {}
    for label, states in decisions(records, config).items():
        rows[label] = {c: {"n": s["n"], "state": s["state"],
                           "boundary": round(sequential.adjust_level(s["n"]), 8),
                           "spent": round(2 * d.alpha_spent(range(d.first, s["n"] + 1), alpha / 2), 8)}
                       for c, s in states.items()}
    n = len({r.seed for r in records if r.variant == BASELINE})
    return {"tier": tier, "n": n, "design": design_of(config), "rows": rows}


def design_of(config: StudyConfig) -> dict:
    """The sequential design as the log of looks records it: the named design, initial, first_look, max,
    final_weight, futility, alpha (a resumed study whose design differs is warned)."""
    s = sequential_for(config)
    return {"design": s.name, "initial": s.initial, "first_look": s.design.first, "max": s.design.maximum,
            "final_weight": s.design.final_weight, "futility": futility_of(config), "alpha": s.alpha}


def _seeds_of(r: Comparison, group, c: str) -> int:
    """Paired seeds (one-at-a-time) or distinct seeds with c removed (regression designs)."""
    if r.method == "regression":
        seeds = set()
        for var in group.variants.values():
            if c in var.removed:
                seeds |= set(var.by_seed)
        return len(seeds)
    return r.n


def undecided(study_path_or_records: str | Path | Iterable[TrialRecord],
              config: StudyConfig | None = None) -> list[str]:
    """Components, alternatives ("c=a") and factors still undecided in any group (config order): add seeds
    to these and the baseline."""
    records, config = _load(study_path_or_records, config)
    states = decisions(records, config)
    open_ = {c for g in states.values() for c, s in g.items() if s["state"] == UNDECIDED}
    subjects = list(config.components) + [f"{c}={a}" for c, comp in config.components.items()
                                          for a in comp.alternatives] + list(config.factors)
    return [c for c in subjects if c in open_]


def takes_seed(variant, open_subjects: Iterable[str]) -> bool:
    """Whether a plan variant gets the next adaptive seed: it touches an undecided subject (``undecided``)."""
    open_ = set(open_subjects)
    return bool(set(variant.removed) & open_ or {f"{c}={a}" for c, a in variant.alternatives} & open_
                or {p for p, _ in variant.levels} & open_)


def next_seed(records: Iterable[TrialRecord], config: StudyConfig) -> tuple[int, list[str]] | None:
    """The study session's next adaptive step: (seed to add, components still undecided), or None to stop.

    ``records`` are the ablation records of the tier being run. The seed goes to the baseline
    and to every variant that removes one of the undecided components, uses an undecided
    alternative or moves an undecided factor (``takes_seed``).
    """
    from ..plan import BASELINE

    records = list(records)
    have = sorted({r.seed for r in records if r.variant == BASELINE})
    if not have or len(have) >= config.seeds.max:
        return None
    open_components = undecided(records, config)
    return (max(have) + 1, open_components) if open_components else None
