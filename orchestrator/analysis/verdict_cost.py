"""What each verdict cost: the ablation stage's trial-hours shared among its rows, per decided row, against
fixed seeds at ``max``, and what the budget left undecided (with what each such row would need).

The sharing rule (``RULE``): a variant's trial is shared equally among the rows it informs (the components
it removes, the alternatives it uses, the factors it moves); the baseline's trial at a seed equally among
every row with a trial at that seed in its group (every row of the group when none has). The determinism
repeat stays in the total only. Hours per decided row = the ablation stage's hours / decided rows.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from ..config import AdaptiveSeeds, Budget, StudyConfig
from ..config.budget import spent, trial_cost, unit
from ..ledger import ABLATION, VARIANT, TrialRecord
from ..ledger.cost_json import BudgetState, RowCost, VerdictCost
from ..ledger.verdicts_json import Verdicts
from .records import group_label
from .stats import DECIDED

RULE = ("a variant's trial is shared equally among the rows it informs (components removed, alternatives used, "
        "factors moved); the baseline's trial at a seed among every row with a trial at that seed (all rows when "
        "none has); hours per decided row = the ablation stage's hours / decided rows")


def _subjects(record: TrialRecord) -> list[str]:
    return [*record.removed, *(f"{c}={a}" for c, a in record.alternatives.items()), *record.levels]


def _verdicts(verdicts: Verdicts) -> dict[tuple[str, str], tuple[str, object]]:
    """(group, row) -> (verdict, its Comparison or Factor), every row kind."""
    out = {}
    for label, g in verdicts.groups.items():
        for c, r in g.components.items():
            out[label, c] = (r.verdict, r)
            for a, alt in r.alternatives.items():
                out[label, f"{c}={a}"] = (alt.verdict, alt)
        for path, f in g.factors.items():
            out[label, path] = ("significant" if f.significant else "inconclusive", f)
    return out


def verdict_cost(verdicts: Verdicts, records: Iterable[TrialRecord], config: StudyConfig,
                 info: dict | None = None) -> VerdictCost:
    """The cost per verdict; `info` is study.json (the budget `resume --budget` set, a budget stop)."""
    res = config.resources
    records = list(records)
    ablation = [r for r in records if r.stage == ABLATION]
    share: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])  # (group, row) -> trials, hours
    at_seed: dict[tuple[str, object], set[str]] = defaultdict(set)
    by_variant: dict[tuple[str, str], list[float]] = defaultdict(list)  # (group, variant) -> hours of its trials
    for r in ablation:
        if r.purpose == VARIANT and r.finished:
            by_variant[group_label(r), r.variant or ""].append(trial_cost(r, res))
        if r.purpose == VARIANT and r.finished and _subjects(r):
            at_seed[group_label(r), r.seed].update(_subjects(r))
    looked = _verdicts(verdicts)
    in_group: dict[str, list[str]] = defaultdict(list)
    for label, row in looked:
        in_group[label].append(row)
    for r in ablation:
        if r.purpose != VARIANT:
            continue
        label = group_label(r)
        rows = _subjects(r) or sorted(at_seed.get((label, r.seed), ())) or in_group.get(label, [])
        for row in rows:
            acc = share[label, row]
            acc[0] += r.finished / len(rows)
            acc[1] += trial_cost(r, res) / len(rows)
    maximum = config.seeds.max if isinstance(config.seeds, AdaptiveSeeds) else len(config.seed_list)
    budget = _budget(records, config, info or {})
    rows = []
    for (label, row), (verdict, r) in looked.items():
        trials, hours = share.get((label, row), (0.0, 0.0))
        decided = verdict in DECIDED or verdict == "significant"
        n = int(getattr(r, "n", 0) or 0)
        needed = getattr(r, "seeds_needed", None)
        more = more_hours = None
        if not decided and needed is not None and needed > n:
            more = needed - n
            per_seed = [_mean(by_variant.get((label, v))) for v in _variants_of(label, row, by_variant)]
            more_hours = more * sum(x for x in per_seed if x is not None) if per_seed else None
        rows.append(RowCost(group=label, row=row, verdict=verdict, decided=decided, trials=round(trials, 6),
                            hours=hours, n=n, seeds_needed=needed, more_seeds=more, more_hours=more_hours))
    hours = sum(trial_cost(r, res) for r in ablation)
    decided = sum(r.decided for r in rows)
    fixed = _fixed_hours(by_variant, maximum) if isinstance(config.seeds, AdaptiveSeeds) else None
    return VerdictCost(
        unit=unit(res), rule=RULE, hours=hours, trials=sum(r.finished for r in ablation), decided=decided,
        rows_total=len(rows), hours_per_decided=hours / decided if decided else None, fixed_hours=fixed,
        saving=1 - hours / fixed if fixed else None, budget=budget, rows=rows)


def _variants_of(label: str, row: str, by_variant: dict) -> list[str]:
    """The variants a new seed of `row` runs: the baseline and its own single variant."""
    from ..plan import BASELINE

    own = f"no-{row}" if "=" not in row else row
    return [v for v in (BASELINE, own) if (label, v) in by_variant]


def _mean(xs: list[float] | None) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _fixed_hours(by_variant: dict, maximum: int) -> float | None:
    """Every variant that ran, at max seeds, at its measured mean trial time."""
    means = [_mean(xs) for xs in by_variant.values()]
    total = sum(m * maximum for m in means if m is not None)
    return total if total > 0 and math.isfinite(total) else None


def _budget(records: list[TrialRecord], config: StudyConfig, info: dict) -> BudgetState | None:
    """The budget in force (the last `resume --budget`, else the config's), what is spent, whether it stopped."""
    raised = info.get("budget")
    budget = Budget.model_validate(raised) if raised else config.budget
    if budget is None:
        return None
    hours, trials = spent(records, config.resources)
    stage = info.get("stages", {}).get(ABLATION, {})
    return BudgetState(kind=budget.kind, limit=budget.limit, used=trials if budget.kind == "max_trials" else hours,
                       reached=stage.get("state") == "budget", not_started=stage.get("not_started", 0))


def markdown(cost: VerdictCost) -> str:
    """The report's section: per decided row, the saving, and what the budget left undecided."""
    u = cost.unit
    lines = ["## Cost per verdict", ""]
    per = f"{cost.hours_per_decided:.3g} {u} per decided row" if cost.hours_per_decided else "no row decided"
    lines.append(f"- {cost.hours:.3g} {u} over {cost.trials} ablation trials, {cost.decided} of {cost.rows_total} "
                 f"rows decided: **{per}**")
    if cost.fixed_hours:
        lines.append(f"- against fixed seeds at max: {cost.fixed_hours:.3g} {u} (every variant at max seeds, its "
                     f"measured mean trial time): adaptive seeds saved **{cost.saving:.0%}**")
    if cost.budget is not None:
        b = cost.budget
        state = (f"reached: {b.not_started} planned trial(s) not started" if b.reached else "not reached")
        lines.append(f"- budget {b.kind} {b.limit:g}: {b.used:.3g} used, {state}")
    lines += [f"- rule: {cost.rule}", ""]
    lines += [f"| group | row | verdict | seeds | trials (shared) | {u} | would need |", "|" + "---|" * 7]
    for r in cost.rows:
        need = ""
        if not r.decided:
            cause = "budget: " if cost.budget is not None and cost.budget.reached else ""
            need = cause + (f"~{r.more_seeds} more seed(s)" + (f", ~{r.more_hours:.3g} {u}" if r.more_hours else "")
                            if r.more_seeds else "more seeds than the spread tells")
        lines.append(f"| {r.group} | {r.row} | {r.verdict} | {r.n} | {r.trials:.3g} | {r.hours:.3g} | {need} |")
    return "\n".join(lines) + "\n"
