"""The whole ablation analysis of a study: per group stats, effects, verdicts, flags, cost.

``analyse(records, config, study_path=None)`` is pure (records in, a JSON-ready dict out);
``verdicts_payload(analysis)`` is the machine-readable ``verdicts.json`` the tuning stage
and the tier gate read.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..config import AdaptiveSeeds, StudyConfig
from ..ledger import COMPLETED, FAILED, PENDING, RUNNING, VARIANT, TrialRecord
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
from .records import DEFAULT_GROUP, GroupData, group_records
from .stats import DECIDED, MAX_SEEDS, describe, finite, fnum, sort_seeds

# Share of alpha spent on interim looks when seeds are adaptive (see adaptive.py).
INTERIM_SHARE = 0.15


def sequential_for(config: StudyConfig) -> Sequential | None:
    if isinstance(config.seeds, AdaptiveSeeds):
        return Sequential(config.seeds.initial, config.seeds.max, config.analysis.alpha, INTERIM_SHARE)
    return None


# ---------------------------------------------------------------- groups


def group_meta(config: StudyConfig) -> dict[str, dict]:
    """label -> {tier, sweep_value, order} for every group the plan can produce."""
    from .. import plan as planning

    tiers = [t.name for t in config.tiers.order] if config.tiers is not None else [None]
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
    tiers = [t.name for t in config.tiers.order] if config.tiers is not None else [None]
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
            *, n_bootstrap: int | None = None, contamination: bool = True) -> dict:
    """Analyse the ablation stage of a study's records. Never raises on odd data."""
    records = list(records)
    a = config.analysis
    n_boot = a.n_bootstrap if n_bootstrap is None else n_bootstrap
    primary = config.metrics.primary
    secondaries = list(config.metrics.secondary)
    design = config.design.type
    pairs = [tuple(p) for p in config.design.pairs]
    sequential = sequential_for(config)
    grouped = group_records(records)
    meta = group_meta(config)
    labels = sorted(grouped, key=lambda lb: (meta.get(lb, {}).get("order", 10**6), lb))
    main = main_group(labels, meta, config)
    exp_variants = expected_variants(config)
    all_metrics = _metric_names(records, config)

    groups_out: dict[str, dict] = {}
    flags: list[dict] = []
    for label in labels:
        g = analyse_group(grouped[label], config, n_boot, sequential, exp_variants, all_metrics)
        g.update(meta.get(label, {"tier": None, "sweep_value": None}))
        g.pop("order", None)
        groups_out[label] = g
        flags.extend(g["flags"])

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
    contamination_info: dict = {}
    if contamination:
        c_flags, contamination_info = contamination_flags(records, study_path)
        flags.extend(c_flags)

    ablation = [r for r in records if r.purpose == VARIANT]
    complete = (bool(ablation) and all(r.finished for r in ablation)
                and all(g["n_absent"] == 0 for g in groups_out.values()))
    return {
        "study": config.name,
        "primary": {"name": primary.name, "mode": primary.mode},
        "secondary": [{"name": m.name, "mode": m.mode} for m in secondaries],
        "alpha": a.alpha,
        "min_effect": a.min_effect,
        "n_bootstrap": n_boot,
        "design": design,
        "pairs": [list(p) for p in pairs],
        "adaptive": None if sequential is None else {
            "initial": sequential.initial, "max": sequential.maximum, "interim_share": sequential.interim_share},
        "metrics": all_metrics,
        "groups": groups_out,
        "main_group": main,
        "reference": reference,
        "contamination": contamination_info,
        "flags": flags,
        "reproducibility": {**reproducibility.mode(records), "check": determinism},
        "cost": cost(records),
        "complete": complete,
    }


