"""The three entry points, `ablator launch`, `resume` and `tune`: each opens a study session and runs its steps."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from rich.console import Console

from .. import plan as planning
from ..config import StudyConfig, load_config
from ..errors import BudgetReached, StudyError, StudyLocked, UserError
from ..execution import interrupt
from ..ledger import FAILED, PENDING, VARIANT, Study, TrialRecord
from ..ledger.verdicts_json import read_verdicts
from ..overrides import Override, resolved_text
from ..provenance import collect
from ..tuning import schedule
from .budget import check_fits, in_force, raise_budget
from .budget import parse as parse_budget
from .estimate import print_estimate
from .mending import mend_records
from .plan_table import print_plan
from .project import enter_project, record_project
from .scheduling import NotScheduled, cancel_schedule, jobs_api_address, wait_for_schedule
from .study_session import Cluster, StudySession, study_dir_for


def launch(config_path: str | Path, *, address: str | None = None, variants: list[str] | None = None,
           dry_run: bool = False, console: Console | None = None, ray_temp_dir: str | None = None,
           dashboard: bool = True, upload: bool = True, overrides: list[Override] = ()) -> Study | None:
    """`ablator launch`: run the study of a YAML file (or continue it), every stage due now."""
    console = console or Console()
    config = load_config(config_path, overrides)
    chosen = [_variant(config, name) for name in variants] if variants else None
    study = Study(study_dir_for(config))
    if dry_run:
        print_plan(config, console)
        print_estimate(config, console, study.records() if study.exists() else [])
        return None

    def open_study() -> None:  # under the lock: of two first launches, one runs
        if study.exists():
            study.check()
            stored = load_config(study.config_path)
            if stored.model_dump() != config.model_dump():
                raise StudyError(
                    f"{study.path} holds a study with a different config. Give the new study another "
                    f"`name`, move the old directory away, or continue it with `ablator resume {study.path}`."
                )
            enter_project(study, config, "resume")  # continuing it: the launch's project and code, as resume
            check_fits(study, config, in_force(study, config))
        else:
            Study.create(study.path, resolved_text(config_path, overrides), config.name)
            study.write_provenance({**collect(), "overrides": [ov.arg for ov in overrides],
                                    "reproducibility": config.reproducibility.model_dump(),
                                    "project": record_project(study, config)})

    cluster = Cluster(address, ray_temp_dir, dashboard, upload)
    interrupt.defer()  # from here a stop signal waits for the driver's next safe point, then names the resume
    with StudySession(study, config, console, cluster, on_open=open_study) as session:
        _all_stages(session, rerun=chosen)
    return study


def resume(study_dir: str | Path, *, address: str | None = None, console: Console | None = None,
           ray_temp_dir: str | None = None, dashboard: bool = True, retry_failed: bool = False,
           upload: bool = True, code_changed: str | None = None, budget: str | None = None) -> Study:
    """`ablator resume`: complete a study; finished trials are never re-run. It runs in (and ships)
    the launch's project directory, refused if the code there changed (unless `code_changed` is 'ok').
    `budget` ('trial_hours=12', 'gpu_hours=H', 'max_trials=N') replaces the budget in force."""
    console = console or Console()
    study = Study(Path(study_dir).resolve())
    if not study.exists():
        raise StudyError(f"{study_dir} is not a study directory (no study.json)")
    in_project(study, "resume", code_changed)
    config = load_config(study.config_path)

    def open_study() -> None:
        study.check()
        mend_records(study, console)
        if budget is not None:
            raise_budget(study, config, parse_budget(budget))
        else:
            check_fits(study, config, in_force(study, config))
        if retry_failed:
            for record in study.records():
                if record.state == FAILED and record.purpose == VARIANT:
                    study.trial(record.trial_id).update(state=PENDING)

    cluster = Cluster(address, ray_temp_dir, dashboard, upload)
    interrupt.defer()
    with StudySession(study, config, console, cluster, on_open=open_study) as session:
        _all_stages(session)
    return study


def tune(study_dir: str | Path, *, n_trials: int | None = None, at: datetime | None = None, wait: bool = False,
         cancel: bool = False, address: str | None = None, console: Console | None = None,
         ray_temp_dir: str | None = None, dashboard: bool = True, upload: bool = True,
         code_changed: str | None = None) -> Study:
    """`ablator tune DIR`: run (or continue, or extend) the tuning stage now; or schedule it `at`
    (a schedule before is moved); `wait` for the scheduled time, then run it; or `cancel` the schedule.
    Like resume, it runs in (and ships) the launch's project directory."""
    from ..tuning.stage import not_ready, nothing_to_tune
    from ..tuning.tuning_plan import tuning_plan

    console = console or Console()
    study = Study(Path(study_dir).resolve())
    if cancel:
        cancel_schedule(study, console, address)
        return study
    if n_trials is not None and n_trials < 1:
        raise UserError("--n-trials must be at least 1")
    in_project(study, "tune", code_changed)
    config = load_config(study.config_path)
    verdicts = read_verdicts(study.path / "verdicts.json")
    why = not_ready(study, verdicts)
    if why:
        raise StudyError(f"Cannot tune yet: {why}")
    why = nothing_to_tune(tuning_plan(config, verdicts))
    if why:
        raise StudyError(f"Cannot tune {study.path}: {why}")
    if not config.tuning.enabled:
        console.print("Note: tuning.enabled is false (launch skips tuning); running it as asked.")
    cluster = Cluster(address, ray_temp_dir, dashboard, upload)
    if at is not None and schedule.in_future(at):
        jobs_address = None if wait else jobs_api_address(study, address)
        with study.lock():
            StudySession(study, config, console, cluster).schedule(at, jobs_address, n_trials)
        if not wait:
            return study
    due = None
    if wait:
        due = schedule.scheduled_at(study)
        if due is None:
            raise StudyError(f"Nothing to wait for: the tuning stage of {study.path} is "
                             f"{schedule.stage(study).get('state', 'not started')}, not scheduled. Schedule it with "
                             f"`ablator tune {study.path} --at TIME`, or run it now without --wait.")
        if not wait_for_schedule(study, due, console):
            return study
    if n_trials is None:  # whatever runs a scheduled stage (--wait, a Ray job, cron, sbatch) keeps its budget
        n_trials = schedule.scheduled_trials(study)
    _tune_when_free(study, config, console, cluster, n_trials, due)
    return study


