"""What each verdict cost, as verdicts.json holds it (``Verdicts.cost``): the rows' trial-hours, the hours
per decided row, the saving against fixed seeds at ``max``, and the budget (what it left undecided)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RowCost(BaseModel):
    """One row (a component, an alternative "c=a", a factor) of one group: its share of the trials."""

    model_config = ConfigDict(extra="forbid")
    group: str
    row: str
    verdict: str
    decided: bool
    trials: float
    hours: float
    n: int = 0
    #: undecided rows: the seeds about to decide (seeds_needed) and what they would cost
    seeds_needed: int | None = None
    more_seeds: int | None = None
    more_hours: float | None = None


class BudgetState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    limit: float
    used: float
    reached: bool
    not_started: int = 0


class VerdictCost(BaseModel):
    """Trial-hours per decided row, and against fixed seeds at max."""

    model_config = ConfigDict(extra="forbid")
    #: "GPU-hours" (the study reserves GPUs) or "worker-hours"
    unit: str
    #: how a trial's hours are shared among rows, in words
    rule: str
    hours: float
    trials: int
    decided: int
    rows_total: int
    hours_per_decided: float | None = None
    #: adaptive seeds: the same plan run with every variant at max seeds (measured mean trial time per variant)
    fixed_hours: float | None = None
    saving: float | None = None
    budget: BudgetState | None = None
    rows: list[RowCost] = []


def status_line(cost: VerdictCost) -> str:
    """`ablator status`'s line: hours, per decided row, the saving, the budget."""
    per = f"{cost.hours_per_decided:.3g} {cost.unit} per decided row" if cost.hours_per_decided else "no row decided"
    line = f"{cost.hours:.3g} {cost.unit}, {cost.decided} of {cost.rows_total} rows decided: {per}"
    if cost.saving is not None:
        line += f"; {cost.saving:.0%} saved against fixed seeds at max"
    if cost.budget is not None:
        b = cost.budget
        line += f"; budget {b.kind} {b.limit:g}: {b.used:.3g} used" + (", reached" if b.reached else "")
    return line
