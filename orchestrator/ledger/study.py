"""The study directory and the durable records of its trials."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import LedgerDamaged, StudyLocked
from . import files
from .files import (
    NO_ROOM,
    append_line,
    complete_lines,
    cut_torn_tail,
    json_text,
    no_room,
    parse_lines,
    read_json,
    write_json,
    write_texts,
)
from .index import INDEX, StudyIndex, append_index_line, change_line, removal_line
from .records import STATES, TrialRecord, TrialStatus, index_view, parse

log = logging.getLogger("ablator.ledger")

#: 1: record.json files only; 2: plus the study index (index.jsonl)
LAYOUT_VERSION = 2


def doctor_hint(path: Path) -> str:
    return f"Check and mend the study with `ablator doctor {path} --fix`."


class Study:
    """A study directory: the one place where a study's results live."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.trials_dir = self.path / "trials"
        self.index = StudyIndex(self.path / INDEX)

    # ------------------------------------------------------------ creation

    @classmethod
    def create(cls, path: str | Path, config_text: str, name: str) -> Study:
        """Write a new study's files (the caller holds the study lock)."""
        study = cls(path)
        study.trials_dir.mkdir(parents=True, exist_ok=True)
        (study.path / "config.yaml").write_text(config_text)
        study.index.path.touch()
        write_json(study.path / "study.json", new_info(name))
        return study

    def exists(self) -> bool:
        return (self.path / "study.json").exists()

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def info(self) -> dict:
        path = self.path / "study.json"
        info = read_json(path, {}, mend=doctor_hint(self.path))
        if not isinstance(info, dict) or not isinstance(info.get("study_id", ""), str) or (
                info and "name" not in info):
            raise LedgerDamaged(path, "not a study description (needs name and study_id)",
                                doctor_hint(self.path))
        return info

    def check(self) -> dict:
        """study.json, after checking it and plan.json: LedgerDamaged (with its mend) if either is damaged."""
        info = self.info
        self.read_plan()
        return info

    @property
    def study_id(self) -> str:
        return self.info["study_id"]

    def set_stage(self, stage: str, state: str, **extra: Any) -> None:
        """Record a stage's state (e.g. ablation: running/completed, tuning: scheduled)."""
        info = self.info
        info.setdefault("stages", {})[stage] = {"state": state, "time": time.time(), **extra}
        write_json(self.path / "study.json", info)

    def set_info(self, **fields: Any) -> None:
        """Record top-level facts of the study (e.g. the Ray dashboard of the driver running it)."""
        write_json(self.path / "study.json", {**self.info, **fields})

    # ------------------------------------------------------------ locking

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the study for one driver; the OS releases it if the driver dies."""
        self.path.mkdir(parents=True, exist_ok=True)
        fh = open(self.path / ".lock", "a+")  # noqa: SIM115 - held open for the whole lock
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise StudyLocked(
                f"study {self.path} is already being run by {holder}; "
                "wait for it to finish, or check it with `ablator status`"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {os.uname().nodename}")
        fh.flush()
        try:
            yield
        finally:
            fh.truncate(0)
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

    def holder(self) -> str | None:
        """Who runs the study now ("pid N on HOST"), or None.

        The lock file names its holder while a driver holds it; a driver killed with SIGKILL
        leaves its name behind, so a holder on this host whose process is gone does not count.
        """
        try:
            text = (self.path / ".lock").read_text().strip()
        except FileNotFoundError:
            return None
        parts = text.split()
        if len(parts) != 4 or parts[0] != "pid" or not parts[1].isdigit():
            return None
        if parts[3] == os.uname().nodename:
            try:
                os.kill(int(parts[1]), 0)
            except ProcessLookupError:
                return None
            except PermissionError:
                pass
        return text

    # ------------------------------------------------------------ plan, provenance

    def write_plan(self, plan: dict) -> None:
        write_json(self.path / "plan.json", plan)

    def read_plan(self) -> dict:
        path = self.path / "plan.json"
        plan = read_json(path, {}, mend=doctor_hint(self.path))
        if not isinstance(plan, dict) or not isinstance(plan.get("trials", []), list):
            raise LedgerDamaged(path, "not a plan (needs a list of trials)", doctor_hint(self.path))
        return plan

    def write_provenance(self, provenance: dict) -> None:
        write_json(self.path / "provenance.json", provenance)

    def read_provenance(self) -> dict:
        return read_json(self.path / "provenance.json", {}, mend=doctor_hint(self.path))

    # ------------------------------------------------------------ trials

    def trial(self, trial_id: str) -> TrialStore:
        return TrialStore(self.trials_dir / trial_id)

    def write_new(self, records: list[TrialRecord]) -> None:
        """Write the records of trials new to the study, each as `TrialStore.write` does (checked,
        fsynced before its rename, then its index line), all at once: their fsyncs together, their
        index lines in one fsynced append."""
        items, lines = [], []
        for record in records:
            store = self.trial(record.trial_id)
            data = store._checked(record)
            store.path.mkdir(parents=True, exist_ok=True)
            items.append((store.record_path, json_text(data)))
            lines.append(change_line(None, index_view(data)))
        write_texts(items)
        if lines and self.index.exists():
            append_index_line(self.index.path, "\n".join(lines))

    def records(self) -> list[TrialRecord]:
        """Every trial record in the study (any stage), sorted by trial id.

        From the study index when the study has one (records without the worker's
        hardware and pid: read those from the trial's record.json), else from every trial dir.
        """
        if self.index.exists():
            recs = self.index.records()
            for problem in self.index.problems:
                log.warning(problem)
            self.index.problems.clear()
            return [recs[k] for k in sorted(recs)]
        return self.records_on_disk()

    def records_on_disk(self, warn: bool = True) -> list[TrialRecord]:
        """The readable record.json of every trial dir, sorted by trial id (a damaged one is
        skipped, with a warning when `warn`)."""
        out = []
        for path in self.trial_dirs():
            try:
                rec = TrialStore(path).read()
            except LedgerDamaged as exc:
                if warn:
                    log.warning("%s (skipped)", exc)
                continue
            if rec is not None:
                out.append(rec)
        return out

    def statuses(self) -> dict[str, TrialStatus]:
        """Each trial's status, read: from the study index and its status cache (only index lines
        newer than the cache are parsed), else from every trial dir. Writes nothing."""
        if self.index.exists():
            got = self.index.statuses()
            for problem in self.index.problems:
                log.warning(problem)
            return got
        return {r.trial_id: r.status for r in self.records()}

    def keep_status_cache(self) -> None:
        """Bring the index's status cache up to date, so the next `statuses()` parses only newer lines."""
        if self.index.exists():
            self.index.keep_status_cache()

    def states(self) -> dict[str, str]:
        """{trial_id: state} of every trial."""
        return {tid: t.state for tid, t in self.statuses().items()}

    def remove_trial(self, trial_id: str) -> None:
        """Delete a trial's directory (to run it afresh) and tell the study index."""
        shutil.rmtree(self.trial(trial_id).path, ignore_errors=True)
        if self.index.exists():
            append_index_line(self.index.path, removal_line(trial_id))

    def trial_dirs(self) -> list[Path]:
        if not self.trials_dir.exists():
            return []
        return [Path(e.path) for e in sorted(os.scandir(self.trials_dir), key=lambda e: e.name)
                if e.is_dir()]

    def damaged_records(self) -> list[tuple[Path, str]]:
        """(record.json, what is wrong) for every trial whose record cannot be read."""
        out = []
        for path in self.trial_dirs():
            record = path / "record.json"
            try:  # a light check (JSON, id and state): the full model is checked on each read
                got = read_json(record, mend="")
                problem = None if isinstance(got, dict) and isinstance(got.get("trial_id"), str) and got.get(
                    "state") in STATES else (parse(got)[1] if got is not None else None)
            except LedgerDamaged as exc:
                problem = exc.problem
            if problem:
                out.append((record, problem))
        return out

    def history(self, trial_id: str) -> list[dict]:
        return self.trial(trial_id).history()


