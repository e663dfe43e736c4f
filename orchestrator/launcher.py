"""The flow of a study: config -> plan -> Ray execution -> ledger -> report -> tuning."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import plan as planning
from .config import AdaptiveSeeds, ScheduleAt, StudyConfig, load_config
from .errors import StudyError, UserError
from .execution import runner
from .execution.progress import StudyProgress
from .ledger import FAILED, PENDING, Study
from .overrides import Override, resolved_text
from .plan import TrialSpec
from .provenance import collect


def study_dir_for(config: StudyConfig) -> Path:
    return Path(config.storage.root) / config.name


def print_plan(config: StudyConfig, console: Console) -> None:
    """The plan as a table: variants x seeds, and the trial count."""
    seeds = config.seed_list
    variants = planning.variants(config)
    groups = planning.groups(config, config.tiers.stages[0].name if config.tiers else None)
    table = Table(title=f"Plan of study '{config.name}' ({config.design.type})")
    table.add_column("variant")
    table.add_column("removed")
    table.add_column("kind")
    if config.has_levels:
        table.add_column("alternatives, levels")
    table.add_column("seeds")
    for v in variants:
        kinds = sorted({config.components[c].kind for c in v.removed}) or ["-"]
        levels = [", ".join([f"{c}={a}" for c, a in v.alternatives] + [f"{p}={x}" for p, x in v.levels]) or "-"]
        table.add_row(v.name, ", ".join(v.removed) or "-", ", ".join(kinds), *(levels if config.has_levels else []),
                      " ".join(map(str, seeds)))
    console.print(table)
    n = len(variants) * len(seeds) * len(groups)
    extra = ""
    if isinstance(config.seeds, AdaptiveSeeds):
        extra = f" (adaptive seeds: up to {config.seeds.max} per undecided variant)"
    if len(groups) > 1:
        extra += f" over {len(groups)} groups: {', '.join(g for g, _ in groups)}"
    if config.tiers:
        extra += f"; tiers run in order: {', '.join(t.name for t in config.tiers.stages)}"
    console.print(f"{len(variants)} variants x {len(seeds)} seeds = [bold]{n} trials[/bold]{extra}")


def launch(config_path: str | Path, *, address: str | None = None, variants: list[str] | None = None,
           dry_run: bool = False, console: Console | None = None, ray_temp_dir: str | None = None,
           dashboard: bool = True, overrides: list[Override] = ()) -> Study | None:
    """`ablator launch`: run the study of a YAML file (or continue it if its directory exists)."""
    console = console or Console()
    config = load_config(config_path, overrides)
    chosen = [_variant(config, name) for name in variants] if variants else None
    if dry_run:
        print_plan(config, console)
        return None
    study = Study(study_dir_for(config))
    with study.lock():  # study.json is created under the lock: of two first launches, one runs
        if study.exists():
            study.check()
            stored = load_config(study.config_path)
            if stored.model_dump() != config.model_dump():
                raise StudyError(
                    f"{study.path} holds a study with a different config. Give the new study another "
                    f"`name`, move the old directory away, or continue it with `ablator resume {study.path}`."
                )
        else:
            Study.create(study.path, resolved_text(config_path, overrides), config.name)
            study.write_provenance({**collect(), "overrides": [ov.arg for ov in overrides],
                                    "reproducibility": config.reproducibility.model_dump()})
        _run(study, config, console, address, ray_temp_dir, dashboard, rerun=chosen)
    return study


def resume(study_dir: str | Path, *, address: str | None = None, console: Console | None = None,
           ray_temp_dir: str | None = None, dashboard: bool = True, retry_failed: bool = False) -> Study:
    """`ablator resume`: complete a study; finished trials are never re-run."""
    console = console or Console()
    study = Study(study_dir)
    if not study.exists():
        raise StudyError(f"{study_dir} is not a study directory (no study.json)")
    config = load_config(study.config_path)
    with study.lock():
        study.check()
        mend_records(study, console)
        if retry_failed:
            for record in study.records():
                if record["state"] == FAILED and record["stage"] == "ablation":
                    study.trial(record["trial_id"]).update(state=PENDING)
        _run(study, config, console, address, ray_temp_dir, dashboard)
    return study


def mend_records(study: Study, console: Console) -> list[str]:
    """Move every unreadable record.json aside and make its trial PENDING; return their ids.

    The trial's spec comes from plan.json (or the study index); its metrics and checkpoint
    stay, so the re-run continues from the last checkpoint. Nothing else is touched.
    """
    damaged = study.damaged_records()
    if not damaged:
        return []
    specs = {t["trial_id"]: t for t in study.read_plan().get("trials", [])}
    indexed = {r["trial_id"]: r for r in study.records()}
    mended = []
    for path, problem in damaged:
        tid = path.parent.name
        spec = specs.get(tid) or indexed.get(tid)
        store = study.trial(tid)
        aside = store.set_aside()
        console.print(f"[yellow]{path}: {escape(problem)}[/yellow]; moved to {aside.name}"
                      + ("; the trial runs again" if spec else "; not in the plan: left out"))
        if spec:
            fields = {k: spec[k] for k in TrialSpec.__dataclass_fields__ if k in spec}
            store.write(runner.new_record(TrialSpec(**fields)))
            mended.append(tid)
    return mended


def _variant(config: StudyConfig, name: str) -> planning.Variant:
    try:
        return planning.variant_by_name(config, name)
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from None


# ---------------------------------------------------------------- the stages


def _run(study: Study, config: StudyConfig, console: Console, address, ray_temp_dir, dashboard,
         rerun: list[planning.Variant] | None = None) -> None:
    url = runner.connect(address, temp_dir=ray_temp_dir, dashboard=dashboard)
    console.print(f"Study [bold]{config.name}[/bold] in {study.path}" + (f"  (Ray dashboard: {url})" if url else ""))
    from .tracking import make_tracker

    tracker = make_tracker(config, study, study.read_provenance(),
                           echo=lambda line: console.print(line, markup=False, highlight=False))
    try:
        completed = run_ablation(study, config, console, tracker, rerun)
        _report(study, console)
        tracker.study_summary(study.path)
        if completed and _maybe_tune(study, config, console, tracker, cluster_dashboard=url if address else None):
            tracker.study_summary(study.path)  # the same summary run, now with the best config
    finally:
        tracker.close()


def run_ablation(study: Study, config: StudyConfig, console: Console, tracker, rerun=None) -> bool:
    """Run every tier of the ablation stage; return False when a tier gate stopped the study."""
    study.set_stage("ablation", "running")
    tiers = [t.name for t in config.tiers.stages] if config.tiers else [None]
    for i, tier in enumerate(tiers):
        seeds = _seeds_so_far(study, config, tier)
        specs = planning.ablation_trials(config, seeds=seeds, tier=tier)
        if rerun:
            names = {v.name for v in rerun}
            for spec in specs:
                if spec.variant in names:
                    study.remove_trial(spec.trial_id)
        _execute(study, config, console, tracker, specs, label=tier or "ablation")
        if isinstance(config.seeds, AdaptiveSeeds):
            _adaptive(study, config, console, tracker, tier)
        if config.analysis.check_determinism and i == len(tiers) - 1:
            _check_determinism(study, config, console, tracker, tier)
        if tier is not None and i < len(tiers) - 1 and not _tier_separates(study, config, console, tier):
            study.set_stage("ablation", "stopped", reason=f"tier '{tier}' did not separate the variants")
            return False
    study.set_stage("ablation", "completed")
    return True


def _execute(study, config, console, tracker, specs, label="ablation") -> list[dict]:
    """Write PENDING records for new specs, then run every spec not yet finished."""
    plan = study.read_plan() or {"trials": []}
    known = {t["trial_id"] for t in plan["trials"]}
    plan["trials"] += [s.to_dict() for s in specs if s.trial_id not in known]
    study.write_plan(plan)
    todo = runner.prepare(study, specs)
    finished = len(specs) - len(todo)
    if finished:
        console.print(f"{finished} of {len(specs)} trials already finished: reused, not re-run")
    if not todo:
        return []
    with StudyProgress(console, len(todo), label) as progress:
        def seen(record):
            progress.seen(record)
            tracker.trial_update(record)

        executor = runner.TrialExecutor(study, config, on_update=seen)
        try:
            return runner.run_trials(executor, todo, progress=_Ticker(progress, tracker))
        except KeyboardInterrupt:
            executor.cancel_all()
            console.print(f"[yellow]Interrupted.[/yellow] `ablator resume {study.path}` continues the study.")
            raise


class _Ticker:
    """Called each driver loop turn: refresh the bar, let the tracker tail new metrics."""

    def __init__(self, progress, tracker):
        self.progress, self.tracker = progress, tracker

    def update(self) -> None:
        self.progress.update()
        self.tracker.poll()


def _seeds_so_far(study: Study, config: StudyConfig, tier) -> list[int]:
    """The initial seeds, plus adaptive seeds a previous driver already added to the baseline."""
    seeds = config.seed_list
    if isinstance(config.seeds, AdaptiveSeeds):
        for record in study.records():
            baseline = record["variant"] == planning.BASELINE and record["stage"] == "ablation"
            in_tier = record.get("group") is None or tier is None or str(record["group"]).startswith(tier)
            if baseline and in_tier and record["seed"] not in seeds:
                seeds.append(record["seed"])
    return seeds


def _adaptive(study: Study, config: StudyConfig, console: Console, tracker, tier, execute=None) -> None:
    """Add seeds to undecided components (and the baseline, to stay paired) until decided or max.

    ``execute`` runs a list of trial specs (``_execute``: on Ray); simulations pass their own.
    """
    execute = execute or _execute
    from .analysis import next_seed

    while (step := next_seed([r for r in study.records() if r["stage"] == "ablation"], config)) is not None:
        seed, open_components = step
        console.print(f"Adaptive seeds: {', '.join(open_components)} undecided; adding seed {seed}")
        chosen = [planning.Variant()] + [v for v in planning.variants(config)
                                         if v.removed and set(v.removed) & set(open_components)]
        specs = planning.ablation_trials(config, seeds=[seed], only=chosen, tier=tier)
        execute(study, config, console, tracker, specs, label=f"seed {seed}")


def _check_determinism(study: Study, config: StudyConfig, console: Console, tracker, tier) -> None:
    """analysis.check_determinism: run the baseline's first seed a second time (the report compares)."""
    from .analysis.reproducibility import repeat_spec

    _execute(study, config, console, tracker, [repeat_spec(config, tier)], label="determinism check")


