"""The whole ablation analysis of a study: per group stats, effects, verdicts, flags, cost.

``analyse(records, config, study_path=None)`` is pure: records in; out the typed ``Analysis`` (model.py):
the settings, and per group the variants' metrics and the typed rows (``Comparison`` per component, pair and
alternative, ``Factor``, ``FactorInteraction``: ``orchestrator.ledger.verdicts_json``), the flags and
the cost. The statistics (effects.py, factors.py) build each row as its model and fill it in steps, the
family's Holm decision last. ``verdicts_payload(analysis)`` is the ``Verdicts`` document (verdicts.json)
the tuning stage, the tier gate and W&B read.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..config import AdaptiveSeeds, StudyConfig
from ..ledger import COMPLETED, FAILED, PENDING, RUNNING, VARIANT, TrialRecord
from ..ledger.verdicts_json import Comparison, FitCheck, Flag, Group, Metric, Power, Verdicts
from ..paths import get_path
from . import alternatives, factors, reproducibility
from .effects import (
    Sequential,
    paired_effects,
    paired_interactions,
    regression_effects,
    secondary_effects,
)
from .flags import (
    contamination_flags,
    effect_flags,
    fit_flags,
    reference_check,
    secondary_flags,
    trial_flags,
)
from .model import AdaptiveLooks, Analysis, Cost, GroupAnalysis, VariantSummary
from .numbers import describe, finite, sort_seeds
from .power import MAX_SEEDS
from .records import DEFAULT_GROUP, GroupData, group_records
from .sequential import DESIGNS
from .stats import DECIDED


def sequential_for(config: StudyConfig, interim: bool = False) -> Sequential | None:
    """The look's adjustment: adaptive seeds always; fixed seeds on an interim look (some ablation trials
    still pending or running), as if the look had been planned among sizes 2 .. the planned seeds."""
    a = config.analysis
    if isinstance(config.seeds, AdaptiveSeeds):
        return Sequential(config.seeds.initial, config.seeds.max, a.alpha, a.min_effect, config.seeds.design)
    if interim:
        return Sequential(2, len(config.seed_list), a.alpha, a.min_effect)
    return None


# ---------------------------------------------------------------- groups


def group_meta(config: StudyConfig) -> dict[str, dict]:
    """label -> {tier, sweep_value, order} for every group the plan can produce."""
    from .. import plan as planning

    tiers = config.tier_names
    meta: dict[str, dict] = {}
    for tier in tiers:
        try:
            groups = planning.groups(config, tier)
        except Exception:  # a plan change must not break the report
            continue
        for label, overrides in groups:
            key = DEFAULT_GROUP if label in (None, "") else label
            sweep_value = overrides.get(config.sweep.path) if config.sweep is not None else None
            meta.setdefault(key, {"tier": tier, "sweep_value": sweep_value, "order": len(meta)})
    return meta


def main_group(labels: list[str], meta: dict[str, dict], config: StudyConfig) -> str | None:
    """The last tier's group; for sweeps the one at the baseline's own sweep value, else the first."""
    if not labels:
        return None
    tiers = config.tier_names
    for tier in reversed(tiers):
        in_tier = [lb for lb in labels if meta.get(lb, {}).get("tier") == tier]
        if not in_tier:
            continue
        if config.sweep is not None:
            own = get_path(config.baseline, config.sweep.path, None)
            for lb in in_tier:
                if meta[lb]["sweep_value"] == own:
                    return lb
        return in_tier[0]
    return labels[0]


def expected_variants(config: StudyConfig) -> list[tuple[str, tuple]]:
    from .. import plan as planning

    try:
        return [(v.name, tuple(v.key)) for v in planning.variants(config)]
    except Exception:
        return []


# ---------------------------------------------------------------- the analysis


def analyse(records: Iterable[TrialRecord], config: StudyConfig, study_path: str | Path | None = None,
            *, n_bootstrap: int | None = None, contamination: bool = True, interim: bool = False) -> Analysis:
    """Analyse the ablation stage of a study's records. Never raises on odd data.

    ``interim``: a look at a study still running: with fixed seeds its p-values carry the peeking
    adjustment (``sequential_for``) while any ablation trial is pending or running."""
    records = list(records)
    a = config.analysis
    n_boot = a.n_bootstrap if n_bootstrap is None else n_bootstrap
    primary = config.metrics.primary
    secondaries = list(config.metrics.secondary)
    design = config.design.type
    pairs = [tuple(p) for p in config.design.pairs]
    sequential = sequential_for(config, interim and any(
        r.state in (PENDING, RUNNING) for r in records if r.purpose == VARIANT))
    grouped = group_records(records)
    meta = group_meta(config)
    labels = sorted(grouped, key=lambda lb: (meta.get(lb, {}).get("order", 10**6), lb))
    main = main_group(labels, meta, config)
    exp_variants = expected_variants(config)
    all_metrics = _metric_names(records, config)

    groups_out: dict[str, GroupAnalysis] = {}
    flags: list[Flag] = []
    for label in labels:
        where = meta.get(label, {})
        g = analyse_group(grouped[label], config, n_boot, sequential, exp_variants, all_metrics,
                          tier=where.get("tier"), sweep_value=where.get("sweep_value"))
        groups_out[label] = g
        flags.extend(g.flags)

    reference = None
    if a.reference_result is not None:
        base_vals = []
        if main is not None and grouped[main].baseline is not None:
            base_vals = list(grouped[main].baseline.values(primary.name).values())
        reference, ref_flags = reference_check(main, base_vals, a.reference_result, primary.mode, a.alpha,
                                               primary.name)
        flags.extend(ref_flags)
    determinism, d_flags = reproducibility.check(records, _history(study_path))
    flags.extend(d_flags)
    contamination_info = None
    if contamination:
        c_flags, contamination_info = contamination_flags(records, study_path)
        flags.extend(c_flags)

    ablation = [r for r in records if r.purpose == VARIANT]
    complete = (bool(ablation) and all(r.finished for r in ablation)
                and all(g.n_absent == 0 for g in groups_out.values()))
    return Analysis(
        study=config.name,
        primary=Metric(name=primary.name, mode=primary.mode),
        secondary=[Metric(name=m.name, mode=m.mode) for m in secondaries],
        alpha=a.alpha,
        min_effect=a.min_effect,
        n_bootstrap=n_boot,
        design=design,
        pairs=[list(p) for p in pairs],
        adaptive=None if sequential is None else looks_of(sequential),
        metrics=all_metrics,
        groups=groups_out,
        main_group=main,
        reference=reference,
        contamination=contamination_info,
        flags=flags,
        reproducibility={**reproducibility.mode(records), "check": determinism},
        cost=cost(records),
        complete=complete,
    )


def looks_of(sequential: Sequential) -> AdaptiveLooks:
    """The design the report names: its looks, each look's boundary and the alpha spent by then (a row
    alone in its family, at the study's alpha)."""
    d, alpha = sequential.design, sequential.alpha
    looks = d.looks()
    name = sequential.name
    return AdaptiveLooks(design=name, initial=sequential.initial, max=sequential.maximum,
                         final_weight=d.final_weight, futility=DESIGNS[name].futility if name else None,
                         looks=looks, boundary=[sequential.adjust_level(n) for n in looks],
                         spent=[2 * d.alpha_spent(looks[:i + 1], alpha / 2) for i in range(len(looks))])