class TrialStore:
    """The durable record of one trial: record.json, metrics.jsonl, checkpoint.pt.

    A write of record.json also appends the change to the study index, when the trial
    lives in a study that has one.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.record_path = self.path / "record.json"
        self.metrics_path = self.path / "metrics.jsonl"
        self.checkpoint_path = self.path / "checkpoint.pt"
        self._index_path = self.path.parent.parent / INDEX
        self._last: dict | None = None  # the record as last read or written (for index diffs)
        self._tail_checked = False

    def read(self) -> TrialRecord | None:
        """The trial's record (None if it has none); LedgerDamaged if it cannot be read."""
        mend = "`ablator resume` moves it aside and re-runs this trial."
        data = read_json(self.record_path, mend=mend)
        if data is None:
            return None
        record, problem = parse(data)
        if problem:
            raise LedgerDamaged(self.record_path, problem, mend)
        self._last = index_view(record.to_json())  # what the index holds: the next write appends only changes
        return record

    def write(self, record: TrialRecord, sync_index: bool = True) -> None:
        """Write record.json (checked against the model once more, fsynced) and append the change to
        the index; with `sync_index` False (a worker's writes) the index line holds the whole record
        and is not fsynced (see index.py)."""
        data = self._checked(record)
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.record_path, data)
        if self.path.parent.name == "trials" and self._index_path.exists():
            view = index_view(data)
            append_index_line(self._index_path, change_line(self._last if sync_index else None, view),
                              sync=sync_index)
            self._last = view

    def _checked(self, record: TrialRecord) -> dict:
        """The record's JSON, checked against the model once more (a ValueError if it does not fit)."""
        checked, problem = parse(record.to_json())
        if problem:
            raise ValueError(f"refusing to write a bad record to {self.record_path}: {problem}")
        return checked.to_json()

    def update(self, **fields: Any) -> TrialRecord:
        """Change some fields of the record (which must exist) and write it."""
        record = self.read()
        if record is None:
            raise LedgerDamaged(self.record_path, "the trial has no record", doctor_hint(self.path.parent.parent))
        for key, value in fields.items():
            setattr(record, key, value)
        self.write(record)
        return record

    def set_aside(self) -> Path:
        """Move a damaged record.json aside (record.json.damaged-<time>); return where."""
        aside = self.record_path.with_name(f"record.json.damaged-{int(time.time())}-{uuid.uuid4().hex[:4]}")
        shutil.move(self.record_path, aside)
        self._last = None
        return aside

    # ------------------------------------------------------------ metrics

    def append_metrics(self, row: dict, sync: bool = True) -> None:
        """Append one metrics line (fsynced unless `sync` is False: the caller keeps it durable
        elsewhere); a torn line left by a killed writer is cut first."""
        if not self._tail_checked:
            torn = cut_torn_tail(self.metrics_path)
            if torn:
                log.warning("%s: cut a torn last line (%d bytes, kept in %s.torn)",
                            self.metrics_path, len(torn), self.metrics_path.name)
            self._tail_checked = True
        append_line(self.metrics_path, json.dumps(row, default=float), sync=sync)

    def sync_metrics(self) -> None:
        """fsync metrics.jsonl (lines appended without fsync become durable here)."""
        if files.FSYNC and self.metrics_path.exists():
            fd = os.open(self.metrics_path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def restore_metrics(self, rows: list[dict]) -> None:
        """Append again the lines a checkpoint carried that metrics.jsonl lacks (a power loss took
        them before they were fsynced), then fsync metrics.jsonl: the carried lines it holds (a
        killed worker's) may not be on disk yet either."""
        data, _ = complete_lines(self.metrics_path)
        have = {(r.get("step"), r.get("attempt")) for r in parse_lines(data, self.metrics_path)[0]}
        lost = [r for r in rows if (r["step"], r["attempt"]) not in have]
        for row in lost:
            self.append_metrics(row, sync=False)
        self.sync_metrics()
        if lost:
            log.warning("%s: %d line(s) lost before they were fsynced, appended again from the checkpoint",
                        self.metrics_path, len(lost))

    def read_metrics(self) -> tuple[list[dict], list[str]]:
        """Reported rows, one per step (the latest attempt wins), and every unreadable line."""
        data, _ = complete_lines(self.metrics_path)
        rows, problems = parse_lines(data, self.metrics_path)
        by_step: dict[int, dict] = {}
        for row in rows:
            if "step" in row:
                by_step[row["step"]] = row
        return [by_step[k] for k in sorted(by_step)], problems

    def history(self) -> list[dict]:
        """Reported rows, one per step; unreadable lines are logged as file:line and skipped."""
        rows, problems = self.read_metrics()
        for problem in problems:
            log.warning(problem)
        return rows

    # ------------------------------------------------------------ checkpoint

    def save_checkpoint(self, state: Any) -> None:
        import torch

        tmp = self.checkpoint_path.with_name(f".checkpoint.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp")
        try:
            with open(tmp, "wb") as fh:  # to a file object, torch reports a full disk as OSError ENOSPC
                torch.save(state, fh)
                fh.flush()
                if files.FSYNC:
                    os.fsync(fh.fileno())
            files.replace(tmp, self.checkpoint_path)
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.errno in NO_ROOM:
                raise no_room(self.checkpoint_path, exc) from None
            raise

    def load_checkpoint(self) -> Any | None:
        if not self.checkpoint_path.exists():
            return None
        import torch

        return torch.load(self.checkpoint_path, weights_only=False)


def new_info(name: str) -> dict:
    """study.json of a new study."""
    return {"name": name, "study_id": f"{name}-{uuid.uuid4().hex[:8]}", "created": time.time(),
            "layout": LAYOUT_VERSION, "stages": {}}
