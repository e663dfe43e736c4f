"""The body of one trial attempt, run inside a Ray worker process.

Worker isolation: an attempt that fails (exception, timeout, stall) records its error and
then ends its worker process, so no later trial inherits a broken CUDA context or module
state. Healthy attempts return normally and their worker is reused.
"""

from __future__ import annotations

import functools
import os
import platform
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import load_yaml, resolve_callable
from ..errors import UserError
from ..integrations.script import kill_running, script_trainable
from ..ledger import COMPLETED, RUNNING, Study, TrialRecord, TrialStore, as_no_room
from ..paths import get_path
from ..provenance import hardware
from ..trial import CUBLAS_WORKSPACE, TrialContext, TrialStopped, set_seeds
from . import distributed

_hardware = functools.cache(hardware)  # once per worker process

WORKER_DIED = "the worker running this attempt died (process killed, out of memory or node lost)"
#: the exit status of a worker that ended itself after a failed attempt
FAILED_EXIT = 3


@functools.cache
def _deterministic(study_path: str) -> bool:
    """reproducibility.deterministic of the study (read once per worker process)."""
    data, _ = load_yaml(Study(study_path).config_path)
    return bool(get_path(data, "reproducibility.deterministic", False))


class Watchdog:
    """Ends the attempt when it runs past `timeout` or goes `stall` seconds without a report."""

    def __init__(self, store: TrialStore, timeout: float | None, stall: float | None):
        self.store, self.timeout, self.stall = store, timeout, stall
        self.started = self.last_report = time.monotonic()
        self.lock = threading.Lock()  # held by whoever ends the attempt (the trial or the watchdog)
        self.done = threading.Event()
        if timeout or stall:
            threading.Thread(target=self._watch, daemon=True, name="ablator-watchdog").start()

    def reported(self) -> None:
        self.last_report = time.monotonic()

    def _watch(self) -> None:
        step = min(x for x in (self.timeout, self.stall, 1.0) if x)
        while not self.done.wait(step):
            now = time.monotonic()
            why = None
            if self.timeout and now - self.started > self.timeout:
                why = f"timed out after {self.timeout:g} s"
            elif self.stall and now - self.last_report > self.stall:
                why = f"stalled: no report for {self.stall:g} s"
            if why and self.lock.acquire(blocking=False):
                _record_error(self.store, why, None)
                kill_running()  # a script trainable's process group ends with this attempt
                sys.stderr.flush()
                os._exit(FAILED_EXIT)  # the hung trial cannot be stopped any other way


def _project_on_path(code_dir: str | None) -> str:
    """Put the user's project on sys.path; return its directory on this machine."""
    code_dir = code_dir if code_dir and os.path.isdir(code_dir) else os.getcwd()
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    return code_dir


@dataclass(frozen=True)
class Attempt:
    """Everything one Ray task needs to run one attempt of a trial (each rank of a group gets the same)."""

    study_path: str
    spec: dict
    config: dict
    entry: str | dict  # "module:function", or a script trainable as a plain dict
    code_dir: str | None  # the user's project on this machine (None: the working dir Ray shipped)
    threads: int
    number: int  # the attempt's number (1 for a trial's first)
    events: Any = None  # the actor an attempt tells that it started (runner.Events)
    trial_timeout: float | None = None
    stall_timeout: float | None = None
    device: str | None = None
    stop_hook: Callable[[int, dict], bool] | None = None
    world_size: int = 1


