"""The study index: index.jsonl, one JSON line per record write, replayed into memory.

Each line holds a trial id and the fields of its record that changed (the first line of
a trial holds them all), so status, report and resume planning read one file instead of
every trial directory. Lines are appended whole (O_APPEND, under an flock of the index
file); a reader remembers the byte offset it has read up to and reads only what is new;
a last line without its newline is a write in progress. record.json stays the truth of
one trial: ``ablator doctor --fix`` rebuilds the index from the trial directories.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from .files import append_line, complete_lines, parse_lines

INDEX = "index.jsonl"
#: a line {"trial_id": ..., "removed_trial": true} forgets a trial whose directory was deleted
REMOVED = "removed_trial"


class StudyIndex:
    """Replays index.jsonl into {trial_id: record (as the index keeps it)}."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._offset = 0
        self._lines = 0
        self._records: dict[str, dict] = {}
        self.problems: list[str] = []

    def exists(self) -> bool:
        return self.path.exists()

    def records(self) -> dict[str, dict]:
        """Every trial's latest record, reading only the lines appended since the last call."""
        data, end = complete_lines(self.path, self._offset)
        if data:
            rows, problems = parse_lines(data, self.path, self._lines + 1)
            self.problems += problems
            recs = self._records
            for row in rows:
                tid = row.get("trial_id")
                if isinstance(tid, str):
                    got = recs.get(tid)
                    if row.get(REMOVED):
                        recs.pop(tid, None)
                    elif got is None:
                        recs[tid] = row
                    else:
                        got.update(row)
            self._lines += data.count(b"\n")
            self._offset = end
        return self._records


def append_change(index_path: Path, before: dict | None, after: dict) -> None:
    """Append the fields of `after` that differ from `before` (all of them if None)."""
    if before is None:
        change = after
    else:
        change = {k: v for k, v in after.items() if before.get(k, _MISSING) != v}
        change["trial_id"] = after["trial_id"]
    line = json.dumps(change, separators=(",", ":"), default=str)
    fd = os.open(index_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        append_line(index_path, line)
    finally:
        os.close(fd)  # closing releases the lock


_MISSING = object()
