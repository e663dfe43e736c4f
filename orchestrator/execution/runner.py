"""The driver side: submit trials as Ray tasks, restart failed attempts, record the outcome.

The driver owns restarts: each attempt is one Ray task without Ray-level retries. A failed
attempt (exception, timeout, stall) records its error and ends its worker process (see
worker.py); the driver reads that record once, restarts the trial from its last
checkpoint while failures stay within ``fault_tolerance.max_failures``, and otherwise
records it FAILED. A worker killed from outside (SIGKILL, Ray's memory monitor, a lost
node) is recorded here. State changes reach the driver as events: a task's result when an
attempt ends, and a message on a small actor when an attempt starts, so the driver never
polls trial files.
"""

from __future__ import annotations

import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable

import ray

from ..config import StudyConfig
from ..errors import ClusterError, NodeLost, NoRoom
from ..ledger import COMPLETED, FAILED, PENDING, RUNNING, SEARCH, VARIANT, Study, TrialRecord
from ..plan import TrialSpec
from . import interrupt, oom
from .group import Group, Groups, cause
from .nodes import died_under, stop_on_node_loss
from .resources import capacity, request
from .worker import WORKER_DIED, Attempt, run_attempt

POLL_S = 1.0
#: how long past trial_timeout the driver waits for a worker's own watchdog before killing it
#: (a trial stuck in C code that holds the GIL keeps the watchdog thread from running)
KILL_GRACE_S = 10.0
EVENTS_S = 0.25  # attempt starts are progress news: batched, not one round trip per trial


def connect(address: str | None = None, temp_dir: str | None = None, dashboard: bool = True,
            num_cpus: int | None = None, runtime_env: dict | None = None,
            metadata: dict[str, str] | None = None) -> str | None:
    """Start embedded local Ray (no address) or join a cluster; return the dashboard URL.

    `metadata` labels this driver's job in the dashboard's Jobs view (study name, id, dir).
    """
    try:
        _reachable(address)
    except OSError as exc:
        raise ClusterError(f"could not join the Ray cluster at {address}: {exc}") from None
    if ray.is_initialized():
        return None
    kwargs: dict = {"address": address, "log_to_driver": True, "configure_logging": False}
    if runtime_env:
        kwargs["runtime_env"] = runtime_env
    if metadata:
        from ray.job_config import JobConfig

        kwargs["job_config"] = JobConfig(metadata=metadata)
    if address is None:
        # Ray's own OOM retries ignore max_retries: the driver counts them instead
        kwargs.update(include_dashboard=dashboard, num_cpus=num_cpus, _system_config={"task_oom_retries": 0})
        if temp_dir:
            kwargs["_temp_dir"] = temp_dir
    try:
        with interrupt.around_ray_init():
            ctx = ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError, OSError) as exc:
        raise ClusterError(f"could not {'join the Ray cluster at ' + address if address else 'start a local Ray'}: "
                           f"{exc}") from None
    except Exception as exc:  # e.g. "The current node timed out during startup": its raylet ended
        if "node timed out during startup" not in str(exc):
            raise
        raise NodeLost(f"Lost the Ray node {'joining ' + address if address else 'of the embedded local Ray'} "
                       f"while it started: {exc}\n  Nothing ran; run the same command again (a study that ran "
                       "before continues with `ablator resume DIR`).") from None
    url = getattr(ctx, "dashboard_url", None)
    return f"http://{url}" if url else None


def _reachable(address: str | None) -> None:
    """Fail fast on a `host:port` nobody listens on (Ray itself retries for minutes)."""
    if not address or "://" in address or address == "auto" or ":" not in address:
        return
    host, port = address.rsplit(":", 1)
    socket.create_connection((host, int(port)), timeout=10).close()


def new_record(spec: TrialSpec) -> TrialRecord:
    """The PENDING record of a trial that has not run yet."""
    return TrialRecord(**spec.to_dict())


