"""The analysis of a study as one typed model: what ``analyse()`` returns and everything renders from.

``Analysis`` holds the settings, per group (``GroupAnalysis``) the variants' metrics and seed status and
the typed rows (``Comparison``, ``Factor``, ``FactorInteraction`` of ``orchestrator.ledger.verdicts_json``),
the flags and the cost. The report, results.csv, the plots and verdicts.json (``verdicts_payload``) read
its attributes; verdicts.json and W&B hold the ``Verdicts`` document made from it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from ..ledger.verdicts_json import Comparison, Factor, FactorInteraction, FitCheck, Flag, Metric, Num, Power, Seed


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricStats(_Model):
    """One variant's metric over its seeds: n, mean, std (ddof 1), sem, min, max, and each seed's value."""

    n: int
    mean: Num
    std: Num
    sem: Num
    min: Num
    max: Num
    seeds: list[Seed] = []
    values: list[Num] = []


class ReferenceCheck(_Model):
    """Where one published run (``reference_result``) sits in the retrained baseline's seed spread: the
    numbers past ``n`` from 2 seeds on (the prediction interval at 1 - alpha)."""

    reference: float
    n: int
    mean: Num = None
    std: Num = None
    prediction_interval: list[Num] | None = None
    tail_quantile: Num = None
    z: Num = None
    fraction_at_least_as_good: Num = None


class AdaptiveLooks(_Model):
    """Sequential seeds (adaptive, or an interim look): the design (analysis/sequential.py). A look after
    every seed ``looks`` (the first look..``max``; ``initial`` seeds run before any); at each, ``boundary``
    is the two-sided nominal p a row alone in its family must reach (the final look's is ``final_weight``
    times an interim one's) and ``spent`` the alpha spent by then (Holm divides both among a family's
    undecided rows). ``design``: adaptive seeds' named design (``lean``, ``thorough``) and ``futility`` its
    predictive-power threshold; both None for an interim look at fixed seeds."""

    design: str | None = None
    initial: int
    max: int
    final_weight: float
    futility: float | None = None
    looks: list[int]
    boundary: list[float]
    spent: list[float]


class ContaminationCheck(_Model):
    """The train/eval overlap check over the trials' data fingerprints: (train, eval) pairs checked, pairs
    that could not be checked, and trials with an overlap (each one is an error flag)."""

    checked_pairs: int = 0
    unchecked_pairs: int = 0
    contaminated_trials: int = 0


class SeedStatus(_Model):
    """A variant's seeds by what became of them (the expected ones the plan asked for)."""

    expected: list[Seed] = []
    completed: list[Seed] = []
    failed: list[Seed] = []
    pending: list[Seed] = []
    nonfinite: list[Seed] = []
    absent: list[Seed] = []
    no_metric: list[Seed] = []


class VariantSummary(_Model):
    """A variant of a group: its removed components, each metric's stats and its seeds' status."""

    removed: list[str]
    metrics: dict[str, MetricStats]
    seeds: SeedStatus = SeedStatus()


class StageCost(_Model):
    """Trials, trial-hours, failures, restarts and hours saved by inference-only reuse (and trials pending)."""

    trials: int = 0
    trial_hours: float = 0.0
    failed: int = 0
    restarts: int = 0
    saved_hours: float = 0.0
    pending: int = 0


class Cost(_Model):
    total: StageCost
    stages: dict[str, StageCost] = {}


class GroupAnalysis(_Model):
    """One group's analysis (a tier, a sweep value, or the whole study)."""

    label: str
    tier: str | None = None
    sweep_value: Any = None
    variants: dict[str, VariantSummary]
    components: dict[str, Comparison]
    interactions: dict[str, Comparison]
    alternatives: dict[str, dict[str, Comparison]] = {}
    factors: dict[str, Factor] = {}
    factor_interactions: dict[str, FactorInteraction] = {}
    fit_check: FitCheck | None = None
    power: Power | None = None
    flags: list[Flag] = []
    complete: bool
    n_decided: int
    n_trials: int
    n_absent: int


class Analysis(_Model):
    """A study's ablation analysis: settings, groups, flags (one list: the report's and verdicts.json's), cost."""

    study: str
    primary: Metric
    secondary: list[Metric]
    alpha: float
    min_effect: float
    n_bootstrap: int
    design: str
    pairs: list[list[str]]
    adaptive: AdaptiveLooks | None
    metrics: list[str]
    groups: dict[str, GroupAnalysis]
    main_group: str | None
    reference: ReferenceCheck | None
    #: None when the check was not asked for (``analyse(..., contamination=False)``)
    contamination: ContaminationCheck | None
    flags: list[Flag]
    reproducibility: dict[str, Any]
    cost: Cost
    complete: bool
