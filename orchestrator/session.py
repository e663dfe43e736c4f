"""The study session: one object drives a study's lifecycle for launch, resume and tune.

    open (create or continue the study dir, take its lock) -> connect Ray (user code shipped)
    -> steps: ablation (tiers, adaptive seeds) -> report -> tuning (now, scheduled or manual)
    -> close (tracker flushed, lock released)

The session is the only layer that knows every stage: execution runs trials, analysis
reads the ledger, tuning reads verdicts; the session sequences them in one driver
process, the same on every path (local Ray, `--address`, sbatch, a RayJob), so no second
process ever needs the study lock while this one holds it. SIGTERM, SIGINT and SIGHUP
stop the session cleanly: running trials are cancelled and left PENDING, the tracker is
flushed, the resume command printed, and ``Interrupted`` carries exit code 128+signal.
"""

from __future__ import annotations

import shlex
import signal
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Self

import ray
from rich.console import Console
from rich.markup import escape

from . import plan as planning
from .config import AdaptiveSeeds, ScheduleAt, StudyConfig, load_config
from .errors import Interrupted, NoRoom, StudyError, StudyLocked, UserError
from .execution import interrupt, jobs, runner
from .execution.progress import StudyProgress
from .execution.resources import check_feasible
from .execution.telemetry import StudyMetrics
from .ledger import FAILED, PENDING, Study, TrialRecord
from .ledger.verdicts import Verdicts, read_verdicts
from .overrides import Override, resolved_text
from .plan import TrialSpec
from .provenance import collect
from .spaces import fmt
from .terminal import FitTable
from .tuning import schedule

#: while trials run, how often the driver brings the study index's summary cache up to date
SUMMARY_EVERY_S = 60.0


def study_dir_for(config: StudyConfig) -> Path:
    """The study directory: an absolute path fixed on the driver, whatever the workers' cwd."""
    return (Path(config.storage.root) / config.name).resolve()


def print_plan(config: StudyConfig, console: Console) -> None:
    """The plan as a table: variants x seeds, and the trial count."""
    seeds = config.seed_list
    variants = planning.variants(config)
    groups = planning.groups(config, config.tiers.stages[0].name if config.tiers else None)
    rows = []
    for v in variants:
        kinds = sorted({config.components[c].kind for c in v.removed}) or ["-"]
        levels = [", ".join([f"{c}={a}" for c, a in v.alternatives] + [f"{p}={fmt(x)}" for p, x in v.levels]) or "-"]
        rows.append([v.name, ", ".join(v.removed) or "-", ", ".join(kinds), *(levels if config.has_levels else []),
                     " ".join(map(str, seeds))])
    header = ("variant", "removed", "kind", *(["alternatives, levels"] if config.has_levels else []), "seeds")
    console.print(FitTable(f"Plan of study '{config.name}' ({config.design.type})", header, rows))
    n = len(variants) * len(seeds) * len(groups)
    extra = ""
    if isinstance(config.seeds, AdaptiveSeeds):
        extra = f" (adaptive seeds: up to {config.seeds.max} per undecided variant)"
    if len(groups) > 1:
        extra += f" over {len(groups)} groups: {', '.join(g for g, _ in groups)}"
    if config.tiers:
        extra += f"; tiers run in order: {', '.join(t.name for t in config.tiers.stages)}"
    console.print(f"{len(variants)} variants x {len(seeds)} seeds = [bold]{n} trials[/bold]{extra}")


class Cluster:
    """Where the session's trials run: embedded local Ray (address None) or a Ray cluster."""

    def __init__(self, address: str | None = None, temp_dir: str | None = None, dashboard: bool = True,
                 upload: bool = True):
        self.address, self.temp_dir, self.dashboard, self.upload = address, temp_dir, dashboard, upload

    def connect(self, console: Console, extra_excludes: list[str] = (),
                metadata: dict[str, str] | None = None) -> str | None:
        env = None
        if self.address not in (None, "auto") and self.upload:
            from .execution.code import working_dir_env

            env, left_out = working_dir_env(Path.cwd(), extra_excludes)
            if left_out:
                console.print(f"Not uploaded (large files): {', '.join(left_out)}", markup=False)
        return runner.connect(self.address, temp_dir=self.temp_dir, dashboard=self.dashboard, runtime_env=env,
                              metadata=metadata)