@ray.remote(num_cpus=0)
class Events:
    """Attempt starts, sent by workers and taken by the driver in batches.

    `take` also says when this actor was born: a new birth means it was re-created (Ray's
    memory monitor may kill it) and the news it held is lost, so the driver reads it again
    from the in-flight trials' records.
    """

    def __init__(self):
        self.items: list = []
        self.born = time.time()

    def put(self, item) -> None:
        self.items.append(item)

    def take(self) -> tuple[float, list]:
        items, self.items = self.items, []
        return self.born, items


class TrialExecutor:
    """Runs trial specs on Ray with driver-side restarts; other stages reuse it."""

    def __init__(self, study: Study, config: StudyConfig, entry: str | None = None,
                 on_update: Callable[[TrialRecord], None] | None = None, max_concurrent: int | None = None,
                 stop_hook_factory: Callable[[TrialSpec], Callable] | None = None):
        self.study = study
        self.config = config
        self.entry = entry or config.trainable
        if not isinstance(self.entry, str):  # a script trainable travels as a plain dict
            self.entry = self.entry.model_dump()
        self.on_update = on_update or (lambda record: None)
        self.max_concurrent = max_concurrent or config.resources.max_concurrent
        self.stop_hook_factory = stop_hook_factory
        self.inflight: dict[ray.ObjectRef, TrialSpec] = {}  # one ref per trial (rank 0's for a group)
        self._groups: dict[ray.ObjectRef, Group] = {}  # rank 0's ref -> its group (workers_per_trial > 1)
        self._idle = Groups()  # the placement groups of healthy attempts that ended, for the next ones
        self._ranks: dict[ray.ObjectRef, ray.ObjectRef] = {}  # ranks 1..'s refs -> rank 0's
        self._reports: dict[tuple[str, int], dict[int, dict]] = {}  # (trial, attempt) -> rank -> its failure
        self._pids: dict[int, str] = {}  # worker pid -> the trial it ran last (whose memory it was)
        self._hogs: dict[int, tuple[float, str, float]] = {}  # pid charged an OOM kill -> (when, host, GB)
        self._configs: dict[str, dict | None] = {}
        self._failures: dict[str, int] = {}
        self._numbers: dict[str, int] = {}  # trial id -> the number of its attempt in flight
        self._started: dict[str, float] = {}  # trial id -> when its running attempt started
        self._overdue: set[str] = set()
        self._taken = 0.0
        self._take: ray.ObjectRef | None = None  # the call to the Events actor not yet answered
        self._born: float | None = None  # when the Events actor was (re-)created
        self._remote = ray.remote(run_attempt)
        # restarted if it dies (e.g. chosen by Ray's memory monitor): starts are only progress news
        self._events = Events.options(max_restarts=-1, max_task_retries=-1).remote()
        self._code_dir = code_dir()
        self._fit: tuple[float, int] = (-1e9, 1)

    # ------------------------------------------------------------ capacity

    def _fits(self) -> int:
        now = time.monotonic()
        if now - self._fit[0] > 5:  # the cluster changes slowly; ask Ray at most every 5 s
            self._fit = (now, capacity(self.config.resources, ray.cluster_resources(), ray.nodes))
        return self._fit[1]

    def slots(self) -> int:
        """How many trials run at once: what the cluster fits now, at most max_concurrent."""
        fits = self._fits()
        return min(fits, self.max_concurrent) if self.max_concurrent else fits

    def limit(self) -> int:
        """Trials in flight at most: what fits plus `resources.max_pending` queued, so an autoscaler
        sees the demand (never more than max_concurrent)."""
        fits = self._fits()
        pending = self.config.resources.max_pending
        limit = fits + (fits if pending is None else pending)
        return min(limit, self.max_concurrent) if self.max_concurrent else limit

    # ------------------------------------------------------------ submit / wait

    def _task_prefix(self, spec: TrialSpec) -> str:
        """A trial's Ray task name before its attempt number: study/stage[/purpose]/variant/seed/attempt."""
        purpose = "" if spec.purpose in (VARIANT, SEARCH) else f"{spec.purpose}/"
        return f"{self.config.name}/{spec.stage}/{purpose}{spec.variant}/seed{spec.seed}/attempt"

    def submit(self, spec: TrialSpec, config: dict | None = None) -> None:
        """Start a trial (its PENDING record must exist)."""
        res, ft = self.config.resources, self.config.fault_tolerance
        entry = self.config.evaluate if spec.inference_only else self.entry
        self._configs[spec.trial_id] = config
        config = config if config is not None else self.config.resolved(spec.removed, spec.overrides)
        hook = self.stop_hook_factory(spec) if self.stop_hook_factory else None
        number = self._numbers[spec.trial_id] = self._attempt(spec)
        attempt = Attempt(study_path=str(self.study.path.resolve()), spec=spec.to_dict(), config=config,
                          entry=entry, code_dir=self._code_dir, threads=max(1, int(res.cpus_per_trial)),
                          number=number, events=self._events, trial_timeout=ft.trial_timeout,
                          stall_timeout=ft.stall_timeout, device="cuda" if res.gpus_per_trial else "cpu",
                          stop_hook=hook, world_size=res.workers_per_trial)
        name = f"{self._task_prefix(spec)}{number}"
        if res.workers_per_trial > 1:
            group = Group(res, name, attempt, self._idle.take())
            ref = group.head
            self._groups[ref] = group
            self._ranks.update((other, ref) for other in group.others)
        else:
            ref = self._remote.options(**request(res), max_retries=0, retry_exceptions=False,
                                       name=name).remote(attempt)
        self.inflight[ref] = spec

    def wait(self, timeout: float = POLL_S) -> list[TrialRecord]:
        """Wait up to `timeout` for attempts to end; restart failed ones; return final records."""
        done: list[TrialRecord] = []
        if not self.inflight:
            return done
        ready, rest = ray.wait([*self.inflight, *self._ranks], num_returns=1, timeout=timeout)
        if ready and rest:  # collect whatever else has finished, without waiting
            ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        interrupt.check()
        self.refresh()
        for ref in ready:
            head = self._ranks.pop(ref, ref)  # a group's other ranks stand for its rank 0
            if head not in self.inflight or (head is not ref and _ended_well(ref)):
                continue  # a group already ended, or a rank > 0 that finished its part
            spec = self.inflight.pop(head)
            self._started.pop(spec.trial_id, None)
            group = self._groups.pop(head, None)
            try:
                record = self._group_result(group, spec) if group else ray.get(head)
            except ray.exceptions.TaskCancelledError as exc:
                if spec.trial_id not in self._overdue:
                    continue  # cancelled by cancel_all: the caller records it
                self._overdue.discard(spec.trial_id)
                limit = self.config.fault_tolerance.trial_timeout
                record = self._failed_attempt(spec, exc, f"timed out after {limit:g} s (killed by the driver: "
                                                         "the trial did not answer its own timeout)")
            except ray.exceptions.RayError as exc:
                if isinstance(getattr(exc, "cause", None), NoRoom):  # the attempt found its disk full
                    self._pause(spec)
                    raise exc.cause from None
                if isinstance(exc, ray.exceptions.LocalRayletDiedError):  # the driver's own node, not the trial
                    self.inflight[head] = spec  # left PENDING with the others (stop_on_node_loss)
                    raise
                record = self._failed_attempt(spec, exc)
            if record.state == PENDING:  # a failed attempt with restarts left
                self.on_update(record)
                self.submit(spec, self._configs.get(spec.trial_id))
                continue
            self._configs.pop(spec.trial_id, None)
            self.on_update(record)
            done.append(record)
        self._kill_overdue()
        return done

    def _group_result(self, group: Group, spec: TrialSpec) -> TrialRecord:
        """End a group's attempt and record its outcome: a healthy group's placement group is kept
        for the next attempt while no other group waits for room; any other is removed (every rank
        still running stopped, its resources released)."""
        outcomes = group.outcomes()
        for other in group.others:
            self._ranks.pop(other, None)
        healthy = group.ended_well(outcomes)
        if healthy and len(self._groups) + len(self._idle) < self.slots():
            self._idle.keep(group.pg)
        else:
            group.stop()
        if not healthy:  # a rank that reports its failure ends its worker: a healthy group has no reports
            self.refresh(force=True)
        reports = self._reports.pop((spec.trial_id, group.attempt.number), {})
        full = isinstance(getattr(outcomes.get(0), "cause", None), NoRoom)
        if outcomes.get(0, False) is None or spec.trial_id in self._overdue or full:
            return ray.get(group.head)  # rank 0 recorded the trial (or the driver cancelled it: see wait)
        found = cause(outcomes, reports) or (0, ray.exceptions.WorkerCrashedError())
        rank, exc = found
        report = reports.get(rank)
        if report is not None:
            return self._failed_attempt(spec, exc, f"rank {rank}: {report['error']}", traceback=report["traceback"],
                                        retryable=report["retryable"])
        return self._failed_attempt(spec, exc, rank=rank)

    def _kill_overdue(self) -> None:
        """Kill attempts that ran past trial_timeout + KILL_GRACE_S without ending themselves."""
        limit = self.config.fault_tolerance.trial_timeout
        if not limit:
            return
        now = time.monotonic()
        for ref, spec in self.inflight.items():
            started = self._started.get(spec.trial_id)
            if started is not None and now - started > limit + KILL_GRACE_S and spec.trial_id not in self._overdue:
                self._overdue.add(spec.trial_id)
                ray.cancel(ref, force=True)

    def refresh(self, force: bool = False) -> None:
        """Pass on the attempt starts workers sent: one call to the actor at most every EVENTS_S, its
        answer passed on once it has come (the driver does not wait for it; with `force` it does, and
        asks once more, for what was sent up to now)."""
        if self._take is not None and (force or ray.wait([self._take], timeout=0)[0]):
            self._pass_on(*ray.get(self._take))
            self._take = None
        now = time.monotonic()
        if self._take is None and (force or (self.inflight and now - self._taken >= EVENTS_S)):
            self._taken = now
            self._take = self._events.take.remote()
            if force:
                self._pass_on(*ray.get(self._take))
                self._take = None

    def _pass_on(self, born: float, items: list) -> None:
        """Pass on one answer of the Events actor (its birth time, the starts and rank failures it held)."""
        running = {spec.trial_id for spec in self.inflight.values()}
        if self._born not in (None, born):  # re-created: what it held is lost
            records = [self.study.trial(trial_id).read() for trial_id in running]
            items += [r for r in records if r and r.attempt_started]
        self._born = born
        for record in items:
            if isinstance(record, dict):  # a rank of a group failed (distributed.report_failure)
                self._reports.setdefault((record["failure"], record["attempt"]), {})[record["rank"]] = record
            elif record.trial_id in running:  # a late start of an attempt that has ended is old news
                self._started.setdefault(record.trial_id, time.monotonic())
                self._pids.update((pid, record.trial_id) for pid in [record.pid, *(r["pid"] for r in record.ranks)])
                self.on_update(record)

    def cancel_all(self) -> list[str]:
        """Stop every in-flight trial; leave interrupted attempts PENDING (not failed); return their ids."""
        refs = list(self.inflight)
        for ref in refs:
            ray.cancel(ref, force=True)
        for group in self._groups.values():
            group.stop()
        self._groups.clear()
        self._ranks.clear()
        self._idle.release()
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=15)
        stopped = [spec.trial_id for spec in self.inflight.values() if self._pause(spec)]
        self.inflight.clear()
        return stopped

    def pause_all(self) -> list[str]:
        """Leave every in-flight trial PENDING without asking Ray (its node is gone); return their ids."""
        stopped = [spec.trial_id for spec in self.inflight.values() if self._pause(spec)]
        self.inflight.clear()
        self._groups.clear()
        self._ranks.clear()
        self._idle = Groups()  # Ray removes them with the driver's job
        return stopped

    def release(self) -> None:
        """Give back the placement groups kept for the next attempts (when no more trials come)."""
        self._idle.release()

    def _pause(self, spec: TrialSpec) -> bool:
        """Leave a stopped attempt PENDING (not failed); False if the trial had finished.

        On a full disk the record may not take the change: it stays RUNNING, and the next
        attempt notes the stopped one as ended without a result.
        """
        store = self.study.trial(spec.trial_id)
        record = store.read()
        if not record or record.state not in (PENDING, RUNNING):
            return False
        if record.attempt_started:
            record.duration_s += time.time() - record.attempt_started
        record.state, record.attempt_started = PENDING, None
        try:
            store.write(record)
        except NoRoom:
            pass
        return True

    # ------------------------------------------------------------ records

    def _attempt(self, spec: TrialSpec) -> int:
        """The number of the attempt about to start (named in its task, the dashboard's name)."""
        record = self.study.trial(spec.trial_id).read()
        return (record.attempts if record else 0) + 1

    def _failed_attempt(self, spec: TrialSpec, exc: Exception, error: str | None = None, *,
                        traceback: str | None = None, retryable: bool = True, rank: int | None = None
                        ) -> TrialRecord:
        """Record an attempt that ended without a result; PENDING to restart it, else FAILED.

        `rank`: the rank of a group whose failure ended the attempt (named in the error).
        """
        store = self.study.trial(spec.trial_id)
        record = store.read()
        started = record.attempt_started
        number = self._numbers.pop(spec.trial_id, record.attempts)
        if started or record.attempts < number:  # the worker could not record its end (nor perhaps its start)
            record.attempts = max(record.attempts, number)  # an attempt killed before it began is one too
            now = time.time()
            where, counted = ("" if rank is None else f"rank {rank}: "), True
            if error is None and isinstance(exc, ray.exceptions.OutOfMemoryError):
                pids = {record.pid, *(r["pid"] for r in record.ranks)} - {None}
                pids |= {pid for pid, trial in self._pids.items() if trial == spec.trial_id}  # earlier attempts too
                now_m, host = time.monotonic(), record.host or "its node"
                recent = {pid: gb for pid, (when, node, gb) in self._hogs.items() if node == host and now_m - when < 30}
                task = self._task_prefix(spec)
                error, counted = oom.charge(str(exc), pids, host, self._pids, self.config.name, recent, task)
                if counted:  # a trial charged its kill: others killed beside it may be spared
                    use = oom.memory_use(str(exc))
                    self._hogs.update((pid, (now_m, host, use[pid][0])) for pid in pids if pid in use)
                error = where + error
                spared = sum(not e.counted for e in record.errors)
                counted = counted or spared >= oom.INNOCENT_RERUNS
            elif error is None and isinstance(exc, ray.exceptions.NodeDiedError):  # not the trial's doing
                error, counted = where + died_under(str(exc)), False
            elif error is None and isinstance(exc, ray.exceptions.RayTaskError):
                error = f"{where}{type(exc.cause or exc).__name__}: {exc.cause or exc}"
            elif error is None:
                error = where + (WORKER_DIED if started else f"{type(exc).__name__}: {exc}")
            record.add_error(error, traceback=traceback or str(exc), retryable=retryable, counted=counted)
            record.duration_s += now - started if started else 0.0
            record.attempt_started = None
        elif not record.errors:  # it recorded a good end, then its task failed
            record.add_error(f"{type(exc).__name__}: {exc}")
        if record.errors[-1].counted:
            self._failures[spec.trial_id] = self._failures.get(spec.trial_id, 0) + 1
        failures = self._failures.get(spec.trial_id, 0)
        hopeless = record.errors and not record.errors[-1].retryable
        if failures <= self.config.fault_tolerance.max_failures and not hopeless:
            record.state = PENDING
        else:
            record.state, record.ended_at = FAILED, time.time()
        store.write(record)
        return record


