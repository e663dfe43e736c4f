"""The driver side: submit trials as Ray tasks, restart them, record the outcome.

Ray retries a trial whose attempt raised or whose worker died (``max_retries`` with
``retry_exceptions``); each attempt resumes from the trial's last checkpoint in the
study directory. Once the retries are spent the driver records the trial FAILED and
the study goes on.
"""

from __future__ import annotations

import os
import socket
import time
from collections import deque
from typing import Callable, Iterable

import ray

from ..config import StudyConfig
from ..errors import ClusterError
from ..ledger import COMPLETED, FAILED, PENDING, RUNNING, Study
from ..plan import TrialSpec
from .worker import run_attempt

POLL_S = 1.0


def connect(address: str | None = None, temp_dir: str | None = None, dashboard: bool = True,
            num_cpus: int | None = None) -> str | None:
    """Start embedded local Ray (no address) or join a cluster; return the dashboard URL."""
    if ray.is_initialized():
        return None
    kwargs: dict = {"address": address, "log_to_driver": True, "configure_logging": False}
    if address is None:
        kwargs.update(include_dashboard=dashboard, num_cpus=num_cpus)
        if temp_dir:
            kwargs["_temp_dir"] = temp_dir
    try:
        _reachable(address)
        ctx = ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError, OSError) as exc:
        raise ClusterError(f"could not {'join the Ray cluster at ' + address if address else 'start a local Ray'}: "
                          f"{exc}") from None
    url = getattr(ctx, "dashboard_url", None)
    return f"http://{url}" if url else None


def _reachable(address: str | None) -> None:
    """Fail fast on a `host:port` nobody listens on (Ray itself retries for minutes)."""
    if not address or "://" in address or address == "auto" or ":" not in address:
        return
    host, port = address.rsplit(":", 1)
    socket.create_connection((host, int(port)), timeout=10).close()


def new_record(spec: TrialSpec) -> dict:
    return {**spec.to_dict(), "state": PENDING, "attempts": 0, "errors": [], "final": None,
            "started_at": None, "ended_at": None, "duration_s": 0.0, "saved_s": 0.0,
            "attempt_started": None, "data_fingerprints": {}}