def analyse_group(group: GroupData, config: StudyConfig, n_boot: int, sequential: Sequential | None,
                  exp_variants: list, all_metrics: list[str]) -> dict:
    a = config.analysis
    primary = config.metrics.primary
    comps = config.components
    pairs = [tuple(p) for p in config.design.pairs]
    design = config.design.type
    label = group.label
    covariates = factors.covariates(config) if config.has_levels else None
    if design == "one_at_a_time":
        components = paired_effects(group, comps, primary.name, primary.mode, a.alpha, a.min_effect, n_boot,
                                    sequential)
        interactions = paired_interactions(group, pairs, primary.name, primary.mode, a.alpha, n_boot)
        check: dict = {}
    else:
        components, interactions, check = regression_effects(
            group, comps, pairs, primary.name, primary.mode, a.alpha, a.min_effect, sequential, covariates)
    if sequential is not None:
        _adaptive_notes(components, set(config.seed_list))
    secondary: dict[str, dict] = {}
    for m in config.metrics.secondary:
        secondary[m.name] = secondary_effects(group, comps, pairs, m.name, m.mode, a.alpha, design, covariates)
        for c, s in secondary[m.name].items():
            components[c].setdefault("secondary", {})[m.name] = s
    flags = effect_flags(label, components, primary.name)
    flags += effect_flags(label, interactions, primary.name, is_interaction=True)
    flags += fit_flags(label, check, primary.name)
    flags += secondary_flags(label, components, secondary, primary.name)
    expected_seeds = list(config.seed_list)
    t_flags, status = trial_flags(label, group, expected_seeds, exp_variants,
                                  [primary.name] + [m.name for m in config.metrics.secondary], primary.name)
    flags = t_flags + flags
    levels = factors.analyse_levels(group, config, a.alpha, a.min_effect, n_boot) if config.has_levels else {}
    alternatives.adjust_for_peeking(levels, sequential, a.alpha, a.min_effect, group)
    flags += levels.pop("factor_flags", [])
    if levels.get("alternatives"):
        flags += alternatives.add_secondary(group, config, levels["alternatives"], a.alpha)
    variants = {}
    for var in group.ordered():
        per_metric = {}
        for m in all_metrics:
            vals = var.values(m)
            seeds = sort_seeds(vals)
            per_metric[m] = describe(vals.values()) | {"seeds": seeds, "values": [vals[s] for s in seeds]}
        variants[var.name] = {
            "removed": list(var.removed),
            "metrics": per_metric,
            "seeds": status.get(var.name, {}),
        }
    states = [r.state for r in group.records()]
    present = set(group.variants)
    n_absent = sum(len(st.get("absent", [])) for st in status.values())
    n_absent += sum(len(expected_seeds) for _, removed in exp_variants if frozenset(removed) not in present)
    return {
        "label": label,
        "variants": variants,
        "components": components,
        "interactions": interactions,
        "fit_check": {k: v for k, v in check.items() if k != "fits"},
        "power": power_summary(components, a.min_effect),
        "flags": flags,
        "complete": all(s in (COMPLETED, FAILED) for s in states),
        "n_decided": sum(1 for r in components.values() if r["verdict"] in DECIDED),
        "n_trials": len(states),
        "n_absent": n_absent,
        **levels,
    }


def power_summary(components: dict[str, dict], min_effect: float) -> dict | None:
    """What the study could detect: the noisiest decided-or-not component's mde and seeds needed.

    ``line`` is set when that mde exceeds min_effect (the report prints it at the top).
    """
    rows = [r for r in components.values() if r.get("estimable") and finite(r.get("mde"))]
    if not rows:
        return None
    worst = max(rows, key=lambda r: r["mde"])
    n = worst.get("n_seeds", worst["n"])
    out = {"mde": worst["mde"], "n": n, "min_effect": min_effect, "seeds_needed": worst.get("seeds_needed"),
           "line": None}
    if worst["mde"] > min_effect:
        line = (f"with {n} seeds this study detects effects >= {worst['mde']:.3g} (80% power); "
                f"min_effect is {min_effect:g}")
        need = worst.get("seeds_needed")
        if min_effect > 0 and need is not None:
            line += (f"; about {need} seeds would resolve it" if need <= MAX_SEEDS
                     else f"; more than {MAX_SEEDS} seeds would be needed to resolve it")
        out["line"] = line
    return out


