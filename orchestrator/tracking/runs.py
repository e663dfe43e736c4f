"""One W&B run per trial: open (or resume) it, log the ledger's new rows, finish it.

Everything here runs in a writer thread (see `writers.py`); a trial is handled by
one writer at a time, so a `TrialRun` is never touched by two threads at once.

A trial's run id is a function of the ledger (`payload.run_id`: study id, trial
id, first start), and runs open with `resume="allow"`, so a restarted trial, a
run closed while idle, or a trial continued by a later driver all append to the
same run. Steps only grow in W&B: rows at or below the last step W&B holds are
never logged again. For runs an earlier driver wrote, that step is read from its
transaction logs (a killed driver's last rows may never have reached them).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import StudyConfig
from ..ledger import COMPLETED, PENDING, Study, TrialRecord, read_json, write_json
from . import offline
from . import payload as P
from .mode import import_wandb

logger = logging.getLogger("orchestrator.tracking")

STATE_FILE = "wandb.json"


class WandbStudy:
    """What every run of one study shares: wandb, its settings, names, secrets, errors."""

    def __init__(self, config: StudyConfig, study: Study, provenance: dict, mode: str, *,
                 wandb_dir: str | Path | None = None, init_timeout: float = 30.0,
                 finish_timeout: float = 60.0, secrets: tuple[str, ...] = ()):
        self.config, self.study, self.provenance = config, study, dict(provenance or {})
        self.mode = mode
        self.study_id = study.study_id
        self.project = P.project_name(config)
        self.entity = config.tracking.wandb.entity
        #: wandb writes its run directories to <dir>/wandb/
        self.dir = Path(wandb_dir) if wandb_dir is not None else Path(study.path)
        self.init_timeout, self.finish_timeout = init_timeout, finish_timeout
        self.secrets = P.env_secrets(secrets)
        self.errors: list[str] = []  # every W&B failure or skipped step, scrubbed
        self._wandb = None
        self._lock = threading.Lock()
        self._started = False
        self._earlier: dict[str, list[Path]] | None = None
        self._segments: dict[str, int] = {}  # run id -> the last segment number this driver opened

    @property
    def runs_dir(self) -> Path:
        return self.dir / "wandb"

    def lib(self):
        if self._wandb is None:
            self._wandb = import_wandb()
        return self._wandb

    def scrub(self, obj: Any) -> Any:
        return P.scrub(obj, self.secrets)

    def clean(self, text: str, limit: int = 200) -> str:
        text = " ".join(P.scrub(str(text), self.secrets).split())
        return text if len(text) <= limit else text[: limit - 3] + "..."

    def load(self, path: Path | None, reader: Callable[[Path], Any]) -> Any:
        """A report file's content, or None when it is absent or unreadable (noted, not fatal)."""
        if path is None:
            return None
        try:
            return reader(path)
        except Exception as exc:  # a half-written or odd report file loses only itself
            self.errors.append(self.clean(f"skipped {path.name}: {type(exc).__name__}: {exc}"))
            return None

    def settings(self, **extra):
        values: dict[str, Any] = {
            "mode": self.mode, "silent": True, "quiet": True, "console": "off",
            # the driver's CPU load and machine are no trial's: provenance says where trials ran
            "x_disable_stats": True, "x_disable_machine_info": True,
            "disable_git": True, "save_code": False, "disable_job_creation": True,
            "x_save_requirements": False, "init_timeout": self.init_timeout,
            # a killed driver loses at most this much of what wandb-core had not yet written
            "x_transaction_log_flush_interval": 1.0,
            # no latest-run/debug.log links, and saved files are hard links or copies
            "symlink": False,
        }
        if self.mode == "online":
            values["finish_timeout"] = self.finish_timeout
        values.update(extra)
        return self.lib().Settings(**values)

    def init(self, **kwargs):
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        # wandb names a log directory to the second, so its time cannot order a run's segments
        # (nor keep two apart): each segment gets its own directory with the next number
        extra = {"x_sync_dir_suffix": f"seg{self.next_segment(kwargs['id'])}", **kwargs.pop("settings_extra", {})}
        settings = self.settings(**extra)
        args = dict(project=self.project, entity=self.entity, group=self.study_id, dir=str(self.dir),
                    resume="allow", reinit="create_new", settings=settings, **kwargs)
        if self._started:
            return self.lib().init(**args)
        with self._lock:  # the first init starts wandb's service: one thread does it
            run = self.lib().init(**args)
            self._started = True
            return run

    def finish(self, run, exit_code: int = 0) -> None:
        run_dir = Path(run.dir).parent
        run.finish(exit_code=exit_code)
        fix_links(run_dir)

    def _earlier_runs(self) -> dict[str, list[Path]]:
        # under self._lock: the logs on this machine when the first run was opened or checked
        if self._earlier is None:
            self._earlier = offline.logged_runs(self.runs_dir)
        return self._earlier

    def earlier_step(self, run_id: str) -> int:
        """The highest step earlier drivers' logs on this machine hold for a run (-1: none)."""
        with self._lock:
            paths = self._earlier_runs().get(run_id, [])
        return offline.last_step_of(paths)

    def next_segment(self, run_id: str) -> int:
        """The number of a run's next log segment: one past the last on disk or opened here."""
        with self._lock:
            last = self._segments.get(run_id)
            if last is None:
                paths = self._earlier_runs().get(run_id, [])
                last = max((offline.segment_number(p.parent.name) for p in paths), default=0)
            self._segments[run_id] = last + 1
            return last + 1