def _storage_in_cwd(config: StudyConfig) -> list[str]:
    """The study storage's path inside the working dir (left out of what is uploaded), if it is inside."""
    root, cwd = Path(config.storage.root).resolve(), Path.cwd().resolve()
    return [str(root.relative_to(cwd))] if root.is_relative_to(cwd) else []


class StudySession:
    """One driver's hold on one study: the lock, Ray, the tracker, signals; steps run inside."""

    def __init__(self, study: Study, config: StudyConfig, console: Console, cluster: Cluster,
                 on_open: Callable[[], None] | None = None):
        """`on_open`: run first under the lock (create the study dir, mend damaged records...)."""
        self.study, self.config, self.console, self.cluster = study, config, console, cluster
        self.on_open = on_open
        self.tracker = None
        self.jobs_address: str | None = None  # the cluster's Jobs API (a scheduled stage's job goes there)
        self.telemetry: StudyMetrics | None = None
        self._lock = None
        self._handlers: dict = {}

    # ------------------------------------------------------------ open / close

    def __enter__(self) -> Self:
        self._lock = self.study.lock()
        self._lock.__enter__()
        try:
            if self.on_open is not None:
                self.on_open()
            url = self.cluster.connect(self.console, _storage_in_cwd(self.config), metadata={
                "job_name": f"ablator {self.config.name}", "ablator_study": self.config.name,
                "ablator_study_id": self.study.study_id, "ablator_dir": str(self.study.path.resolve())})
            if url:
                self.study.set_info(dashboard=url)  # `ablator status` shows it while the study runs
                if self.cluster.address is not None:  # a cluster's Jobs API outlives this driver
                    self.jobs_address = url
            self.telemetry = StudyMetrics(self.config.name, self.study.study_id,
                                          self.config.metrics.primary.name, self.config.metrics.primary.mode)
            for record in self.study.records():
                self.telemetry.update(record)
            self.console.print(f"Study [bold]{self.config.name}[/bold] in {self.study.path}"
                               + (f"  (Ray dashboard: {url})" if url else ""), soft_wrap=True)
            res = self.config.resources
            if res.gpu_memory_mb:
                from .execution.gpus import cluster_gpus_mb, with_gpu_fraction

                nodes = ray.nodes()
                res = with_gpu_fraction(res, cluster_gpus_mb(nodes), sum(n.get("Alive", False) for n in nodes))
                self.config = self.config.model_copy(update={"resources": res})
                self.console.print(f"resources.gpu_memory_mb {res.gpu_memory_mb:g} MiB: gpus_per_trial "
                                   f"{res.gpus_per_trial:g} (of the cluster's smallest GPU)")
            check_feasible(res, ray.nodes, self.console.print)
            self._handlers = interrupt.catch()
            from .tracking import make_tracker

            self.tracker = make_tracker(self.config, self.study, self.study.read_provenance(),
                                        echo=lambda line: self.console.print(line, markup=False, highlight=False))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self.tracker is not None:
                self.tracker.close()
            if self.telemetry is not None:  # on a cluster, its Prometheus sees the final counts first
                self.telemetry.close(flush=self.cluster.address is not None)
            if isinstance(exc, (Interrupted, KeyboardInterrupt)):
                self.console.print(f"[yellow]Interrupted.[/yellow] Finished trials are kept; continue with "
                                   f"`ablator resume {self.study.path}`", soft_wrap=True)
        finally:
            interrupt.restore(self._handlers)
            self._lock.__exit__(None, None, None)

    # ------------------------------------------------------------ steps

    def ablation(self, rerun: list[planning.Variant] | None = None) -> bool:
        """Run every tier of the ablation stage; False when a tier gate stopped the study."""
        study, config = self.study, self.config
        started = time.time()
        study.set_stage("ablation", "running", started=started)
        tiers = [t.name for t in config.tiers.stages] if config.tiers else [None]
        for i, tier in enumerate(tiers):
            specs = planning.ablation_trials(config, seeds=self._seeds_so_far(tier), tier=tier)
            if rerun:
                names = {v.name for v in rerun}
                for spec in specs:
                    if spec.variant in names:
                        study.remove_trial(spec.trial_id)
            self.execute(specs, label=tier or "ablation")
            if isinstance(config.seeds, AdaptiveSeeds):
                adaptive_seeds(study, config, self.console, tier, self.execute)
            if config.analysis.check_determinism and i == len(tiers) - 1:
                from .analysis.reproducibility import repeat_spec

                # the baseline's first seed a second time (the report compares the two)
                self.execute([repeat_spec(config, tier)], label="determinism check")
            if tier is not None and i < len(tiers) - 1 and not self._tier_separates(tier):
                study.set_stage("ablation", "stopped", started=started,
                                reason=f"tier '{tier}' did not separate the variants")
                return False
        study.set_stage("ablation", "completed", started=started)
        return True

    def report(self) -> Verdicts:
        return write_report(self.study.path, self.console)

    def tuning(self, *, now: bool = False, n_trials: int | None = None) -> bool:
        """The tuning stage as `tuning.schedule` says (or `now`); True if it ran in this session."""
        tuning = self.config.tuning
        if not now:
            if not tuning.enabled:
                return False
            if tuning.schedule == "manual":
                self.study.set_stage("tuning", "manual")
                self.console.print(f"Tuning stage is manual: run `ablator tune {self.study.path}` when you like.")
                return False
            if isinstance(tuning.schedule, ScheduleAt) and schedule.in_future(tuning.schedule.at):
                self.schedule(tuning.schedule.at, jobs_address=self.jobs_address)
                return False
        from .tuning import run_tuning

        ran = run_tuning(self.study, self.config, console=self.console, tracker=self.tracker,
                         n_trials=n_trials, on_record=self.telemetry.update) is not None
        self.report()
        if ran:
            self.tracker.study_summary(self.study.path)  # the summary run, now with the best config
        return ran

    def schedule(self, at: datetime, jobs_address: str | None = None) -> None:
        """Record the tuning stage as scheduled for `at` (a schedule before is replaced, its Ray job
        stopped); with a Jobs API address, submit the Ray job that waits for the time and runs it."""
        at = schedule.utc(at)
        _stop_runner(self.study, self.console)
        self.study.set_stage("tuning", "scheduled", at=at.isoformat())
        path = self.study.path
        if jobs_address:
            job_id = jobs.submit(jobs_address, ["tune", str(path), "--wait"], self.config.name, self.console,
                                 upload=self.cluster.upload, name=schedule.job_name(self.config.name, at),
                                 extra_excludes=_storage_in_cwd(self.config))
            schedule.set_runner(self.study, job_id=job_id, address=jobs_address)
            self.console.print(
                f"Tuning stage scheduled for {at.isoformat()}: Ray job {job_id} waits for it on the cluster "
                f"(holding no CPU or GPU), then runs it there.\n"
                f"  see it: ablator status {path}\n"
                f"  cancel: ablator tune {path} --cancel --address {jobs_address}\n"
                f"  move:   ablator tune {path} --at NEW_TIME --address {jobs_address}",
                markup=False, highlight=False, soft_wrap=True)
            return
        tune = shlex.join(["ablator", "tune", str(path)])
        here = shlex.quote(str(Path.cwd()))
        self.console.print(
            f"Tuning stage scheduled for {at.isoformat()}. Nothing waits for it yet; start one of:\n"
            f"  {schedule.wait_command(path)}      (this machine: sleeps until then and runs it; "
            f"Ctrl-C leaves it scheduled)\n"
            f"  systemd-run --user --on-calendar='{at.strftime('%Y-%m-%d %H:%M:%S')} UTC' "
            f"--working-directory={here} {tune}      (this machine, no terminal kept open)\n"
            f"  sbatch --begin={at.strftime('%Y-%m-%dT%H:%M:%S')} launch/slurm/ablate.sbatch "
            f"tune {shlex.quote(str(path))}      (Slurm; --begin is in the cluster's local time)\n"
            f"  Kubernetes: launch/kuberay/tune-cronjob.yaml with schedule "
            f"\"{at.minute} {at.hour} {at.day} {at.month} *\" (UTC)\n"
            f"  a Ray cluster: ablator tune {path} --at {at.isoformat()} --address http://HEAD:8265",
            markup=False, highlight=False, soft_wrap=True,
        )

    # ------------------------------------------------------------ running trials

    def execute(self, specs, label: str = "ablation") -> list[TrialRecord]:
        """Write PENDING records for new specs, then run every spec not yet finished."""
        study = self.study
        plan = study.read_plan() or {"trials": []}
        known = {t["trial_id"] for t in plan["trials"]}
        plan["trials"] += [s.to_dict() for s in specs if s.trial_id not in known]
        study.write_plan(plan)
        todo = runner.prepare(study, specs)
        finished = len(specs) - len(todo)
        if finished:
            self.console.print(f"{finished} of {len(specs)} trials already finished: reused, not re-run")
        if not todo:
            return []
        tracker = self.tracker
        with StudyProgress(self.console, len(todo), label) as progress:
            def seen(record: TrialRecord):
                progress.seen(record)
                tracker.trial_update(record)
                self.telemetry.update(record)

            executor = runner.TrialExecutor(study, self.config, on_update=seen)
            try:
                return runner.run_trials(executor, todo, progress=_Ticker(progress, tracker, study))
            except (Interrupted, KeyboardInterrupt):
                stopped = executor.cancel_all()
                self.console.print(f"Stopped {len(stopped)} running trial(s); they stay PENDING.")
                raise
            except NoRoom as exc:
                executor.cancel_all()
                raise NoRoom(f"{exc}\n  The study stopped; its unfinished trials wait, none counted as failed. "
                             f"Once there is room: `ablator resume {study.path}`") from None
            finally:
                study.summary()  # the first `ablator status` after the run reads the cache, not the whole index

    def _seeds_so_far(self, tier) -> list[int]:
        """The initial seeds, plus adaptive seeds a previous driver already added to the baseline."""
        seeds = self.config.seed_list
        if isinstance(self.config.seeds, AdaptiveSeeds):
            for record in self.study.records():
                if (record.variant == planning.BASELINE and record.stage == "ablation"
                        and record.seed not in seeds
                        and (record.group is None or tier is None or str(record.group).startswith(tier))):
                    seeds.append(record.seed)
        return seeds

    def _tier_separates(self, tier: str) -> bool:
        """Synthetic-first gate: the next tier runs only if this one decided enough verdicts."""
        from .analysis.stats import DECIDED

        groups = self.report().groups
        decided = {name for label, group in groups.items() if label.split("/")[0] == tier
                   for name, v in group.components.items() if v.verdict in DECIDED}
        need = self.config.tiers.min_decided
        if len(decided) >= need:
            self.console.print(f"Tier '{tier}' separates the variants ({len(decided)} decided): next tier runs")
            return True
        self.console.print(
            f"[bold yellow]Stopping after tier '{tier}':[/bold yellow] {len(decided)} component(s) decided, "
            f"{need} needed (tiers.min_decided; decided = essential, harmful or negligible). A tier that "
            "decides nothing cheaply is unlikely to decide on the expensive tier; see report.md."
        )
        return False


