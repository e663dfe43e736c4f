"""The study's budget while trials run: what is spent, whether the next trial may start, raising it.

The budget in force is the config's ``budget:``, or the one ``ablator resume DIR --budget ...`` set last
(kept in study.json). Spent: every ablation-stage trial's cost so far (config/budget.py), the time of
attempts a killed driver left behind included, so a resumed study does not spend it twice. A trial may start
while the spent cost plus the running trials' time so far is under the budget (max_trials: while fewer
trials have finished or started): the budget is overshot by at most the trials running when it is reached.
"""

from __future__ import annotations

import time

from pydantic import ValidationError

from ..config import Budget, StudyConfig, load_yaml
from ..config.budget import KINDS, rate, spent, trial_cost, uses_gpus
from ..errors import BudgetReached, ConfigError, UserError
from ..execution.runner import TrialSpec
from ..ledger import ABLATION, Study, TrialRecord


def in_force(study: Study, config: StudyConfig) -> Budget | None:
    """The budget the study runs under: the last `resume --budget`, else the config's."""
    raised = study.info.get("budget")
    return Budget.model_validate(raised) if raised else config.budget


def parse(text: str) -> Budget:
    """`--budget trial_hours=12` (or gpu_hours=H, max_trials=N) as a Budget; UserError naming the option."""
    kind, _, value = text.partition("=")
    try:
        return Budget.model_validate({kind.strip(): value.strip()})
    except ValidationError as exc:
        why = "; ".join(e["msg"] for e in exc.errors())
        raise UserError(f"--budget {text!r}: give KIND=VALUE with KIND one of {', '.join(KINDS)} ({why})") from None


def raise_budget(study: Study, config: StudyConfig, budget: Budget) -> None:
    """`resume --budget`: record the new budget (refused when a GPU-hour budget cannot be measured, or
    when it is no more than what is spent)."""
    if budget.gpu_hours is not None and not uses_gpus(config.resources):
        raise UserError(f"--budget gpu_hours={budget.limit:g} cannot be measured: {study.config_path} reserves no "
                        f"GPU (resources.gpus_per_trial is 0); give trial_hours (worker-hours) or max_trials")
    check_fits(study, config, budget, option=True)
    hours, trials = spent(study.records(), config.resources)
    used = trials if budget.kind == "max_trials" else hours
    if budget.limit <= used:
        raise UserError(f"--budget {budget.kind}={budget.limit:g}: the study has used {used:.4g} already "
                        f"({budget.text(config.resources)} would start nothing); give more")
    study.set_info(budget=budget.model_dump(exclude_none=True))


def check_fits(study: Study, config: StudyConfig, budget: Budget | None, option: bool = False) -> None:
    """A trial-hour budget smaller than one trial (the cheapest measured one) can decide nothing: exit 2 naming
    the field and the line of the study's config (or the `--budget` option)."""
    if budget is None or budget.kind == "max_trials":
        return
    costs = [trial_cost(r, config.resources) for r in study.records()
             if r.stage == ABLATION and r.finished and r.duration_s > 0]
    if not costs or budget.limit >= min(costs):
        return
    why = (f"{budget.text(config.resources)} is smaller than one trial (the cheapest measured one took "
           f"{min(costs):.3g}); give more")
    if option or study.info.get("budget"):
        raise UserError(f"--budget {budget.kind}={budget.limit:g}: {why}")
    _, lines = load_yaml(study.config_path)
    raise ConfigError(study.config_path, [(f"budget.{budget.kind}", lines.get(("budget", budget.kind)), why)])


class BudgetGate:
    """`may_start(spec)` for the trial loop, and `update(record)` for the observers, of one study."""

    def __init__(self, study: Study, config: StudyConfig, budget: Budget):
        self.config, self.budget = config, budget
        records = study.records()
        self.hours, self.finished = spent(records, config.resources)
        #: what unfinished trials (a killed driver's) had spent: counted once, when they finish
        self.before = {r.trial_id: trial_cost(r, config.resources) for r in records if not r.finished}
        self.running: dict[str, float] = {}  # trial id -> when it started
        self.reached = False

    def used(self) -> float:
        """Trial-hours (or trials, for max_trials) spent, the running trials' time so far included."""
        if self.budget.kind == "max_trials":
            return float(self.finished + len(self.running))
        hourly = rate(self.config.resources)
        return self.hours + sum((time.time() - t0) / 3600 * hourly for t0 in self.running.values())

    def may_start(self, spec: TrialSpec) -> bool:
        if not self.reached and self.used() < self.budget.limit:
            self.running[spec.trial_id] = time.time()
            return True
        self.reached = True
        return False

    def update(self, record: TrialRecord) -> None:
        if record.finished and self.running.pop(record.trial_id, None) is not None:
            self.hours += trial_cost(record, self.config.resources) - self.before.pop(record.trial_id, 0.0)
            self.finished += 1

    def stop(self, study: Study, left: int) -> BudgetReached:
        """The error that ends the study, its state recorded in study.json (the report reads it)."""
        used = self.used()
        text = self.budget.text(self.config.resources)
        shown = f"{int(used)} trials" if self.budget.kind == "max_trials" else f"{used:.3g}"
        study.set_stage(ABLATION, "budget", budget=self.budget.model_dump(exclude_none=True), used=used,
                        not_started=left)
        return BudgetReached(
            f"Budget reached: {shown} of {text} used; {left} planned trial(s) not started (PENDING). The report "
            f"says which rows it left undecided and what each would need. Continue with "
            f"`ablator resume {study.path} --budget {self.budget.kind}=MORE`.")
