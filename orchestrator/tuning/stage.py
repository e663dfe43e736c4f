"""The tuning stage end to end: readiness, search, confirmation, reports, stage state."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape

from ..config import StudyConfig
from ..errors import Interrupted
from ..execution import runner
from ..execution.observers import TrialObservers
from ..ledger import Study, write_text
from ..ledger.tuning_results import HELPED, BestTrial
from ..ledger.verdicts_json import ESSENTIAL, Verdicts, read_verdicts
from .confirm import run_confirmation, sentence
from .report import best_config, write_reports
from .search import STAGE, Search, create_optuna_study, journal_path, trial_id_for
from .tuning_plan import GLOBAL, TuningPlan, tuning_plan


def not_ready(study: Study, verdicts: Verdicts | None) -> str | None:
    """Why the ablation is not finished enough to tune after it (None when it is)."""
    stage = study.info.get("stages", {}).get("ablation") or {}
    state = stage.get("state")
    if state == "stopped":
        return (f"the ablation stage of {study.path} stopped early ({stage.get('reason', 'no reason recorded')}): "
                "without its verdicts there is nothing to tune on")
    if state != "completed":
        return (f"the ablation stage of {study.path} is not finished (state: {state or 'not started'}); "
                f"complete it first with `ablator resume {study.path}`: tuning reads its verdicts")
    if verdicts is None:
        return (f"{study.path / 'verdicts.json'} is missing; write it with `ablator report {study.path}`")
    if not verdicts.complete:
        return (f"the verdicts in {study.path / 'verdicts.json'} are provisional (some ablation trials are "
                f"still pending or running); finish them with `ablator resume {study.path}`, "
                f"then `ablator report {study.path}`")
    return None


def nothing_to_tune(plan: TuningPlan) -> str | None:
    if plan.params:
        return None
    survivors = [n for n, v in plan.verdicts.items() if v == ESSENTIAL]
    if not survivors:
        return ("nothing to tune: no component survived the ablation (none is 'essential') and "
                "tuning.search_space is empty; add parameters to tuning.search_space to tune anyway")
    return (f"nothing to tune: the survivors ({', '.join(survivors)}) have no `tune` spaces "
            "and tuning.search_space is empty")


def run_tuning(study: Study, config: StudyConfig, *, console: Console | None = None,
               observers: TrialObservers | None = None, n_trials: int | None = None) -> dict | None:
    """Run the tuning stage after a finished ablation; return its summary (None when skipped).

    The study session calls this after the ablation report, and for `ablator tune`; every
    trial update goes to `observers` (the session's: progress, tracker, telemetry).
    Re-running continues: finished trials are kept, `n_trials` is the total budget.
    """
    console = console or Console()
    observers = observers or TrialObservers(console)
    verdicts = read_verdicts(study.path / "verdicts.json")
    plan = tuning_plan(config, verdicts)
    why = not_ready(study, verdicts) or nothing_to_tune(plan)
    if why:
        study.set_stage("tuning", "skipped", reason=why)
        console.print(f"[yellow]Tuning stage skipped:[/yellow] {why}")
        return None
    if not _ray_ready():
        runner.connect(None)
    budget = n_trials or config.tuning.n_trials
    _print_plan(console, config, plan)
    study.set_stage("tuning", "running", n_trials=budget)
    started = time.time()
    ostudy = create_optuna_study(study, config, plan, budget)
    search = Search(study, config, plan, ostudy, on_update=observers.update, tick=observers.tick)
    again = search.reconcile()
    if search.told or again:
        console.print(f"Resuming: told Optuna {sum(search.told.values())} trial(s) the ledger had finished; "
                      f"{len(again)} interrupted trial(s) continue from their checkpoints")
    before = search.n_trials()
    if before >= budget:
        console.print(f"{before} tuning trials already in {journal_path(study.path)} (budget {budget}): "
                      "none added; raise --n-trials to add more")
    elif before:
        console.print(f"Continuing: {before} tuning trials already in storage, budget {budget}")
    try:
        with observers.progress(max(0, budget - before) + len(again), "tuning"):
            search.run(budget, again)
        counts = search.counts()
        complete = ostudy.get_trials(deepcopy=False, states=(_complete(),))
        summary = _summary(study, config, plan, ostudy, search, budget)
        if complete:
            best = ostudy.best_trial
            values = plan.decode(best.params)
            summary["best"] = BestTrial(trial_id=trial_id_for(best.number), number=best.number, value=best.value,
                                        params=values, metric=plan.metric)
            summary["confirmation"] = run_confirmation(study, config, plan, search.executor,
                                                       trial_id_for(best.number), values, observers)
            header = (f"Generated by the tuning stage of study '{config.name}' ({study.study_id}).\n"
                      f"{summary['best'].line()}. "
                      f"Removed: {', '.join(plan.removed) or 'none'}. "
                      f"Tuned: {', '.join(plan.params)}.\n"
                      + sentence(summary["confirmation"], plan.metric))
            text, problems = best_config(study, config, plan, values, header)
            write_text(study.path / "best_config.yaml", text)
            summary["best_config"] = "best_config.yaml"
            summary["best_config_problems"] = problems
        summary["duration_s"] = time.time() - started
        report = write_reports(study, config, plan, ostudy, summary)
    except (Interrupted, KeyboardInterrupt):
        search.executor.cancel_all()
        study.set_stage("tuning", "interrupted", n_trials=budget)
        console.print(f"[yellow]Interrupted.[/yellow] `ablator tune {study.path}` continues the tuning stage.")
        raise
    best, conf = summary.get("best"), summary.get("confirmation")
    study.set_stage("tuning", "completed", n_trials=budget, counts=counts, best=best and best.model_dump(),
                    confirmation=conf and conf.outcome)
    _print_result(console, plan, summary, report)
    return summary


# ---------------------------------------------------------------- helpers


def _ray_ready() -> bool:
    import ray

    return ray.is_initialized()


def _complete():
    from optuna.trial import TrialState

    return TrialState.COMPLETE


def _summary(study: Study, config: StudyConfig, plan: TuningPlan, ostudy, search: Search, budget: int) -> dict:
    return {
        "stage": STAGE,
        "study_name": ostudy.study_name,
        "storage": str(journal_path(study.path)),
        "metric": plan.metric,
        "mode": plan.mode,
        "budget": budget,
        "n_trials": search.n_trials(),
        "counts": search.counts(),
        "slots": search.executor.slots(),
        "sampler": {"type": "TPE", "multivariate": True, "constant_liar": True,
                    "seed": config.tuning.sampler_seed},
        "pruner": config.tuning.pruner,
        "tuned": [{"path": p.path, "space": p.describe(), "sources": p.sources, "verdicts": p.verdicts}
                  for p in plan.params.values()],
        "removed": {n: plan.verdicts[n] for n in plan.removed},
        "kept": {n: plan.verdicts[n] for n in plan.kept},
        "skipped": [{"path": p, "source": s, "reason": r} for p, s, r in plan.skipped],
        "notes": plan.notes,
        "best": None,
        "confirmation": None,
    }


def _print_plan(console: Console, config: StudyConfig, plan: TuningPlan) -> None:
    from rich.table import Table

    table = Table(title="Tuning: what is tuned, and why")
    for col in ("parameter", "search space", "from", "verdict"):
        table.add_column(col)
    for p in plan.params.values():
        src = ", ".join("tuning.search_space" if s == GLOBAL else s for s in p.sources)
        table.add_row(p.path, p.describe(), src, ", ".join(p.verdicts))
    console.print(table)
    for name in config.components:
        console.print(f"  {name}: {plan.verdicts[name]} -> {plan.fate(name)}")
    for path, src, why in plan.skipped:
        console.print(f"  not tuned: {path} ({src}): {why}")


def _print_result(console: Console, plan: TuningPlan, summary: dict, report) -> None:
    best, conf = summary.get("best"), summary.get("confirmation")
    if not best:
        console.print(f"[red]No tuning trial completed[/red] ({summary['counts']}): see the FAILED trials "
                      "in `ablator status`; no confirmation, no best_config.yaml")
    if best:
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
        console.print(f"{escape(best.line())} ({escape(params)})", highlight=False)
    if conf:
        color = "green" if conf.outcome == HELPED else "yellow"
        console.print(f"[{color}]{sentence(conf, plan.metric)}[/{color}]")
    console.print(f"Tuning report: {report}")