def adaptive_seeds(study: Study, config: StudyConfig, console: Console, tier,
                   execute: Callable[..., object]) -> None:
    """Add seeds to undecided components (and the baseline, to stay paired) until decided or max.

    ``execute(specs, label=...)`` runs trial specs (the session: on Ray; simulations: a formula).
    """
    from .analysis import next_seed
    from .analysis.adaptive import takes_seed

    while (step := next_seed([r for r in study.records() if r.stage == "ablation"], config)) is not None:
        seed, open_components = step
        console.print(f"Adaptive seeds: {', '.join(open_components)} undecided; adding seed {seed}")
        chosen = [planning.Variant()] + [v for v in planning.variants(config) if takes_seed(v, open_components)]
        execute(planning.ablation_trials(config, seeds=[seed], only=chosen, tier=tier), label=f"seed {seed}")


class _Ticker:
    """Called each driver loop turn: refresh the progress, let the tracker tail new metrics, and
    keep the study index's summary cache current (so `ablator status` parses only recent lines)."""

    def __init__(self, progress, tracker, study: Study):
        self.progress, self.tracker, self.study = progress, tracker, study
        self._summarised = time.monotonic()

    def update(self) -> None:
        self.progress.update()
        self.tracker.poll()
        if time.monotonic() - self._summarised > SUMMARY_EVERY_S:
            self._summarised = time.monotonic()
            self.study.summary()