def _tier_separates(study: Study, config: StudyConfig, console: Console, tier: str) -> bool:
    """Synthetic-first gate: the next tier runs only if this one decided enough verdicts."""
    from .analysis.stats import DECIDED

    _report(study, console)
    verdicts = _read_verdicts(study)
    groups = verdicts.get("groups", {})
    decided = [
        name for label, group in groups.items() if label.split("/")[0] == tier
        for name, v in group.get("components", {}).items() if v["verdict"] in DECIDED
    ]
    need = config.tiers.min_decided
    if len(set(decided)) >= need:
        console.print(f"Tier '{tier}' separates the variants ({len(set(decided))} decided): next tier runs")
        return True
    console.print(
        f"[bold yellow]Stopping after tier '{tier}':[/bold yellow] {len(set(decided))} component(s) decided, "
        f"{need} needed (tiers.min_decided; decided = essential, harmful or negligible). A tier that "
        "decides nothing cheaply is unlikely to decide on the expensive tier; see report.md."
    )
    return False


def wait_until(study: Study, start: datetime, console: Console) -> None:
    """Hold the tuning stage until `start` (UTC when no zone is given); status shows it scheduled."""
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    study.set_stage("tuning", "scheduled", at=start.isoformat())
    wait = (start - datetime.now(timezone.utc)).total_seconds()
    if wait > 0:
        console.print(f"Tuning stage scheduled for {start.isoformat()}: waiting {wait:.0f} s "
                      f"(Ctrl-C to leave it; `ablator tune {study.path}` runs it any time)")
        time.sleep(wait)


