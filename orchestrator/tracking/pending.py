"""Which trials W&B does not hold yet, worked out from the study directory alone.

A trial is written when W&B holds every step of its `metrics.jsonl` and, once it has
ended, a run finished with its final state: `trials/<id>/wandb.json` (written each
time a run is finished) says how far its run got. When a driver has to stop before
its backlog is written (Ctrl-C, a W&B failure, no progress), it also lists the trials
left in `<study>/wandb_pending.json`, for `ablator status` readers and `ablator sync`;
a driver killed outright leaves no list, and the next one finds the same trials here.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..ledger import PENDING, Study, TrialRecord, read_json, write_json
from . import payload as P
from .runs import STATE_FILE

PENDING_FILE = "wandb_pending.json"
_TAIL = 65536


def ledger_last_step(metrics: Path) -> int:
    """The highest step among the last rows of a metrics.jsonl (-1: none)."""
    try:
        with open(metrics, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - _TAIL))
            lines = fh.read().split(b"\n")[1 if size > _TAIL else 0: -1]
    except FileNotFoundError:
        return -1
    best = -1
    for line in lines:
        try:
            best = max(best, int(json.loads(line)["step"]))
        except (ValueError, KeyError, TypeError):
            continue
    return best


def needs_write(study_id: str, record: TrialRecord | None, written: dict | None, path: Path) -> bool:
    """Whether W&B lacks part of this trial (`written`: its wandb.json, or the writer's state)."""
    if record is None or record.state == PENDING:
        return False
    if not written or written.get("run_id") != P.run_id(study_id, record.trial_id, record.started_at):
        return True
    if record.finished and not (
            written.get("finished") and (written.get("state"), written.get("attempts"))
            == (record.state, record.attempts)):
        return True
    return ledger_last_step(path / "metrics.jsonl") > int(written.get("last_step", -1))


def unwritten(study: Study, known: dict[str, dict] | None = None) -> list[str]:
    """Every trial W&B lacks part of; `known` overrides wandb.json with a writer's own state."""
    known = known or {}
    out = []
    if not study.trials_dir.exists():
        return out
    for entry in sorted(os.scandir(study.trials_dir), key=lambda e: e.name):
        path = Path(entry.path)
        record = study.trial(entry.name).read()
        written = known.get(entry.name) or read_json(path / STATE_FILE)
        if needs_write(study.study_id, record, written, path):
            out.append(entry.name)
    return out


def read(study_path: Path) -> dict:
    """The list an earlier driver left: {"trials": [...], "analysis_run": bool, "reason": str}."""
    listed = read_json(Path(study_path) / PENDING_FILE) or {}
    if "summary" in listed:  # its former name
        listed["analysis_run"] = listed.pop("summary")
    return listed


def record(study_path: Path, trials: list[str], analysis_run: bool, reason: str) -> None:
    """List the trials (and the analysis run) W&B does not hold; remove the list when none."""
    path = Path(study_path) / PENDING_FILE
    if trials or analysis_run:
        write_json(path, {"trials": trials, "analysis_run": analysis_run, "reason": reason, "time": time.time()})
    else:
        path.unlink(missing_ok=True)