def _adaptive_notes(components: dict[str, dict], initial: set) -> None:
    """Seeds the baseline has beyond a component's are by design with adaptive seeds: say so plainly."""
    for r in components.values():
        un = r.get("unpaired") or {}
        extra = un.get("only_baseline") or []
        if r.get("estimable") and extra and not un.get("only_other") and not un.get("nonfinite") \
                and not (set(extra) & initial):
            r["note"] = (f"adaptive seeds: decided on {r['n']} paired seeds; the baseline's later seeds "
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


def cost(records: Iterable[TrialRecord]) -> dict:
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
    return {"total": total, "stages": out}


# ---------------------------------------------------------------- verdicts.json


def row_note(r: dict) -> str:
    """The row's note and, when its numbers look decided but it is not (or the reverse), why."""
    return "; ".join(x for x in (r.get("note", ""), r.get("why", "")) if x)


def _component_payload(r: dict) -> dict:
    d = r.get("deciding")
    out = {
        "kind": r.get("kind"),
        "verdict": r["verdict"],
        "deciding": None if d is None else {**d, "p_holm": fnum(d["p_holm"])},
        "significant": bool(r.get("significant")),
        "effect": fnum(r.get("effect")),
        "ci_sim": [fnum(x) for x in r.get("ci_sim", [None, None])],
        "ci_sim_level": fnum(1 - r["ci_sim_alpha"]) if finite(r.get("ci_sim_alpha")) else None,
        "ci": [fnum(x) for x in r.get("ci", [None, None])],
        "ci_method": r.get("ci_method", "t"),
        "ci_bootstrap": [fnum(x) for x in r.get("ci_bootstrap", [None, None])],
        "n": int(r.get("n") or 0),
        "mde": fnum(r.get("mde")),
        "seeds_needed": r.get("seeds_needed"),
        "method": r.get("method"),
        "estimable": bool(r.get("estimable")),
        "note": row_note(r),
    }
    for key in ("p", "p_essential", "p_harmful", "p_negligible"):
        out[key] = fnum(r.get(key))
        out[f"{key}_holm"] = fnum(r.get(f"{key}_holm"))
    if r.get("average_effect"):
        out["average_effect"] = {"effect": fnum(r["average_effect"]["effect"]),
                                 "ci": [fnum(x) for x in r["average_effect"]["ci"]]}
    if r.get("secondary"):
        out["secondary"] = {m: {"effect": fnum(s["effect"]), "ci": [fnum(x) for x in s["ci"]], "p": fnum(s["p"]),
                                "n": s["n"]} for m, s in r["secondary"].items()}
    return out


def verdicts_payload(analysis: dict) -> dict:
    """The machine-readable verdicts (verdicts.json)."""
    groups = {}
    for label, g in analysis["groups"].items():
        groups[label] = {
            "tier": g.get("tier"),
            "sweep_value": g.get("sweep_value"),
            "components": {c: _component_payload(r) for c, r in g["components"].items()},
            "interactions": {k: _component_payload(r) for k, r in g["interactions"].items()},
            "power": g["power"],
            "complete": g["complete"],
            "n_decided": g["n_decided"],
        }
        factors.add_to_payload(groups[label], g, _component_payload)
    main = analysis["main_group"]
    top = (groups.get(main, {"components": {}, "interactions": {}}) if main is not None
           else {"components": {}, "interactions": {}})
    top.setdefault("factors", {})
    return {
        "study": analysis["study"],
        "primary": analysis["primary"],
        "alpha": analysis["alpha"],
        "min_effect": analysis["min_effect"],
        "design": analysis["design"],
        "adaptive": analysis["adaptive"],
        "reproducibility": analysis["reproducibility"],
        "main_group": main,
        "power": top.get("power"),
        "components": top["components"],
        "interactions": top["interactions"],
        "factors": top["factors"],
        "groups": groups,
        "complete": analysis["complete"],
        "flags": [{k: f[k] for k in ("kind", "severity", "group", "subject", "message")} for f in analysis["flags"]],
    }