def _read_verdicts(study: Study) -> dict:
    from .ledger import read_json

    return read_json(study.path / "verdicts.json", {})


def _report(study: Study, console: Console) -> None:
    from .analysis import build_report

    build_report(study.path, console=console)


def _maybe_tune(study: Study, config: StudyConfig, console: Console, tracker,
               cluster_dashboard: str | None = None) -> bool:
    """Run, schedule or leave the tuning stage as `tuning.schedule` says; True if it ran here.

    On a Ray cluster the tuning stage is submitted as its own Ray job.
    """
    tuning = config.tuning
    if not tuning.enabled:
        return False
    if tuning.schedule == "manual":
        study.set_stage("tuning", "manual")
        console.print(f"Tuning stage is manual: run `ablator tune {study.path}` when you like.")
        return False
    if cluster_dashboard:
        from .execution import jobs

        study.set_stage("tuning", "submitted")
        args = ["tune", str(study.path.resolve())]
        if isinstance(tuning.schedule, ScheduleAt):
            args += ["--at", tuning.schedule.at.isoformat()]
        jobs.submit(cluster_dashboard, args, "tuning", config.name, console, working_dir=Path.cwd())
        return False
    if isinstance(tuning.schedule, ScheduleAt):
        wait_until(study, tuning.schedule.at, console)
    from .tuning import run_tuning

    run_tuning(study, config, console=console, tracker=tracker)
    return True