def _ended_well(ref: ray.ObjectRef) -> bool:
    try:
        ray.get(ref)
        return True
    except ray.exceptions.RayError:
        return False


def code_dir() -> str | None:
    """The user's project dir for workers: the driver's cwd, or None inside a shipped working_dir."""
    shipped = ray.is_initialized() and ray.get_runtime_context().runtime_env.get("working_dir")
    return None if shipped else os.getcwd()


def run_trials(executor: TrialExecutor, specs: Iterable[TrialSpec],
               tick: Callable[[], None] | None = None,
               may_start: Callable[[TrialSpec], bool] | None = None) -> list[TrialRecord]:
    """Run every spec to COMPLETED or FAILED; inference-only specs wait for their source trial.

    `tick` is called on each turn of the loop (TrialObservers.tick: progress, tracker). `may_start(spec)`
    (a budget) is asked before each start: once it says no, nothing more starts, the running trials finish
    and the specs not started stay PENDING.
    """
    with stop_on_node_loss(executor):
        results = _run_trials(executor, specs, tick, may_start)
        executor.release()
    return results


def _run_trials(executor: TrialExecutor, specs: Iterable[TrialSpec],
                tick: Callable[[], None] | None, may_start: Callable[[TrialSpec], bool] | None = None
                ) -> list[TrialRecord]:
    study = executor.study
    queue = deque(specs)
    results: list[TrialRecord] = []
    blocked: dict[str, list[TrialSpec]] = {}  # source trial id -> specs waiting on it
    closed = False  # may_start said no: what has not started stays PENDING
    while queue or blocked or executor.inflight:
        limit = executor.limit()
        while queue and len(executor.inflight) < limit:
            if closed or (may_start is not None and not may_start(queue[0])):
                closed = True
                queue.clear()
                break
            spec = queue.popleft()
            if spec.inference_only:
                source = study.trial(spec.source_trial).read()
                state = source.state if source else None
                if state != COMPLETED:
                    if state == FAILED:
                        results.append(_not_run(executor, spec, f"its source trial {spec.source_trial} FAILED"))
                    else:
                        blocked.setdefault(spec.source_trial, []).append(spec)
                    continue
            executor.submit(spec)
        if not executor.inflight:
            if not queue:  # nothing runs that could complete the blocked trials' sources
                for waiting in blocked.values() if not closed else ():
                    for spec in waiting:
                        results.append(_not_run(executor, spec, f"source trial {spec.source_trial} did not complete"))
                blocked = {}
            continue
        for record in executor.wait(timeout=POLL_S):
            results.append(record)
            for spec in blocked.pop(record.trial_id, []):
                if record.state == COMPLETED:
                    queue.appendleft(spec)
                else:
                    results.append(_not_run(executor, spec, f"its source trial {spec.source_trial} FAILED"))
        if tick is not None:
            tick()
    return results


def _not_run(executor: TrialExecutor, spec: TrialSpec, why: str) -> TrialRecord:
    store = executor.study.trial(spec.trial_id)
    record = store.read()
    record.add_error(f"not run: {why}")
    record.state, record.ended_at = FAILED, time.time()
    store.write(record)
    executor.on_update(record)
    return record


def prepare(study: Study, specs: Iterable[TrialSpec], annotate: Callable[[TrialSpec], dict] | None = None
            ) -> list[TrialSpec]:
    """Write a PENDING record for each new spec; return the specs not yet finished.

    `annotate(spec)`: fields to set on a new record (e.g. ``{"tuning": {...}}``), checked by the model.
    """
    todo, new = [], []
    states = study.states()  # from the study index: no trial directory is opened
    for spec in specs:
        state = states.get(spec.trial_id)
        if state is None:
            record = new_record(spec)
            for key, value in (annotate(spec) if annotate else {}).items():
                setattr(record, key, value)
            new.append(record)
            state = PENDING
        if state in (PENDING, RUNNING):
            todo.append(spec)
    study.write_new(new)  # every record durable before any trial starts
    return todo