# ---------------------------------------------------------------- the three entry points


def launch(config_path: str | Path, *, address: str | None = None, variants: list[str] | None = None,
           dry_run: bool = False, console: Console | None = None, ray_temp_dir: str | None = None,
           dashboard: bool = True, upload: bool = True, overrides: list[Override] = ()) -> Study | None:
    """`ablator launch`: run the study of a YAML file (or continue it), every stage due now."""
    console = console or Console()
    config = load_config(config_path, overrides)
    chosen = [_variant(config, name) for name in variants] if variants else None
    if dry_run:
        print_plan(config, console)
        return None
    study = Study(study_dir_for(config))

    def open_study() -> None:  # under the lock: of two first launches, one runs
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

    cluster = Cluster(address, ray_temp_dir, dashboard, upload)
    with StudySession(study, config, console, cluster, on_open=open_study) as session:
        _all_stages(session, rerun=chosen)
    return study


def resume(study_dir: str | Path, *, address: str | None = None, console: Console | None = None,
           ray_temp_dir: str | None = None, dashboard: bool = True, retry_failed: bool = False,
           upload: bool = True) -> Study:
    """`ablator resume`: complete a study; finished trials are never re-run."""
    console = console or Console()
    study = Study(Path(study_dir).resolve())
    if not study.exists():
        raise StudyError(f"{study_dir} is not a study directory (no study.json)")
    config = load_config(study.config_path)

    def open_study() -> None:
        study.check()
        mend_records(study, console)
        if retry_failed:
            for record in study.records():
                if record.state == FAILED and record.stage == "ablation":
                    study.trial(record.trial_id).update(state=PENDING)

    cluster = Cluster(address, ray_temp_dir, dashboard, upload)
    with StudySession(study, config, console, cluster, on_open=open_study) as session:
        _all_stages(session)
    return study


