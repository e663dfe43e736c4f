"""The trial record: one model for what record.json holds, used everywhere a record goes.

``TrialStore.read()`` and ``Study.records()`` give ``TrialRecord`` objects; ``TrialStore.write()``
takes one and checks it again before it reaches the disk. Fields of another layout (older or
newer) are kept as they are (``extra="allow"``), so nothing in a record is lost by a round trip.
"""

from __future__ import annotations

import time
from typing import Any, Literal, NamedTuple, get_args

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

#: a trial's state: the one definition every module reads
State = Literal["PENDING", "RUNNING", "COMPLETED", "FAILED"]
STATES = PENDING, RUNNING, COMPLETED, FAILED = get_args(State)

#: a trial's stage (ablation, tuning), and its purpose there: a variant of the design (ablation), a TPE
#: search trial (tuning), a confirmation of the best config (tuning), the determinism repeat (ablation)
ABLATION, TUNING = "ablation", "tuning"
VARIANT, SEARCH, CONFIRMATION, DETERMINISM = "variant", "search", "confirmation", "determinism"
#: records written before `purpose` existed held the purpose in `stage`: its (stage, purpose) now
FORMER_STAGES = {CONFIRMATION: (TUNING, CONFIRMATION), DETERMINISM: (ABLATION, DETERMINISM)}


def with_purpose(fields: dict) -> dict:
    """A record's or plan entry's fields with `purpose`: an older layout's from its stage, which may have held it."""
    if "purpose" in fields:
        return fields
    stage = fields.get("stage", ABLATION)
    stage, purpose = FORMER_STAGES.get(stage, (stage, SEARCH if stage == TUNING else VARIANT))
    return {**fields, "stage": stage, "purpose": purpose}


class AttemptError(BaseModel):
    """Why one attempt of a trial failed."""

    model_config = ConfigDict(extra="allow")
    attempt: int
    error: str
    traceback: str | None = None
    time: float | None = None
    #: False when no retry can help (e.g. the trainable cannot be imported): not restarted
    retryable: bool = True
    #: False when the attempt does not count toward max_failures (killed for another trial's memory)
    counted: bool = True


class TuningInfo(BaseModel):
    """What the tuning stage adds to its trials: the Optuna trial number (search trials) or
    the trial a confirmation trial confirms, and the tuned values."""

    model_config = ConfigDict(extra="allow")
    params: dict[str, Any] = {}
    number: int | None = None
    confirms: str | None = None


class TrialStatus(NamedTuple):
    """What `ablator status` and resume planning need of a trial (the study index keeps it)."""

    stage: str
    state: str
    attempts: int
    duration_s: float
    last_error: str | None


class TrialRecord(BaseModel):
    """State, attempts, timestamps, node, errors and final metrics of one trial."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    # what the plan asked for (the trial spec)
    trial_id: str
    stage: str = ABLATION
    purpose: str = VARIANT
    variant: str | None = None
    removed: list[str] = []
    seed: int | str | None = None
    group: str | None = None
    overrides: dict[str, Any] = {}
    inference_only: bool = False
    source_trial: str | None = None
    alternatives: dict[str, str] = {}
    levels: dict[str, Any] = {}
    # its life
    state: State = PENDING
    attempts: int = 0
    errors: list[AttemptError] = []
    final: dict[str, Any] | None = None
    started_at: float | None = None
    ended_at: float | None = None
    attempt_started: float | None = None
    duration_s: float = 0.0
    saved_s: float = 0.0
    stopped_early: bool = False
    data_fingerprints: dict[str, Any] = {}
    # where it ran (the running attempt's worker)
    host: str | None = None
    pid: int | None = None
    node_id: str | None = None
    gpu_ids: str | None = None
    #: GPUs the trial reserved, all workers together (0.25: a quarter of one GPU); the budget charges it
    gpus: float | None = None
    hardware: dict[str, Any] | None = None
    reproducibility: dict[str, Any] | None = None
    #: every rank of a multi-worker attempt: rank, host, node_id, pid, gpu_ids
    ranks: list[dict[str, Any]] = []
    # the tuning stage's trials
    tuning: TuningInfo | None = None

    @model_validator(mode="before")
    @classmethod
    def _former_stage(cls, data: Any) -> Any:
        return with_purpose(data) if isinstance(data, dict) else data

    @property
    def finished(self) -> bool:
        return self.state in (COMPLETED, FAILED)

    @property
    def last_error(self) -> str | None:
        return self.errors[-1].error if self.errors else None

    @property
    def status(self) -> TrialStatus:
        return TrialStatus(self.stage, self.state, self.attempts, self.duration_s, self.last_error)

    def add_error(self, error: str, traceback: str | None = None, retryable: bool = True,
                  counted: bool = True) -> None:
        """Record why the current attempt failed."""
        self.errors = [*self.errors, AttemptError(attempt=self.attempts, error=error, traceback=traceback,
                                                  time=time.time(), retryable=retryable, counted=counted)]

    def metric(self, name: str) -> Any:
        """The final value of a metric (None when the trial has none)."""
        return (self.final or {}).get(name)

    def to_json(self) -> dict:
        """The record as record.json holds it (NaN and inf metric values stay as they are)."""
        return self.model_dump()


def parse(data: Any) -> tuple[TrialRecord | None, str | None]:
    """(the record, None) when `data` fits the model, else (None, what is wrong)."""
    if not isinstance(data, dict):
        return None, f"a record must be a JSON object, not {type(data).__name__}"
    try:
        return TrialRecord.model_validate(data), None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "<record>"
        return None, f"field '{where}': {err['msg']}"


#: fields the study index leaves out (the same on every trial of a node; in record.json)
INDEX_DROPS = frozenset({"hardware", "pid"})


def index_view(data: dict) -> dict:
    """A record's JSON (``to_json()``) as the study index keeps it: without the worker's hardware and pid."""
    return {k: v for k, v in data.items() if k not in INDEX_DROPS}


#: the fields' defaults: the first index line of a trial holds only what differs from them
DEFAULTS = {name: f.get_default(call_default_factory=True) for name, f in TrialRecord.model_fields.items()
            if not f.is_required()}
