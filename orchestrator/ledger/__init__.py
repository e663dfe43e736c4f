"""The study directory and its durable records.

Layout of a study directory::

    config.yaml            the user's YAML, byte for byte
    study.json             name, id, creation time, layout version, stage states
    plan.json              the trials of the plan (ids, variants, seeds)
    provenance.json        git commit, versions, host, CPU/GPU
    index.jsonl            the study index: one line per record write (see index.py)
    looks.jsonl            adaptive seeds: one line per look (n, boundary, alpha spent per row; looks.py)
    trials/<id>/record.json     state, attempts, errors, final metrics (one writer at a time)
    trials/<id>/metrics.jsonl   one line per report: step, attempt, time, metrics
    trials/<id>/checkpoint.pt   the last checkpoint (torch.save), written atomically

Every JSON file is written to a temporary file and renamed, so a crash never leaves a
half-written record. The driver writes PENDING and FAILED; the worker running a trial
writes RUNNING and COMPLETED, so the two never write the same record at once. A file
that cannot be read raises LedgerDamaged, naming it and how to mend it.
"""

from .files import as_no_room, read_json, write_json, write_text
from .records import (
    ABLATION,
    COMPLETED,
    CONFIRMATION,
    DETERMINISM,
    FAILED,
    PENDING,
    RUNNING,
    SEARCH,
    TUNING,
    VARIANT,
    AttemptError,
    TrialRecord,
    TuningInfo,
    with_purpose,
)
from .study import LAYOUT_VERSION, Study, TrialStore

__all__ = ["ABLATION", "COMPLETED", "CONFIRMATION", "DETERMINISM", "FAILED", "LAYOUT_VERSION", "PENDING", "RUNNING",
           "SEARCH", "TUNING", "VARIANT", "AttemptError", "Study", "TrialRecord", "TrialStore", "TuningInfo",
           "as_no_room", "read_json", "with_purpose", "write_json", "write_text"]