def tune(study_dir: str | Path, *, n_trials: int | None = None, at: datetime | None = None, wait: bool = False,
         cancel: bool = False, address: str | None = None, console: Console | None = None,
         ray_temp_dir: str | None = None, dashboard: bool = True, upload: bool = True) -> Study:
    """`ablator tune DIR`: run (or continue, or extend) the tuning stage now; or schedule it `at`
    (a schedule before is moved); `wait` for the scheduled time, then run it; or `cancel` the schedule."""
    from .tuning.space import tuning_plan
    from .tuning.stage import not_ready, nothing_to_tune

    console = console or Console()
    study = Study(Path(study_dir).resolve())
    if cancel:
        cancel_schedule(study, console, address)
        return study
    if n_trials is not None and n_trials < 1:
        raise UserError("--n-trials must be at least 1")
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
        jobs_address = None if wait else _jobs_address(study, address)
        with study.lock():
            StudySession(study, config, console, cluster).schedule(at, jobs_address)
        if not wait:
            return study
    due = None
    if wait:
        due = schedule.scheduled_at(study)
        if due is None:
            raise StudyError(f"Nothing to wait for: the tuning stage of {study.path} is "
                             f"{schedule.stage(study).get('state', 'not started')}, not scheduled. Schedule it with "
                             f"`ablator tune {study.path} --at TIME`, or run it now without --wait.")
        if not _wait(study, due, console):
            return study
    _tune_when_free(study, config, console, cluster, n_trials, due)
    return study


def cancel_schedule(study: Study, console: Console, address: str | None = None) -> None:
    """`ablator tune DIR --cancel`: stop the scheduled stage's Ray job; the stage becomes manual."""
    at = schedule.scheduled_at(study)
    if at is None:
        raise StudyError(f"Nothing to cancel: the tuning stage of {study.path} is "
                         f"{schedule.stage(study).get('state', 'not started')}, not scheduled.")
    with study.lock():
        _stop_runner(study, console, address)
        study.set_stage("tuning", "manual", cancelled=at.isoformat())
    console.print(f"The tuning stage scheduled for {at.isoformat()} is cancelled; it is manual now: run "
                  f"`ablator tune {study.path}` when you like.", soft_wrap=True)


class _NotScheduled(Exception):
    """Under the study lock, a waiting runner finds its stage no longer scheduled (run, moved, cancelled)."""


def _stop_runner(study: Study, console: Console, address: str | None = None) -> None:
    """Stop the Ray job that waits for a scheduled stage, if one does (`address` overrides the recorded one).

    A `tune --wait` process needs no stopping: it sees the schedule change and ends itself.
    """
    runner = schedule.stage(study).get("runner") or {} if schedule.scheduled_at(study) else {}
    if "job_id" not in runner:
        return
    where = address if jobs.is_job_address(address) else runner["address"]
    state = jobs.stop(where, runner["job_id"])
    console.print(f"Stopped Ray job {runner['job_id']} on {where}, which waited for the old schedule"
                  if state in jobs.ALIVE else f"Ray job {runner['job_id']} on {where} was {state.lower()} already",
                  soft_wrap=True)


