"""One driver's hold on one study: the lock, Ray, the tracker, telemetry, signals; the stages run inside."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Self

import ray
from rich.console import Console

from .. import plan as planning
from ..analysis.seed_order import by_worth
from ..config import AdaptiveSeeds, ScheduleAt, StudyConfig
from ..errors import Interrupted, NodeLost, NoRoom
from ..execution import interrupt, nodes, rendezvous, runner
from ..execution.observers import TrialObservers
from ..execution.resources import check_feasible
from ..execution.telemetry import StudyMetrics
from ..ledger import VARIANT, Study, TrialRecord
from ..ledger.verdicts_json import Verdicts
from ..tuning import schedule
from .ablation import run_ablation
from .budget import BudgetGate, in_force
from .report import write_report
from .scheduling import schedule_tuning

#: while trials run, how often the driver brings the study index's status cache up to date
STATUS_CACHE_EVERY_S = 60.0


def study_dir_for(config: StudyConfig) -> Path:
    """The study directory: an absolute path fixed on the driver, whatever the workers' cwd."""
    return (Path(config.storage.root) / config.name).resolve()


class Cluster:
    """Where the session's trials run: embedded local Ray (address None) or a Ray cluster."""

    def __init__(self, address: str | None = None, temp_dir: str | None = None, dashboard: bool = True,
                 upload: bool = True):
        self.address, self.temp_dir, self.dashboard, self.upload = address, temp_dir, dashboard, upload

    def connect(self, console: Console, extra_excludes: list[str] = (),
                metadata: dict[str, str] | None = None) -> str | None:
        env = None
        if self.address not in (None, "auto") and self.upload:
            from ..execution.code import working_dir_env

            env, left_out = working_dir_env(Path.cwd(), extra_excludes)
            if left_out:
                console.print(f"Not uploaded (large files): {', '.join(left_out)}", markup=False)
        return runner.connect(self.address, temp_dir=self.temp_dir, dashboard=self.dashboard, runtime_env=env,
                              metadata=metadata)