def fix_links(root: Path) -> None:
    """No absolute symlink under `root`: one pointing inside becomes relative; one pointing
    outside (wandb-core's shared debug log) is removed. Run dirs then survive a move or a sync."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                continue
            target = os.readlink(path)
            if not os.path.isabs(target):
                continue
            try:
                os.unlink(path)
                if os.path.commonpath([os.path.realpath(root), target]) == os.path.realpath(root):
                    os.symlink(os.path.relpath(target, dirpath), path)
            except (OSError, ValueError):
                logger.debug("could not fix the link %s", path, exc_info=True)


@dataclass
class TrialRun:
    """A trial's run, and what of the ledger it holds."""

    trial_id: str
    path: Path
    record: TrialRecord
    run_id: str
    started_at: Any = None
    run: Any = None
    generation: int = 0  # the writers' generation the run handle was opened in
    last_step: int = -1  # the highest step handed to W&B
    offset: int = 0  # bytes of metrics.jsonl read
    sent: dict | None = None  # the changing config keys last sent
    done: tuple | None = None  # (state, attempts) the run was finished with
    checked: bool = False  # earlier drivers' logs were looked at
    closed_at: float = 0.0  # monotonic time its run was last closed

    @classmethod
    def of(cls, study: Study, wb: WandbStudy, record: TrialRecord) -> TrialRun:
        tid = record.trial_id
        path = study.trial(tid).path
        started = record.started_at
        t = cls(tid, path, record, P.run_id(wb.study_id, tid, started), started_at=started)
        saved = read_json(path / STATE_FILE)
        if saved and saved.get("run_id") == t.run_id and saved.get("finished"):
            t.done = (saved.get("state"), saved.get("attempts"))
        return t

    @property
    def up_to_date(self) -> bool:
        """The run was finished with the record's final state."""
        rec = self.record
        return rec.finished and self.done == (rec.state, rec.attempts)

    def state(self) -> dict:
        done = self.done or (None, None)
        return {"run_id": self.run_id, "last_step": self.last_step, "finished": self.done is not None,
                "state": done[0], "attempts": done[1]}

    def save(self, wb: WandbStudy) -> None:
        """Write wandb.json; not fsynced: a power cut that takes it only makes the next driver
        write the trial to W&B again (its steps only grow), and wandb's own logs are not fsynced."""
        if self.path.exists():  # the trial dir was removed (re-run): nothing to keep
            write_json(self.path / STATE_FILE, {**self.state(), "project": wb.project, "entity": wb.entity,
                                                "mode": wb.mode, "started_at": self.started_at}, sync=False)