def design_effects(group: GroupData, config: StudyConfig, n_boot: int, sequential: Sequential | None,
                   interactions: bool = True) -> tuple[dict[str, Comparison], dict[str, Comparison], FitCheck | None]:
    """The components' effects on the primary metric by the design's method: (components, pair interactions,
    fit check). one_at_a_time pairs each variant with the baseline on seeds (its interactions only when asked);
    random/full_factorial fit one regression over the group."""
    a, primary = config.analysis, config.metrics.primary
    pairs = [tuple(p) for p in config.design.pairs]
    if config.design.type == "one_at_a_time":
        comps = paired_effects(group, config.components, primary.name, primary.mode, a.alpha, a.min_effect, n_boot,
                               sequential)
        inter = paired_interactions(group, pairs, primary.name, primary.mode, a.alpha, n_boot,
                                    sequential) if interactions else {}
        return comps, inter, None
    return regression_effects(group, config.components, pairs, primary.name, primary.mode, a.alpha, a.min_effect,
                              sequential, factors.covariates(config) if config.has_levels else None)


def analyse_group(group: GroupData, config: StudyConfig, n_boot: int, sequential: Sequential | None,
                  exp_variants: list, all_metrics: list[str], tier: str | None = None,
                  sweep_value: Any = None) -> GroupAnalysis:
    a = config.analysis
    primary = config.metrics.primary
    comps = config.components
    pairs = [tuple(p) for p in config.design.pairs]
    design = config.design.type
    label = group.label
    covariates = factors.covariates(config) if config.has_levels else None
    components, interactions, check = design_effects(group, config, n_boot, sequential)
    if isinstance(config.seeds, AdaptiveSeeds):
        _adaptive_notes(components, set(config.seed_list))
    for m in config.metrics.secondary:
        for c, s in secondary_effects(group, comps, pairs, m.name, m.mode, a.alpha, design, covariates).items():
            components[c].secondary[m.name] = s
    flags = effect_flags(label, components, primary.name)
    flags += effect_flags(label, interactions, primary.name, is_interaction=True)
    flags += fit_flags(label, check, primary.name)
    flags += secondary_flags(label, components, primary.name)
    expected_seeds = list(config.seed_list)
    t_flags, status = trial_flags(label, group, expected_seeds, exp_variants,
                                  [primary.name] + [m.name for m in config.metrics.secondary], primary.name)
    flags = t_flags + flags
    levels = factors.analyse_levels(group, config, a.alpha, a.min_effect, n_boot) if config.has_levels else {}
    alternatives.adjust_for_peeking(levels, sequential, config, group)
    flags += levels.pop("factor_flags", [])
    if levels.get("alternatives"):
        flags += alternatives.add_secondary(group, config, levels["alternatives"], a.alpha)
    for c, by_alt in levels.get("alternatives", {}).items():
        components[c].alternatives = by_alt
    variants = {}
    for var in group.ordered():
        per_metric = {}
        for m in all_metrics:
            vals = var.values(m)
            seeds = sort_seeds(vals)
            per_metric[m] = describe(vals.values()) | {"seeds": seeds, "values": [vals[s] for s in seeds]}
        variants[var.name] = VariantSummary(removed=list(var.removed), metrics=per_metric,
                                            seeds=status.get(var.name, {}))
    states = [r.state for r in group.records()]
    present = set(group.variants)
    n_absent = sum(len(st.get("absent", [])) for st in status.values())
    n_absent += sum(len(expected_seeds) for _, removed in exp_variants if frozenset(removed) not in present)
    return GroupAnalysis(
        label=label,
        tier=tier,
        sweep_value=sweep_value,
        variants=variants,
        components=components,
        interactions=interactions,
        fit_check=check,
        power=power_summary(components, a.min_effect),
        flags=flags,
        complete=all(s in (COMPLETED, FAILED) for s in states),
        n_decided=sum(1 for r in components.values() if r.verdict in DECIDED),
        n_trials=len(states),
        n_absent=n_absent,
        **levels,
    )


