"""The study directory and its durable records.

Layout of a study directory::

    config.yaml            the user's YAML, byte for byte
    study.json             name, id, creation time, stage states
    plan.json              the trials of the plan (ids, variants, seeds)
    provenance.json        git commit, versions, host, CPU/GPU
    trials/<id>/record.json     state, attempts, errors, final metrics (one writer at a time)
    trials/<id>/metrics.jsonl   one line per report: step, attempt, time, metrics
    trials/<id>/checkpoint.pt   the last checkpoint (torch.save), written atomically

Every JSON file is written to a temporary file and renamed, so a crash never leaves a
half-written record. The driver writes PENDING and FAILED; the worker running a trial
writes RUNNING and COMPLETED, so the two never write the same record at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

from .errors import StudyLocked

PENDING, RUNNING, COMPLETED, FAILED = "PENDING", "RUNNING", "COMPLETED", "FAILED"


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_json(path: Path, default: Any = None) -> Any:
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return default


class Study:
    """A study directory: the one place where a study's results live."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.trials_dir = self.path / "trials"

    # ------------------------------------------------------------ creation

    @classmethod
    def create(cls, path: str | Path, config_text: str, name: str) -> Study:
        study = cls(path)
        study.trials_dir.mkdir(parents=True, exist_ok=True)
        (study.path / "config.yaml").write_text(config_text)
        write_json(
            study.path / "study.json",
            {"name": name, "study_id": f"{name}-{uuid.uuid4().hex[:8]}", "created": time.time(), "stages": {}},
        )
        return study

    def exists(self) -> bool:
        return (self.path / "study.json").exists()

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def info(self) -> dict:
        return read_json(self.path / "study.json", {})

    @property
    def study_id(self) -> str:
        return self.info["study_id"]

    def set_stage(self, stage: str, state: str, **extra: Any) -> None:
        """Record a stage's state (e.g. ablation: running/completed, tuning: scheduled)."""
        info = self.info
        info.setdefault("stages", {})[stage] = {"state": state, "time": time.time(), **extra}
        write_json(self.path / "study.json", info)

    # ------------------------------------------------------------ locking

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the study for one driver; the OS releases it if the driver dies."""
        self.path.mkdir(parents=True, exist_ok=True)
        fh = open(self.path / ".lock", "a+")
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

    # ------------------------------------------------------------ plan, provenance

    def write_plan(self, plan: dict) -> None:
        write_json(self.path / "plan.json", plan)

    def read_plan(self) -> dict:
        return read_json(self.path / "plan.json", {})

    def write_provenance(self, provenance: dict) -> None:
        write_json(self.path / "provenance.json", provenance)

    def read_provenance(self) -> dict:
        return read_json(self.path / "provenance.json", {})

    # ------------------------------------------------------------ trials

    def trial(self, trial_id: str) -> TrialStore:
        return TrialStore(self.trials_dir / trial_id)

    def records(self) -> list[dict]:
        """Every trial record in the study (any stage), sorted by trial id."""
        out = []
        if self.trials_dir.exists():
            for entry in sorted(os.scandir(self.trials_dir), key=lambda e: e.name):
                rec = read_json(Path(entry.path) / "record.json")
                if rec is not None:
                    out.append(rec)
        return out

    def history(self, trial_id: str) -> list[dict]:
        return self.trial(trial_id).history()


class TrialStore:
    """The durable record of one trial: record.json, metrics.jsonl, checkpoint.pt."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.record_path = self.path / "record.json"
        self.metrics_path = self.path / "metrics.jsonl"
        self.checkpoint_path = self.path / "checkpoint.pt"

    def read(self) -> dict | None:
        return read_json(self.record_path)

    def write(self, record: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.record_path, record)

    def update(self, **fields: Any) -> dict:
        record = self.read() or {}
        record.update(fields)
        self.write(record)
        return record

    def append_metrics(self, row: dict) -> None:
        with open(self.metrics_path, "a") as fh:
            fh.write(json.dumps(row, default=float) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def history(self) -> list[dict]:
        """Reported rows, one per step; a step re-reported after a restart keeps its last value."""
        rows: dict[int, dict] = {}
        try:
            with open(self.metrics_path) as fh:
                for line in fh:
                    line = line.strip()
                    if line:
                        row = json.loads(line)
                        rows[row["step"]] = row
        except FileNotFoundError:
            return []
        except json.JSONDecodeError:
            pass  # a torn last line from a killed writer; the rows before it stand
        return [rows[k] for k in sorted(rows)]

    def save_checkpoint(self, state: Any) -> None:
        import torch

        tmp = self.checkpoint_path.with_name(f".checkpoint.{os.getpid()}.tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint_path)

    def load_checkpoint(self) -> Any | None:
        if not self.checkpoint_path.exists():
            return None
        import torch

        return torch.load(self.checkpoint_path, weights_only=False)
