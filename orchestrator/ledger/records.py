"""The trial record: one model for what record.json holds.

The on-disk JSON is the model's fields plus whatever a stage adds (e.g. ``tuning``);
readers get the plain dict back, checked against the model.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

PENDING, RUNNING, COMPLETED, FAILED = "PENDING", "RUNNING", "COMPLETED", "FAILED"
STATES = (PENDING, RUNNING, COMPLETED, FAILED)
State = Literal["PENDING", "RUNNING", "COMPLETED", "FAILED"]


class AttemptError(BaseModel):
    """Why one attempt of a trial failed."""

    model_config = ConfigDict(extra="allow")
    attempt: int
    error: str
    traceback: str | None = None
    time: float | None = None


class TrialRecord(BaseModel):
    """State, attempts, timestamps, node, errors and final metrics of one trial."""

    model_config = ConfigDict(extra="allow")
    trial_id: str
    stage: str = "ablation"
    variant: str | None = None
    removed: list[str] = []
    seed: Any = None
    group: str | None = None
    state: State
    attempts: int = 0
    errors: list[AttemptError] = []
    final: dict[str, Any] | None = None
    started_at: float | None = None
    ended_at: float | None = None
    attempt_started: float | None = None
    duration_s: float = 0.0
    host: str | None = None
    pid: int | None = None


def check(record: Any) -> str | None:
    """What is wrong with a record (None when it fits the model)."""
    if not isinstance(record, dict):
        return f"a record must be a JSON object, not {type(record).__name__}"
    try:
        TrialRecord.model_validate(record)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "<record>"
        return f"field '{where}': {err['msg']}"
    return None


#: fields the study index leaves out (the same on every trial of a node; in record.json)
INDEX_DROPS = ("hardware", "pid")


def index_view(record: dict) -> dict:
    """The record as the study index keeps it: without the worker's hardware and pid."""
    return {k: v for k, v in record.items() if k not in INDEX_DROPS}