def power_summary(components: dict[str, Comparison], min_effect: float) -> Power | None:
    """What the study could detect: the noisiest decided-or-not component's mde and seeds needed.

    ``line`` is set when that mde exceeds min_effect (the report prints it at the top).
    """
    rows = [r for r in components.values() if r.estimable and finite(r.mde)]
    if not rows:
        return None
    worst = max(rows, key=lambda r: r.mde)
    n = worst.n if worst.n_seeds is None else worst.n_seeds
    line = None
    if worst.mde > min_effect:
        line = (f"with {n} seeds this study detects effects >= {worst.mde:.3g} (80% power); "
                f"min_effect is {min_effect:g}")
        need = worst.seeds_needed
        if min_effect > 0 and need is not None:
            line += (f"; about {need} seeds would resolve it" if need <= MAX_SEEDS
                     else f"; more than {MAX_SEEDS} seeds would be needed to resolve it")
    return Power(mde=worst.mde, n=n, min_effect=min_effect, seeds_needed=worst.seeds_needed, line=line)


def _adaptive_notes(components: dict[str, Comparison], initial: set) -> None:
    """Seeds the baseline has beyond a component's are by design with adaptive seeds: say so plainly."""
    for r in components.values():
        un = r.unpaired
        extra = un.get("only_baseline") or []
        if r.estimable and extra and not un.get("only_other") and not un.get("nonfinite") \
                and not (set(extra) & initial):
            r.note = (f"adaptive seeds: decided on {r.n} paired seeds; the baseline's later seeds "
                      f"({', '.join(map(str, extra))}) went to components still undecided")