def storage_in_cwd(config: StudyConfig) -> list[str]:
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
        #: every stage reports its trials' updates here; progress, tracker and telemetry subscribe
        self.observers = TrialObservers(console)
        self._lock = None
        self._handlers: dict = {}

    # ------------------------------------------------------------ open / close

    def __enter__(self) -> Self:
        self._lock = self.study.lock()
        self._lock.__enter__()
        try:
            if self.on_open is not None:
                self.on_open()
            interrupt.check()  # a stop signal while the driver started (deferred): the study exists now
            if self.config.resources.workers_per_trial > 1 and not str(self.cluster.address).startswith("ray://"):
                rendezvous.prepare()  # the driver's store for the groups' ranks opens while Ray starts
            url = self.cluster.connect(self.console, storage_in_cwd(self.config), metadata={
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
            self.observers.subscribe(self.telemetry.update, tick=_status_cache_every(self.study, STATUS_CACHE_EVERY_S))
            self.console.print(f"Study [bold]{self.config.name}[/bold] in {self.study.path}"
                               + (f"  (Ray dashboard: {url})" if url else ""), soft_wrap=True)
            res = self.config.resources
            if res.gpu_memory_mb:
                from ..execution.gpus import cluster_gpus_mb, with_gpu_fraction

                nodes = ray.nodes()
                res = with_gpu_fraction(res, cluster_gpus_mb(nodes), sum(n.get("Alive", False) for n in nodes))
                self.config = self.config.model_copy(update={"resources": res})
                self.console.print(f"resources.gpu_memory_mb {res.gpu_memory_mb:g} MiB: gpus_per_trial "
                                   f"{res.gpus_per_trial:g} (of the cluster's smallest GPU)")
            check_feasible(res, ray.nodes, self.console.print)
            self._handlers = interrupt.catch()
            from ..tracking import make_tracker

            self.tracker = make_tracker(self.config, self.study, self.study.read_provenance(),
                                        echo=lambda line: self.console.print(line, markup=False, highlight=False))
            self.observers.subscribe(self.tracker.trial_update, self.tracker.poll)
            interrupt.check()
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        lost = _node_lost(exc, self.study)
        try:
            if self.tracker is not None:
                self.tracker.close()
            if self.telemetry is not None:  # on a cluster, its Prometheus sees the final counts first
                self.telemetry.close(flush=self.cluster.address is not None)
            if isinstance(exc, (Interrupted, KeyboardInterrupt)):
                self.console.print(f"[yellow]Interrupted.[/yellow] Finished trials are kept; continue with "
                                   f"`ablator resume {self.study.path}`", soft_wrap=True)
                if isinstance(exc, Interrupted):
                    exc.told = True
        finally:
            interrupt.restore(self._handlers)
            self._lock.__exit__(None, None, None)
        if lost is not None:
            raise lost from None

    # ------------------------------------------------------------ steps

    def ablation(self, rerun: list[planning.Variant] | None = None) -> bool:
        """Run every tier of the ablation stage; False when a tier gate stopped the study."""
        return run_ablation(self.study, self.config, self.console, self.execute, self.report, rerun)

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
        from ..tuning import run_tuning

        ran = run_tuning(self.study, self.config, console=self.console, observers=self.observers,
                         n_trials=n_trials) is not None
        self.report()
        if ran:
            self.tracker.log_analysis(self.study.path)  # the analysis run, now with the best config
        return ran

    def schedule(self, at: datetime, jobs_address: str | None = None, n_trials: int | None = None) -> None:
        """Record the tuning stage as scheduled for `at` with its trial budget (a schedule before is
        replaced, its Ray job stopped); with a Jobs API address, submit the Ray job that waits for the
        time and runs it."""
        schedule_tuning(self.study, self.config, self.console, at, jobs_address, n_trials=n_trials,
                        upload=self.cluster.upload, extra_excludes=storage_in_cwd(self.config))

    # ------------------------------------------------------------ running trials

    def execute(self, specs, label: str = "ablation") -> list[TrialRecord]:
        """Write PENDING records for new specs, then run every spec not yet finished."""
        study = self.study
        plan = study.read_plan() or {"trials": []}
        known = {t["trial_id"] for t in plan["trials"]}
        plan["trials"] += [s.to_dict() for s in specs if s.trial_id not in known]
        study.write_plan(plan)
        res = self.config.resources
        todo = runner.prepare(study, specs, lambda spec: {"gpus": res.gpus_per_trial * res.workers_per_trial})
        finished = len(specs) - len(todo)
        if finished:
            self.console.print(f"{finished} of {len(specs)} trials already finished: reused, not re-run")
        if not todo:
            return []
        budget = in_force(study, self.config)
        gate = BudgetGate(study, self.config, budget) if budget is not None else None
        with self.observers.progress(len(todo), label):
            unsubscribe = self.observers.subscribe(gate.update) if gate else None
            executor = runner.TrialExecutor(study, self.config, on_update=self.observers.update)
            if isinstance(self.config.seeds, AdaptiveSeeds) and len(todo) > executor.slots():
                # more trials than free slots: first those with the most expected decisions per trial-hour
                todo = by_worth(todo, [r for r in study.records() if r.purpose == VARIANT], self.config)
            try:
                done = runner.run_trials(executor, todo, tick=self.observers.tick,
                                         may_start=gate.may_start if gate else None)
                if gate is not None and gate.reached:
                    raise gate.stop(study, len(todo) - len(done))
                return done
            except (Interrupted, KeyboardInterrupt):
                stopped = executor.cancel_all()
                self.console.print(f"Stopped {len(stopped)} running trial(s); they stay PENDING.")
                raise
            except NoRoom as exc:
                executor.cancel_all()
                raise NoRoom(f"{exc}\n  The study stopped; its unfinished trials wait, none counted as failed. "
                             f"Once there is room: `ablator resume {study.path}`") from None
            finally:
                if unsubscribe is not None:
                    unsubscribe()
                study.keep_status_cache()  # the next `ablator status` reads the cache, not the whole index


def _node_lost(exc: BaseException | None, study: Study) -> NodeLost | None:
    """A Ray failure outside the trial loops (the trial loops turn their own) that comes from the
    driver's node dying, as NodeLost; else None."""
    if not isinstance(exc, ray.exceptions.RayError):
        return None
    node = nodes.lost_node()
    return nodes.node_lost(nodes.describe(node), study.path) if node else None


def _status_cache_every(study: Study, every_s: float) -> Callable[[], None]:
    """A tick that keeps the study index's status cache current (so `ablator status` parses only
    recent lines), at most once every `every_s` seconds."""
    last = [time.monotonic()]

    def tick() -> None:
        if time.monotonic() - last[0] > every_s:
            last[0] = time.monotonic()
            study.keep_status_cache()
    return tick