def _tune_when_free(study: Study, config: StudyConfig, console: Console, cluster: Cluster,
                    n_trials: int | None, due: datetime | None) -> None:
    """Run the tuning stage now. For a schedule (`due`), wait while another driver holds the study
    (its ablation still running), and run only if the stage is still scheduled for `due` once the lock
    is ours: of two runners for one schedule, one runs it."""
    def still_due() -> None:
        if due is not None and schedule.scheduled_at(study) != due:
            raise NotScheduled(f"The tuning stage of {study.path} is no longer scheduled for {due.isoformat()} "
                                f"(now: {schedule.stage(study).get('state')}): nothing to do.")

    said = False
    while True:
        try:
            with StudySession(study, config, console, cluster, on_open=still_due) as session:
                session.tuning(now=True, n_trials=n_trials)
            return
        except StudyLocked as exc:
            if due is None:
                raise
            if not said:
                console.print(f"{exc}; the scheduled tuning stage waits for it.", soft_wrap=True)
                said = True
            time.sleep(schedule.POLL_S)
        except NotScheduled as exc:
            console.print(str(exc), soft_wrap=True)
            return


def in_project(study: Study, command: str, code_changed: str | None = None) -> Path:
    """Run in the study's project directory (the launch's), refused if its code changed; return it."""
    return enter_project(study, load_config(study.config_path, import_trainable=False), command, code_changed)


def _all_stages(session: StudySession, rerun=None) -> None:
    try:
        completed = session.ablation(rerun)
    except BudgetReached:  # the study ends here, its report written (what the budget left undecided)
        session.report()
        session.tracker.log_analysis(session.study.path)
        raise
    interrupt.check()
    session.report()
    session.tracker.log_analysis(session.study.path)
    if completed:
        interrupt.check()
        session.tuning()


def failed_trials(study: Study) -> list[TrialRecord]:
    """The study's FAILED trials (any stage): a launch with any exits 1."""
    return [r for r in study.records() if r.state == FAILED]


def _variant(config: StudyConfig, name: str) -> planning.Variant:
    try:
        return planning.variant_by_name(config, name)
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from None