def _metric_names(records: list[TrialRecord], config: StudyConfig) -> list[str]:
    """Primary, secondaries, metric-group members, then any other metric found in the finals."""
    names = [config.metrics.primary.name] + [m.name for m in config.metrics.secondary]
    for members in config.metrics.groups.values():
        names += list(members)
    seen = set()
    for r in records:
        if r.purpose == VARIANT:
            for k in (r.final or {}):
                if k not in seen:
                    seen.add(k)
    out = []
    for n in names + sorted(seen):
        if n not in out:
            out.append(n)
    return out


def _history(study_path):
    """trial_id -> its per-step metrics (empty without a study directory)."""
    if study_path is None:
        return lambda trial_id: []
    from ..ledger import Study

    return Study(study_path).history


# ---------------------------------------------------------------- cost


def cost(records: Iterable[TrialRecord]) -> Cost:
    """Trial-hours, failures, restarts and hours saved by inference-only reuse, per stage and total."""
    out: dict[str, Any] = {}
    total = {"trials": 0, "trial_hours": 0.0, "failed": 0, "restarts": 0, "saved_hours": 0.0, "pending": 0}
    for r in records:
        stage = r.stage
        s = out.setdefault(stage, dict.fromkeys(total, 0) | {"trial_hours": 0.0, "saved_hours": 0.0})
        for acc in (s, total):
            acc["trials"] += 1
            acc["trial_hours"] += r.duration_s / 3600
            acc["failed"] += r.state == FAILED
            acc["restarts"] += max(r.attempts - 1, 0)
            acc["saved_hours"] += r.saved_s / 3600
            acc["pending"] += r.state in (PENDING, RUNNING)
    return Cost.model_validate({"total": total, "stages": out})


# ---------------------------------------------------------------- verdicts.json


def verdicts_payload(analysis: Analysis) -> Verdicts:
    """The verdicts document (verdicts.json): every group's rows, the main group's at the top, the flags."""
    groups = {label: Group(tier=g.tier, sweep_value=g.sweep_value, components=g.components,
                           interactions=g.interactions, factors=g.factors, factor_interactions=g.factor_interactions,
                           fit_check=g.fit_check, power=g.power, complete=g.complete, n_decided=g.n_decided)
              for label, g in analysis.groups.items()}
    top = groups.get(analysis.main_group) or Group()
    return Verdicts(
        study=analysis.study, primary=analysis.primary, alpha=analysis.alpha, min_effect=analysis.min_effect,
        design=analysis.design, adaptive=None if analysis.adaptive is None else analysis.adaptive.model_dump(),
        reproducibility=analysis.reproducibility,
        main_group=analysis.main_group, power=top.power, components=top.components, interactions=top.interactions,
        factors=top.factors, groups=groups, complete=analysis.complete, flags=analysis.flags)
