"""W&B tracking from the driver: every trial a run, the study one `analysis` run.

The driver calls `trial_update`, `poll`, `log_analysis` and `close`; each only
puts a key on the writers' queue (`writers.py`) and returns. A few writer threads
own every wandb object: they open a trial's run when it starts, log the new rows
of its `metrics.jsonl`, and finish the run with `final/<metric>` in its summary
when the trial ends (`runs.py`). At most `max_open_runs` runs are open at once
(each holds files in wandb's service): the least recently written one is closed
and resumed, under the same id, when it has new rows. Trials never import wandb.

Completeness. At start the writers look for trials W&B lacks part of (a killed
driver's, or a list a stopped one left, see `pending.py`) and write them. `close`
waits for the backlog with a progress line; when it must stop first (Ctrl-C, W&B
failing, no progress for `stall_timeout` s) it lists the trials not written in
`<study>/wandb_pending.json` and says how many; `ablator sync DIR` or the next
`ablator resume` writes them.

Failures. A W&B error (no network, quota, bad key, init timeout, disk) is reported
once, in one line; tracking then goes offline, or stops if even offline fails.
The ledger holds every result regardless.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import StudyConfig, load_config
from ..errors import AblatorError, Interrupted, StudyError
from ..ledger import PENDING, RUNNING, Study, TrialRecord
from . import pending, runs
from .analysis_run import has_report, write_analysis_run
from .base import NullTracker, Tracker
from .mode import api_key, import_wandb, is_wandb_failure, resolve_mode, stderr
from .writers import Gate, WorkQueue

logger = logging.getLogger("orchestrator.tracking")

_POLL, _START, _ANALYSIS, _CLOSE = "@poll", "@start", "@analysis", "@close"
INTERRUPT_GRACE = 10.0  # seconds W&B gets when the driver is interrupted
_STOP_RUN = object()  # queued value: finish this trial's run, the driver is stopping


class WandbTracker(Tracker):
    """Tracks a study in W&B (online or offline) from a few writer threads."""

    def __init__(
        self,
        config: StudyConfig,
        study: Study,
        provenance: dict,
        mode: str = "offline",
        *,
        echo: Callable[[str], None] | None = None,
        wandb_dir: str | Path | None = None,
        init_timeout: float = 30.0,
        finish_timeout: float = 60.0,
        stall_timeout: float = 120.0,
        poll_interval: float = 1.0,
        writers: int = 4,
        max_open_runs: int = 64,
        reopen_after: float = 10.0,
        secrets: tuple[str, ...] = (),
        warned: bool = False,
    ):
        if mode not in ("online", "offline"):
            raise ValueError(f"mode must be online or offline, not {mode!r}")
        self.study = study
        self.wb = runs.WandbStudy(config, study, provenance, mode, wandb_dir=wandb_dir,
                                    init_timeout=init_timeout, finish_timeout=finish_timeout,
                                    secrets=secrets)
        self.stall_timeout, self.poll_interval = stall_timeout, poll_interval
        self.max_open_runs, self.reopen_after = max(max_open_runs, writers), reopen_after
        self._echo = echo or stderr
        self._warned = warned  # True: the one warning line was already shown
        self._trials: dict[str, runs.TrialRun] = {}
        self._open: OrderedDict[str, runs.TrialRun] = OrderedDict()  # least recently written first
        self._open_lock = threading.Lock()
        self._work = WorkQueue()
        self._gate = Gate()
        self._closed = False
        self._closing = threading.Event()
        self._stop = threading.Event()
        self._analysis_dir: Path | None = None
        self._analysis_written = True
        self.written = 0  # runs finished with their trial's final state by this tracker
        self.peak_open = 0  # the most runs open at once (bounded by max_open_runs)
        self._work.put(_START)
        self._threads = [threading.Thread(target=self._writer, name=f"ablator-wandb-{i}", daemon=True)
                         for i in range(max(1, writers))]
        for thread in self._threads:
            thread.start()

    @property
    def mode(self) -> str:
        return self.wb.mode

    @property
    def runs_dir(self) -> Path:
        return self.wb.runs_dir

    @property
    def errors(self) -> list[str]:
        return self.wb.errors

    # ------------------------------------------------------------ driver API (any thread, O(µs))

    def trial_update(self, record: TrialRecord) -> None:
        if not self._closed:  # a copy: the driver may go on changing its record's fields
            self._work.put(record.trial_id, record.model_copy())

    def poll(self) -> None:
        if not self._closed:
            self._work.put(_POLL, keep=True)

    def log_analysis(self, study_dir: str | Path) -> None:
        if not self._closed:
            self._queue_analysis(study_dir)

    def _queue_analysis(self, study_dir: str | Path) -> None:
        self._analysis_dir, self._analysis_written = Path(study_dir), False
        self._work.put(_ANALYSIS, last=True)

    def close(self, timeout: float | None = None) -> None:
        """Write the backlog (a progress line every few seconds), then finish every run.

        Stops early on Ctrl-C (then re-raised), when W&B makes no progress for
        `stall_timeout` s, or after `timeout` s; the trials not written are listed. Called
        while an interrupt (Ctrl-C, SIGTERM) stops the driver, it gives W&B 10 s at most.
        """
        if self._closed:
            return
        self._closed = True
        if isinstance(sys.exc_info()[1], (KeyboardInterrupt, Interrupted)):
            timeout = min(timeout if timeout is not None else INTERRUPT_GRACE, INTERRUPT_GRACE)
        self._work.put(_CLOSE, last=True)
        self._closing.set()
        started = progress_at = time.monotonic()
        last_left, moved_at = len(self._work), started
        reason = None
        try:
            while alive := [t for t in self._threads if t.is_alive()]:
                alive[0].join(0.2)
                now, left = time.monotonic(), len(self._work)
                if left != last_left:
                    last_left, moved_at = left, now
                backlog = sum(not key.startswith("@") for key in self._work.keys() if key)  # noqa: SIM118
                if now - progress_at >= 5.0 and backlog:
                    progress_at = now
                    self._echo(f"W&B: {backlog} trial(s) still to write, {self.written} written "
                               f"({now - started:.0f} s); Ctrl-C stops and lists the rest")
                if timeout is not None and now - started > timeout:
                    reason = f"the driver stopped W&B after {timeout:.0f} s"
                elif now - moved_at > self.stall_timeout:
                    reason = f"W&B made no progress for {self.stall_timeout:.0f} s"
                if reason:
                    break
        except KeyboardInterrupt:
            self._halt("interrupted")
            raise
        if reason:
            self._halt(reason)
        else:  # drained (or W&B turned off): check against the study dir all the same
            self._list_unwritten("W&B failed" if self.mode == "disabled" else "W&B did not take them")

    def _halt(self, reason: str) -> None:
        """Stop the writers (after their current step) and list what W&B does not hold."""
        self._stop.set()
        deadline = time.monotonic() + 5.0
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._list_unwritten(reason)

    def _list_unwritten(self, reason: str) -> None:
        left = pending.unwritten(self.study, {tid: t.state() for tid, t in list(self._trials.items())
                                              if t.run is None})
        analysis = not self._analysis_written
        pending.record(self.study.path, left, analysis, reason)
        what = f"{len(left)} trial(s)" + (" and the analysis run" if analysis else "")
        if left or analysis:
            self._echo(f"W&B: {reason}; {what} not written yet, listed in "
                       f"{self.study.path / pending.PENDING_FILE}. `ablator sync {self.study.path}` "
                       "(or `ablator resume`) writes them; every result stays in the ledger.")

    # ------------------------------------------------------------ the writers

    def _writer(self) -> None:
        try:
            while not self._stop.is_set():
                item = self._work.take(self.poll_interval)
                if item is None:
                    if self._closing.is_set() and self._work.idle():
                        return
                    continue
                key, value = item
                if self._stop.is_set():
                    self._work.release(key)
                    return
                seen = self._gate.enter()
                failure = None
                try:
                    self._step(key, value, seen)
                except Exception as exc:  # W&B must never fail the study
                    if is_wandb_failure(exc):
                        failure = exc
                    else:
                        self._skipped(exc)
                finally:
                    self._gate.leave()
                if failure is not None:
                    self._work.put(key, value, keep=True)  # again, in the next mode
                    self._work.release(key)
                    self._degrade(failure, seen)
                else:
                    self._work.release(key)
        except BaseException as exc:  # never take the driver down
            logger.exception("W&B writer stopped: %s", type(exc).__name__)

    def _step(self, key: str, value: Any, generation: int) -> None:
        if key == _POLL:
            self._sweep()
        elif key == _START:
            self._start()
        elif key == _ANALYSIS:
            self._analysis()
        elif key == _CLOSE:
            self._queue_last_writes()
        else:
            self._trial(key, value, generation)

    def _trial(self, tid: str, value: Any, generation: int) -> None:
        t = self._trials.get(tid)
        record = value if isinstance(value, TrialRecord) else None
        if record is None and (t is None or value is _STOP_RUN):
            fresh = self.study.trial(tid).read()
            if fresh is not None and (t is None or fresh.started_at == t.started_at):
                record = fresh
        if t is not None and record is not None and record.started_at not in (None, t.started_at):
            # a fresh record for the same trial id (re-run from scratch): a new run
            self._close_run(t, exit_code=1)
            t = None
        if t is None:
            if record is None or record.state == PENDING:
                return  # nothing to show until it starts
            t = self._trials[tid] = runs.TrialRun.of(self.study, self.wb, record)
        if record is not None:
            t.record = record
        if t.run is not None and t.generation != generation:
            t.run = None  # opened before a fall back to offline: reopen in the new mode
        was_done = t.up_to_date
        try:
            runs.write(self.wb, t, generation, self._make_room)
            if t.run is not None and value is _STOP_RUN:
                self._close_run(t, exit_code=1)  # the driver stops before the trial ends
        finally:
            with self._open_lock:
                if t.run is None:
                    self._open.pop(tid, None)
                elif tid in self._open:
                    self._open.move_to_end(tid)  # the most recently written
        if t.up_to_date and not was_done:
            self.written += 1

    def _queue_last_writes(self) -> None:
        """The driver stops: finish every open run, write closed ones that have new rows."""
        for tid, t in list(self._trials.items()):
            if t.run is None and not runs.has_new_rows(t):
                if t.up_to_date:
                    continue
                fresh = self.study.trial(tid).read()
                if fresh is None or not fresh.finished:
                    continue
            self._work.put(tid, _STOP_RUN)

    def _make_room(self, t: runs.TrialRun) -> None:
        """Before a run opens: take a slot, closing the least recently written run no writer
        holds when all `max_open_runs` are taken."""
        waited = time.monotonic()
        while True:
            with self._open_lock:
                if len(self._open) < self.max_open_runs or time.monotonic() - waited > 5.0:
                    self._open[t.trial_id] = t  # a slot, taken before the run opens
                    self.peak_open = max(self.peak_open, len(self._open))
                    return
                victim = next((v for k, v in self._open.items() if self._work.hold(k)), None)
                if victim is not None:
                    self._open.pop(victim.trial_id, None)
            if victim is None:  # every open run is being written this instant
                time.sleep(0.01)
                continue
            try:
                if victim.run is not None:
                    runs.finish(self.wb, victim, exit_code=0)
            finally:
                self._work.release(victim.trial_id)

    def _close_run(self, t: runs.TrialRun, exit_code: int) -> None:
        with self._open_lock:
            self._open.pop(t.trial_id, None)
        runs.finish(self.wb, t, exit_code=exit_code)

    def _sweep(self) -> None:
        """Each driver loop turn: queue the running trials with new rows (a closed run
        only after `reopen_after` s, so a study with more running trials than open runs
        does not reopen a run per row)."""
        now = time.monotonic()
        for tid, t in list(self._trials.items()):
            if t.record.state != RUNNING:
                continue
            if t.run is None and now - t.closed_at < self.reopen_after:
                continue
            if runs.has_new_rows(t):
                self._work.put(tid, keep=True)

    def _start(self) -> None:
        """Queue what W&B lacks from earlier drivers; unlink absolute links they left."""
        if self.runs_dir.is_dir():
            runs.fix_links(self.runs_dir)
        earlier = pending.read(self.study.path)
        for tid in pending.unwritten(self.study):
            self._work.put(tid, keep=True)
        if earlier.get("analysis_run") and has_report(self.study.path):
            self._queue_analysis(self.study.path)  # even once close() was called: it is backlog

    def _analysis(self) -> None:
        if self._analysis_dir is None or self.wb.mode == "disabled":
            return  # W&B is off after a failure: the analysis run stays listed for `ablator sync`
        known = {tid: t.state() for tid, t in list(self._trials.items())}
        left = [tid for tid in pending.unwritten(self.study, known)
                if not (tid in self._trials and self._trials[tid].run is not None)]
        write_analysis_run(self.wb, self.study, self._analysis_dir,
                      {"wandb/trials_not_written": len(left)})
        self._analysis_written = True

    # ------------------------------------------------------------ failures

    def _degrade(self, exc: BaseException, seen: int) -> None:
        """Online -> offline -> off, once per failure, while no writer is inside wandb."""
        if not self._gate.pause(seen):
            return
        try:
            old = self.wb.mode
            self.wb.mode = "offline" if old == "online" else "disabled"
            for t in list(self._trials.values()):  # offline reopens them (resume) from the ledger
                if t.run is not None and old == "offline":
                    try:
                        t.run.finish(exit_code=1)
                    except Exception:
                        logger.debug("finishing a failed run", exc_info=True)
                t.run = None
            with self._open_lock:
                self._open.clear()
            if old == "online" and self.wb._wandb is not None:
                # wandb-core keeps the failed online streams' run ids in use: start afresh
                try:
                    self.wb.lib().teardown()
                except Exception:
                    logger.debug("wandb.teardown", exc_info=True)
            reason = self.wb.clean(f"{type(exc).__name__}: {exc}")
            self.errors.append(f"{old}: {reason}")
            logger.debug("W&B %s failed", old, exc_info=exc)
            if self.wb.mode == "offline":
                where = f"logging offline to {self.runs_dir} (upload later: `wandb sync {self.runs_dir}`)"
                for tid, t in list(self._trials.items()):
                    if not t.up_to_date:
                        self._work.put(tid, keep=True)
            else:
                where = (f"W&B tracking is off for the rest of this run (`ablator sync "
                         f"{self.study.path}` writes the rest later)")
                self._stop.set()
            self._tell(f"W&B {old} failed ({reason}); {where}. Every result stays in the study ledger.")
        finally:
            self._gate.resume()

    def _skipped(self, exc: BaseException) -> None:
        reason = self.wb.clean(f"{type(exc).__name__}: {exc}")
        self.errors.append(f"skipped: {reason}")
        logger.debug("W&B tracking skipped a step", exc_info=exc)
        self._tell(f"W&B tracking skipped an update ({reason}); every result stays in the ledger.")

    def _tell(self, line: str) -> None:
        if self._warned:
            logger.info(line)
            return
        self._warned = True
        try:
            self._echo(line)
        except Exception:
            stderr(line)


# ---------------------------------------------------------------- factory


def make_tracker(
    config: StudyConfig,
    study: Study,
    provenance: dict,
    *,
    echo: Callable[[str], None] | None = None,
    **options: Any,
) -> Tracker:
    """The study's tracker for `tracking.wandb.mode`: a no-op one when disabled.

    It first writes what earlier drivers left unwritten (so `ablator resume` completes
    W&B too). `echo` prints the tracker's notices (default: stderr). `options` go to
    `WandbTracker` (writers, max_open_runs, stall_timeout, wandb_dir, ...).
    """
    echo = echo or stderr
    setting = config.tracking.wandb.mode
    mode, why = resolve_mode(setting)
    if mode == "disabled":
        if setting != "disabled" and why:
            echo(f"W&B tracking is off ({why}); every result stays in the study ledger.")
        return NullTracker()
    try:
        # import here, once, before any trial runs: importing wandb is ~0.5 s of pure Python
        # that, in a writer thread, would hold the GIL against the driver's calls
        import_wandb()
    except Exception as exc:
        echo(f"W&B tracking is off (wandb cannot be imported: {type(exc).__name__}: {exc}); "
             "every result stays in the study ledger.")
        return NullTracker()
    key = api_key() if mode == "online" else None
    tracker = WandbTracker(config, study, provenance, mode, echo=echo, secrets=(key,) if key else (),
                           warned=setting == "online" and mode == "offline", **options)
    if mode == "offline":  # for an online setting without a key, this line is its one warning
        reason = f" ({why})" if why else ""
        echo(f"W&B offline{reason}: runs go to {tracker.runs_dir}; "
             f"upload them later with `wandb sync {tracker.runs_dir}`")
    return tracker


def sync_study(study_dir: str | Path, echo: Callable[[str], None] | None = None) -> int:
    """`ablator sync DIR`: write every trial (and the analysis run) W&B does not hold yet.

    Returns how many trials were written; raises when W&B could not take them all.
    """
    echo = echo or stderr
    study = Study(study_dir)
    if not study.exists():
        raise StudyError(f"{study_dir} is not a study directory (no study.json)")
    config = load_config(study.config_path, import_trainable=False)  # sync never runs the trainable
    with study.lock():
        return _sync(study, config, echo)


def _sync(study: Study, config: StudyConfig, echo: Callable[[str], None]) -> int:
    todo = pending.unwritten(study)
    listed = pending.read(study.path)
    if not todo and not listed.get("analysis_run"):
        pending.record(study.path, [], False, "")
        echo(f"W&B holds every trial of {study.path}: nothing to write")
        return 0
    tracker = make_tracker(config, study, study.read_provenance(), echo=echo)
    if isinstance(tracker, NullTracker):
        raise StudyError(f"tracking.wandb.mode is '{config.tracking.wandb.mode}' for {study.path}: "
                         f"{len(todo)} trial(s) stay unwritten")
    echo(f"W&B: writing {len(todo)} trial(s)" + (" and the analysis run" if listed.get("analysis_run") else ""))
    tracker.close()
    left = pending.read(study.path)
    if left:
        raise AblatorError(f"W&B: {len(left.get('trials', []))} trial(s) still not written "
                           f"({left.get('reason')}); see {study.path / pending.PENDING_FILE}")
    echo(f"W&B: {len(todo)} trial(s) written to {tracker.runs_dir}")
    return len(todo)