def _jobs_address(study: Study, address: str | None) -> str | None:
    """The Jobs API a scheduled stage's Ray job goes to: `--address http://…`, the dashboard of the
    cluster at `--address` (auto, host:port, ray://), or the cluster of the schedule it replaces."""
    if jobs.is_job_address(address):
        return address
    if address:
        url = runner.connect(address)
        ray.shutdown()
        return url
    return (schedule.stage(study).get("runner") or {}).get("address") if schedule.scheduled_at(study) else None


def _wait(study: Study, at: datetime, console: Console) -> bool:
    """Sleep until the scheduled time; False when the schedule changed meanwhile."""
    if not schedule.in_ray_job():  # a Ray job's runner is recorded by whoever submitted it
        schedule.set_runner(study, **schedule.this_process())
    console.print(f"Waiting until {at.isoformat()} to run the tuning stage of {study.path} "
                  "(Ctrl-C leaves it scheduled).", soft_wrap=True)
    try:
        due = schedule.wait_until(study, at)
    except KeyboardInterrupt:
        raise Interrupted(signal.SIGINT, f"Stopped waiting: the tuning stage of {study.path} stays scheduled "
                                         f"for {at.isoformat()}.") from None
    if not due:
        console.print(f"The tuning stage of {study.path} is no longer scheduled for {at.isoformat()} "
                      f"(now: {schedule.stage(study).get('state')}): this runner stops.", soft_wrap=True)
    return due


def _tune_when_free(study: Study, config: StudyConfig, console: Console, cluster: Cluster,
                    n_trials: int | None, due: datetime | None) -> None:
    """Run the tuning stage now. For a schedule (`due`), wait while another driver holds the study
    (its ablation still running), and run only if the stage is still scheduled for `due` once the lock
    is ours: of two runners for one schedule, one runs it."""
    def still_due() -> None:
        if due is not None and schedule.scheduled_at(study) != due:
            raise _NotScheduled(f"The tuning stage of {study.path} is no longer scheduled for {due.isoformat()} "
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
        except _NotScheduled as exc:
            console.print(str(exc), soft_wrap=True)
            return


def mend_records(study: Study, console: Console) -> list[str]:
    """Move every unreadable record.json aside and make its trial PENDING; return their ids.

    The trial's spec comes from plan.json (or the study index); its metrics and checkpoint
    stay, so the re-run continues from the last checkpoint. Nothing else is touched.
    """
    damaged = study.damaged_records()
    if not damaged:
        return []
    specs = {t["trial_id"]: t for t in study.read_plan().get("trials", [])}
    indexed = {r.trial_id: r for r in study.records()}
    mended = []
    for path, problem in damaged:
        tid = path.parent.name
        spec = specs.get(tid) or (indexed[tid].to_json() if tid in indexed else None)
        store = study.trial(tid)
        aside = store.set_aside()
        console.print(f"[yellow]{path}: {escape(problem)}[/yellow]; moved to {aside.name}"
                      + ("; the trial runs again" if spec else "; not in the plan: left out"))
        if spec:
            fields = {k: spec[k] for k in TrialSpec.__dataclass_fields__ if k in spec}
            store.write(runner.new_record(TrialSpec(**fields)))
            mended.append(tid)
    return mended


def _all_stages(session: StudySession, rerun=None) -> None:
    completed = session.ablation(rerun)
    interrupt.check()
    session.report()
    session.tracker.study_summary(session.study.path)
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


def write_report(study_path: Path, console: Console) -> Verdicts:
    """The study's report: the analysis of the ablation, with the tuning stage's section kept.

    Composed here, above both layers: the analysis knows nothing of tuning.
    """
    from .analysis import build_report
    from .analysis.html import write_html
    from .tuning.report import keep_tuning_section

    path = Path(study_path) / "report.md"
    old = path.read_text() if path.exists() else ""
    verdicts = build_report(study_path, console=console)
    if old:
        path.write_text(keep_tuning_section(old, path.read_text()))
        write_html(study_path)
    return verdicts