class TrialExecutor:
    """Runs trial specs on Ray with automatic restarts; other stages reuse it."""

    def __init__(self, study: Study, config: StudyConfig, entry: str | None = None,
                 on_update: Callable[[dict], None] | None = None, max_concurrent: int | None = None,
                 stop_hook_factory: Callable[[TrialSpec], Callable] | None = None):
        self.study = study
        self.config = config
        self.entry = entry or config.trainable
        self.on_update = on_update or (lambda record: None)
        self.max_concurrent = max_concurrent or config.resources.max_concurrent
        self.stop_hook_factory = stop_hook_factory
        self.inflight: dict[ray.ObjectRef, TrialSpec] = {}
        self._seen: dict[str, tuple] = {}
        self._remote = ray.remote(run_attempt)
        self._code_dir = os.getcwd()

    # ------------------------------------------------------------ capacity

    def slots(self) -> int:
        """How many trials may run at once: max_concurrent, else what the cluster fits."""
        res = self.config.resources
        total = ray.cluster_resources()
        fits = int(total.get("CPU", 1) // res.cpus_per_trial)
        if res.gpus_per_trial:
            fits = min(fits, int(total.get("GPU", 0) // res.gpus_per_trial))
        fits = max(1, fits)
        return min(fits, self.max_concurrent) if self.max_concurrent else fits

    # ------------------------------------------------------------ submit / wait

    def submit(self, spec: TrialSpec, config: dict | None = None) -> None:
        """Start a trial (its PENDING record must exist)."""
        res = self.config.resources
        entry = self.config.evaluate if spec.inference_only else self.entry
        config = config if config is not None else self.config.resolved(spec.removed, spec.overrides)
        hook = self.stop_hook_factory(spec) if self.stop_hook_factory else None
        ref = self._remote.options(
            num_cpus=res.cpus_per_trial,
            num_gpus=res.gpus_per_trial,
            max_retries=self.config.fault_tolerance.max_failures,
            retry_exceptions=True,
            name=spec.trial_id,
        ).remote(str(self.study.path.resolve()), spec.to_dict(), config, entry, self._code_dir,
                 max(1, int(res.cpus_per_trial)), hook)
        self.inflight[ref] = spec

    def wait(self, timeout: float = POLL_S) -> list[dict]:
        """Wait up to `timeout` for trials to end; return their final records."""
        done: list[dict] = []
        if not self.inflight:
            return done
        ready, rest = ray.wait(list(self.inflight), num_returns=1, timeout=timeout)
        if ready and rest:  # collect whatever else has finished, without waiting
            ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        for ref in ready:
            spec = self.inflight.pop(ref)
            try:
                record = ray.get(ref)
            except ray.exceptions.RayError as exc:
                record = self._record_failure(spec, exc)
            self._notify(record)
            done.append(record)
        return done

    def refresh(self) -> None:
        """Re-read in-flight records so progress and tracking see starts and restarts."""
        for spec in self.inflight.values():
            record = self.study.trial(spec.trial_id).read()
            if record is not None:
                self._notify(record)

    def cancel_all(self) -> None:
        for ref in list(self.inflight):
            ray.cancel(ref, force=True)
        self.inflight.clear()

    # ------------------------------------------------------------ records

    def _notify(self, record: dict) -> None:
        key = (record["state"], record["attempts"], bool(record.get("attempt_started")))
        if self._seen.get(record["trial_id"]) != key:
            self._seen[record["trial_id"]] = key
            self.on_update(record)

    def _record_failure(self, spec: TrialSpec, exc: Exception) -> dict:
        store = self.study.trial(spec.trial_id)
        record = store.read()
        cause = getattr(exc, "cause", None)
        last = record["errors"][-1] if record["errors"] else None
        if last is None or last["attempt"] != record["attempts"]:
            # the worker could not write its own error: it died, or never started
            record["errors"].append({"attempt": record["attempts"],
                                     "error": f"{type(cause or exc).__name__}: {cause or exc}",
                                     "traceback": str(exc), "time": time.time()})
        record.update(state=FAILED, ended_at=time.time(), attempt_started=None)
        store.write(record)
        return record


def run_trials(executor: TrialExecutor, specs: Iterable[TrialSpec], progress=None) -> list[dict]:
    """Run every spec to COMPLETED or FAILED; inference-only specs wait for their source trial."""
    study = executor.study
    queue = deque(specs)
    results: list[dict] = []
    blocked: list[TrialSpec] = []
    last_poll = 0.0
    while queue or blocked or executor.inflight:
        still_blocked = []
        for spec in blocked:
            source = study.trial(spec.source_trial).read() or {}
            if source.get("state") == COMPLETED:
                queue.appendleft(spec)
            elif source.get("state") == FAILED:
                record = _fail_without_running(study, spec, f"its source trial {spec.source_trial} FAILED")
                executor.on_update(record)
                results.append(record)
            else:
                still_blocked.append(spec)
        blocked = still_blocked
        slots = executor.slots()
        while queue and len(executor.inflight) < slots:
            spec = queue.popleft()
            if spec.inference_only:
                source = study.trial(spec.source_trial).read() or {}
                if source.get("state") != COMPLETED:
                    blocked.append(spec)
                    continue
            executor.submit(spec)
        if not executor.inflight:
            if not queue:  # nothing runs that could complete the blocked trials' sources
                for spec in blocked:
                    results.append(_fail_without_running(study, spec, f"source trial {spec.source_trial} did not complete"))
                blocked = []
            continue
        results.extend(executor.wait(timeout=POLL_S))
        now = time.monotonic()
        if now - last_poll >= POLL_S:
            executor.refresh()
            last_poll = now
        if progress is not None:
            progress.update()
    return results


def _fail_without_running(study: Study, spec: TrialSpec, why: str) -> dict:
    store = study.trial(spec.trial_id)
    record = store.read()
    record["errors"].append({"attempt": record["attempts"], "error": f"not run: {why}",
                             "traceback": None, "time": time.time()})
    record.update(state=FAILED, ended_at=time.time())
    store.write(record)
    return record


def prepare(study: Study, specs: Iterable[TrialSpec], annotate: Callable[[TrialSpec], dict] | None = None
            ) -> list[TrialSpec]:
    """Write a PENDING record for each new spec; return the specs not yet finished."""
    todo = []
    states = study.states()  # from the study index: no trial directory is opened
    for spec in specs:
        state = states.get(spec.trial_id)
        if state is None:
            study.trial(spec.trial_id).write({**new_record(spec), **(annotate(spec) if annotate else {})})
            state = PENDING
        if state in (PENDING, RUNNING):
            todo.append(spec)
    return todo