def run_attempt(attempt: Attempt, master: tuple | None = None) -> TrialRecord:
    """Run one attempt of a trial (rank 0 of a group when `world_size` > 1); record it durably.

    `master`: the rendezvous store's host and port and the attempt's key prefix there (a group only).
    A previous attempt that left the record RUNNING without an end died with its worker:
    that is recorded as its error before this attempt starts from the last checkpoint.
    A trial whose record.json says it has ended (the study index, not fsynced here, lost its
    last line) is not run again: its record is returned, and written to the index afresh.
    """
    now = time.time()
    a, spec = attempt, attempt.spec
    code_dir = _project_on_path(a.code_dir)
    trials = Path(a.study_path) / "trials"
    store = TrialStore(trials / spec["trial_id"])
    record = store.read()
    if record.finished:
        store.write(record, sync_index=False)  # a fresh line: whatever the index lost, it holds this record
        return record
    if record.attempt_started:
        last_seen = max([r["time"] for r in store.history()[-1:]] + [record.attempt_started])
        record.duration_s += last_seen - record.attempt_started
        record.add_error(WORKER_DIED)
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES") if a.device == "cuda" else None
    deterministic = _deterministic(a.study_path)
    if deterministic:  # cuBLAS reads it when CUDA starts: before any CUDA call in this process
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    record = record.model_copy(update={
        "state": RUNNING, "attempts": record.attempts + 1, "attempt_started": now,
        "started_at": record.started_at or now, "host": platform.node(), "pid": os.getpid(),
        "hardware": _hardware(), "gpu_ids": gpus, "node_id": _node_id(), "ranks": [],
        "reproducibility": {"deterministic": deterministic,
                            "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}})
    store.write(record, sync_index=False)
    if a.events is not None:
        a.events.put.remote(record)

    watchdog = Watchdog(store, a.trial_timeout, a.stall_timeout)

    def hook(step, row):
        watchdog.reported()
        return bool(a.stop_hook and a.stop_hook(step, row))

    source = TrialStore(trials / spec["source_trial"]) if spec.get("source_trial") else None
    set_seeds(spec["seed"], a.threads, deterministic)
    ctx = TrialContext(a.config, spec["seed"], store, trial_id=spec["trial_id"], variant=spec["variant"],
                       removed=spec["removed"], stage=spec["stage"], purpose=spec["purpose"], attempt=record.attempts,
                       source=source, stop_hook=hook, device=a.device, world_size=a.world_size)
    stopped = False
    try:
        if a.world_size > 1:
            _join(ctx, master, a.trial_timeout, store, a.events)
        _trainable(a.entry, code_dir)(ctx)
    except TrialStopped:
        stopped = True
    except BaseException as exc:
        if not watchdog.lock.acquire(blocking=False):
            time.sleep(60)  # the watchdog is ending this process
        watchdog.done.set()
        if _worker_stopped(exc):
            raise  # the worker is being stopped (Ctrl-C, preemption): the driver records it, not a failure
        room = as_no_room(exc)
        if room is not None:
            raise room from None  # a full disk is not the trial's failure: the driver stops the study
        if a.world_size > 1:  # the driver records the group's failure (another rank's may have come first)
            distributed.report_failure(a.events, spec["trial_id"], record.attempts, 0, f"{type(exc).__name__}: {exc}",
                                       traceback.format_exc(), getattr(exc, "retryable", True))
        else:
            _record_error(store, f"{type(exc).__name__}: {exc}", traceback.format_exc(),
                          retryable=getattr(exc, "retryable", True))
        sys.stderr.write(f"trial {spec['trial_id']} attempt {record.attempts} failed: "
                         f"{type(exc).__name__}: {exc}\n")
        sys.stderr.flush()
        os._exit(FAILED_EXIT)  # worker isolation: this process never runs another trial
    if not watchdog.lock.acquire(blocking=False):
        time.sleep(60)
    watchdog.done.set()
    distributed.destroy()
    store.sync_metrics()  # the lines the last checkpoints carried: durable before the attempt's end
    record = store.read()
    history = store.history()
    final = history[-1] if history else ctx.final
    record = record.model_copy(update={
        "state": COMPLETED,
        "final": {k: v for k, v in final.items() if k not in ("step", "attempt", "time")} if final else final,
        "stopped_early": stopped,
        "ended_at": time.time(),
        "duration_s": record.duration_s + time.time() - now,
        "attempt_started": None,
        "data_fingerprints": ctx.fingerprints or record.data_fingerprints,
    })
    if source is not None:
        source_record = source.read()
        record.saved_s = source_record.duration_s if source_record else 0.0
    store.write(record, sync_index=False)
    return record


def _join(ctx: TrialContext, master: tuple, timeout: float | None, store: TrialStore | None = None,
          events=None) -> None:
    """Join the trial's process group; rank 0 records where every rank runs; every rank pins the checkpoint."""
    import torch.distributed as dist

    placement, ctx.local_rank = distributed.init(ctx.rank, ctx.world_size, master, ctx._device, timeout)
    if store is not None:
        record = store.read()
        record.ranks = placement
        store.write(record, sync_index=False)  # a worker's write, as the attempt's start
        if events is not None:
            events.put.remote(record)
    ctx.pin_checkpoint()
    dist.barrier()  # no rank reads the checkpoint after rank 0 saved a newer one


def run_rank(attempt: Attempt, rank: int, master: tuple) -> None:
    """Run rank `rank` > 0 of a trial's attempt: the trainable in the group, nothing recorded.

    A rank that fails tells the driver why and ends its worker process (worker isolation).
    """
    a, spec = attempt, attempt.spec
    code_dir = _project_on_path(a.code_dir)
    store = TrialStore(Path(a.study_path) / "trials" / spec["trial_id"])
    set_seeds(spec["seed"], a.threads, _deterministic(a.study_path))
    ctx = TrialContext(a.config, spec["seed"], store, trial_id=spec["trial_id"], variant=spec["variant"],
                       removed=spec["removed"], stage=spec["stage"], purpose=spec["purpose"], attempt=a.number,
                       device=a.device, rank=rank,
                       world_size=a.world_size)
    try:
        _join(ctx, master, a.trial_timeout)
        _trainable(a.entry, code_dir)(ctx)
    except TrialStopped:
        pass
    except BaseException as exc:
        if _worker_stopped(exc):
            raise
        distributed.report_failure(a.events, spec["trial_id"], a.number, rank, f"{type(exc).__name__}: {exc}",
                                   traceback.format_exc(), getattr(exc, "retryable", True))
        sys.stderr.write(f"trial {spec['trial_id']} attempt {a.number} rank {rank} failed: "
                         f"{type(exc).__name__}: {exc}\n")
        sys.stderr.flush()
        os._exit(FAILED_EXIT)
    distributed.destroy()


def _node_id() -> str | None:
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def _trainable(entry: str | dict, code_dir: str):
    """The trainable; one that cannot be imported on this node is a UserError (no retry helps).

    A dict is a script trainable ({script, args, script_overrides}) of the project at `code_dir`.
    """
    if isinstance(entry, dict):
        if not os.path.isfile(os.path.join(code_dir, entry["script"])):
            raise UserError(f"the script '{entry['script']}' is not in {code_dir} on {platform.node()}")
        return script_trainable(entry, code_dir)
    try:
        return resolve_callable(entry)
    except ValueError as exc:
        raise UserError(f"the trainable '{entry}' cannot be loaded on {platform.node()}: {exc}") from None


def _worker_stopped(exc: BaseException) -> bool:
    """Ctrl-C, or Ray ending this worker (a SIGTERM, its raylet gone): Ray raises SystemExit in the running
    trial and marks it `ray_terminate_msg`. The attempt is then recorded as its worker's death, not as the
    trial's error (a trainable's own `sys.exit` is)."""
    return isinstance(exc, KeyboardInterrupt) or (isinstance(exc, SystemExit) and hasattr(exc, "ray_terminate_msg"))


def _record_error(store: TrialStore, error: str, tb: str | None, retryable: bool = True) -> None:
    """Close the running attempt with its error; the driver restarts it only if a retry can help.

    An exception from the trainable may help itself on a retry (a flaky node, a lost file);
    an orchestrator error that says it cannot (``retryable = False``: a UserError) does not.
    """
    store.sync_metrics()  # the rows the checkpoint carried, for a trial that may not run again
    record = store.read()
    now = time.time()
    record.add_error(error, traceback=tb, retryable=retryable)
    record.duration_s += now - (record.attempt_started or now)
    record.attempt_started = None
    store.write(record, sync_index=False)