def write(wb: WandbStudy, t: TrialRun, generation: int, make_room: Callable[[TrialRun], None]) -> None:
    """Bring the trial's run up to its record: open it, update config and summary, log the
    new rows, finish it when the trial has ended."""
    if t.record.state == PENDING:
        if t.run is not None:  # waiting for a restart
            t.run.summary.update(wb.scrub(P.trial_summary(t.record)))
        return
    if t.up_to_date:
        return
    if t.run is None:
        make_room(t)
        open_run(wb, t, generation)
    if t.record.finished:
        finish(wb, t)  # logs the rows and the summary itself
        return
    refresh(wb, t)
    tail(t)


def open_run(wb: WandbStudy, t: TrialRun, generation: int) -> None:
    rec = t.record
    if not t.checked:
        t.last_step = max(t.last_step, wb.earlier_step(t.run_id))
        t.checked = True
    cfg = wb.scrub(P.trial_config(wb.config, rec, wb.provenance, wb.study_id))
    t.run = wb.init(
        id=t.run_id, name=wb.clean(P.run_name(rec), 128), job_type=rec.stage,
        tags=[wb.clean(tag, 64) for tag in P.run_tags(wb.config, rec)], config=cfg,
    )
    t.generation = generation
    starting = getattr(t.run, "starting_step", 0) or 0  # online resume: the server's next step
    t.last_step = max(t.last_step, starting - 1)
    t.sent = P.changing_config(rec, wb.provenance)
    t.done = None


def refresh(wb: WandbStudy, t: TrialRun) -> None:
    """Config keys the trial learned while it ran (data hash, host), and its summary."""
    changing = P.changing_config(t.record, wb.provenance)
    if changing != t.sent:
        t.run.config.update(wb.scrub(changing), allow_val_change=True)
        t.sent = changing
    t.run.summary.update(wb.scrub(P.trial_summary(t.record)))


def has_new_rows(t: TrialRun) -> bool:
    try:
        return os.stat(t.path / "metrics.jsonl").st_size > t.offset
    except FileNotFoundError:
        return False


def tail(t: TrialRun) -> None:
    """Log the rows appended to metrics.jsonl since the last look (steps above the last logged)."""
    path = t.path / "metrics.jsonl"
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return
    if size < t.offset:  # the file was replaced
        t.offset = 0
    if size == t.offset:
        return
    with open(path, "rb") as fh:
        fh.seek(t.offset)
        chunk = fh.read(size - t.offset)
    end = chunk.rfind(b"\n")
    if end < 0:
        return  # a line still being written
    t.offset += end + 1
    for line in chunk[: end + 1].splitlines():
        try:
            row = json.loads(line)
            step = int(row["step"])
        except (ValueError, KeyError, TypeError):
            continue  # a torn line from a killed worker
        if step <= t.last_step:
            continue  # logged already (a restart re-reported it, or an earlier driver logged it)
        t.run.log(P.history_row(row), step=step, commit=True)
        t.last_step = step


def finish(wb: WandbStudy, t: TrialRun, exit_code: int | None = None) -> None:
    """Finish the run: with the trial's outcome when it has ended, else (closed while idle, or
    the driver stops) `exit_code`; a later write resumes it."""
    if t.run is None:
        return
    rec = t.record
    tail(t)
    refresh(wb, t)
    if exit_code is None:
        exit_code = 0 if rec.state == COMPLETED else 1
    run, t.run = t.run, None
    t.closed_at = time.monotonic()
    wb.finish(run, exit_code)
    t.done = (rec.state, rec.attempts) if rec.finished else None
    t.save(wb)
