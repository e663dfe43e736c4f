"""The study index: index.jsonl, one JSON line per record write, replayed into memory.

Each line holds a trial id and the fields of its record that changed (the first line of a
trial: those that differ from the record model's defaults), so status, report and resume
planning read one file instead of every trial directory. Lines are appended whole (O_APPEND,
under an flock of the index file); a reader remembers the byte offset it has read up to and
reads only what is new; a last line without its newline is a write in progress. record.json
stays the truth of one trial: ``ablator doctor --fix`` rebuilds the index from the trial
directories.

Durability. record.json is fsynced before its index line is appended. The driver's lines are
fsynced too; a worker's (an attempt's start and end) are not: a power loss may take the last
of them, never a record.json. So a worker's line holds the whole record (a fresh line), never a
change that needs the lines before it, and a writer that finds a last line without its newline
under the lock (a line torn by a crash) cuts it first (kept in index.jsonl.torn). A trial the
index shows unfinished is run again only after its worker read record.json (`run_attempt`):
one that had ended returns its record at once, and its fresh line brings the index up to date.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path

from ..errors import AblatorError, LedgerDamaged
from .files import append_line, complete_lines, cut_torn_tail, has_torn_tail, parse_lines, read_json, write_json
from .records import DEFAULTS, FORMER_STAGES, TrialRecord, TrialStatus, index_view, parse

INDEX = "index.jsonl"
#: a line {"trial_id": ..., "removed_trial": true} forgets a trial whose directory was deleted
REMOVED = "removed_trial"
#: a line with "fresh_record": true holds a whole record (as it differs from the defaults), not a
#: change: written by a writer that has not read the record before (a new trial, a record set aside)
FRESH = "fresh_record"


class StudyIndex:
    """Replays index.jsonl into {trial_id: TrialRecord (as the index keeps it)}."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._offset = 0
        self._lines = 0
        self._records: dict[str, TrialRecord] = {}
        self.problems: list[str] = []
        self._lock = threading.Lock()  # the driver's threads (e.g. the tracker's) share a Study

    def exists(self) -> bool:
        return self.path.exists()

    def records(self) -> dict[str, TrialRecord]:
        """Every trial's latest record, reading only the lines appended since the last call."""
        with self._lock:
            return self._replay()

    def _replay(self) -> dict[str, TrialRecord]:
        data, end = complete_lines(self.path, self._offset)
        changed: dict[str, dict] = {}  # the trials these lines change, merged as plain fields
        for chunk in _chunks(data):  # a few MB at a time: memory holds the records, not every line
            rows, problems = parse_lines(chunk, self.path, self._lines + 1)
            self.problems += problems
            self._lines += chunk.count(b"\n")
            for row in rows:
                tid = row.get("trial_id")
                if not isinstance(tid, str):
                    continue
                if row.get(REMOVED):
                    self._records.pop(tid, None)
                    changed.pop(tid, None)
                    continue
                got = changed.get(tid)
                if row.pop(FRESH, False):
                    got = changed[tid] = {}
                elif got is None:
                    old = self._records.get(tid)
                    got = changed[tid] = index_view(old.to_json()) if old is not None else {}
                got.update(row)
        for tid in list(changed):  # one model per changed trial; its plain fields are freed as we go
            record, problem = parse(changed.pop(tid))
            if record is None:
                self._records.pop(tid, None)
                self.problems.append(f"{self.path}: trial {tid}: {problem} (`ablator doctor --fix` rebuilds "
                                     "the index from the trial directories)")
            else:
                self._records[tid] = record
        self._offset = end
        return self._records

    def statuses(self) -> dict[str, TrialStatus]:
        """Each trial's status (what status and resume planning need), read: from the status cache
        (index.jsonl.status) plus the lines appended since; the cache is not written here
        (``keep_status_cache`` does).

        The cache names the index file (inode) and the byte offset it has read up to, so a
        reader parses only the lines appended since; a rebuilt index starts it afresh.
        """
        return {tid: TrialStatus(*t) for tid, t in self._read_statuses()[0].items()}

    def keep_status_cache(self) -> None:
        """Bring the status cache up to the index's end (best effort: a read-only study is left as it is)."""
        trials, (file_id, end, lines) = self._read_statuses()
        stages = sorted({str(t[0]) for t in trials.values()})
        states = sorted({str(t[1]) for t in trials.values()})
        s_code = {s: i for i, s in enumerate(stages)}
        t_code = {s: i for i, s in enumerate(states)}
        vals = list(trials.values())
        cache = {"inode": file_id[0], "head": file_id[1], "offset": end, "lines": lines, "stages": stages,
                 "states": states, "ids": list(trials),
                 "columns": [[s_code[str(v[0])] for v in vals], [t_code[str(v[1])] for v in vals],
                             [v[2] for v in vals], [v[3] for v in vals], [v[4] for v in vals]]}
        try:
            write_json(self._cache_path, cache, compact=True)
        except (OSError, AblatorError):
            pass  # a read-only study directory: the next reader replays the index again

    @property
    def _cache_path(self) -> Path:
        return self.path.with_name(self.path.name + ".status")

    def _read_statuses(self) -> tuple[dict[str, list], tuple[tuple[int, str], int, int]]:
        """{trial_id: [stage, state, attempts, duration_s, last error]}, and where the index was read to."""
        st = os.stat(self.path)
        with open(self.path, "rb") as fh:
            head = fh.read(256).decode(errors="replace")  # with the inode: the same index file
        trials: dict[str, list] = {}
        offset = lines = 0
        try:
            cache = read_json(self._cache_path)
        except LedgerDamaged:
            cache = None  # a cache: rebuilt by the next keep_status_cache
        if (isinstance(cache, dict) and cache.get("inode") == st.st_ino and cache.get("head") == head
                and cache.get("offset", 1 << 62) <= st.st_size):
            offset, lines = cache["offset"], cache["lines"]
            stages, states = cache["stages"], cache["states"]
            cols = cache["columns"]
            trials = {tid: [stages[a], states[b], c, d, e] for tid, a, b, c, d, e in
                      zip(cache["ids"], cols[0], cols[1], cols[2], cols[3], cols[4])}
        data, end = complete_lines(self.path, offset)
        self.problems = []
        for chunk in _chunks(data):
            rows, problems = parse_lines(chunk, self.path, lines + 1)
            self.problems += problems
            lines += chunk.count(b"\n")
            for row in rows:
                _apply(trials, row)
        return trials, ((st.st_ino, head), end, lines)


def _apply(trials: dict[str, list], row: dict) -> None:
    """Apply one index line to the trials' statuses."""
    tid = row.get("trial_id")
    if not isinstance(tid, str):
        return
    if row.get(REMOVED):
        trials.pop(tid, None)
        return
    got = trials.get(tid)
    if got is None or row.get(FRESH):
        got = trials[tid] = [DEFAULTS["stage"], DEFAULTS["state"], 0, 0.0, None]
    for i, key in enumerate(STATUS_FIELDS):
        if key in row:
            got[i] = row[key]
    if got[0] in FORMER_STAGES:  # a line of an older layout, where the stage held the purpose
        got[0] = FORMER_STAGES[got[0]][0]
    if "errors" in row:
        got[4] = row["errors"][-1].get("error") if row["errors"] else None


def _chunks(data: bytes, size: int = 4 << 20):
    """Slices of whole lines, about `size` bytes each."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", start + size)
        end = len(data) if end < 0 else end + 1
        yield data[start:end]
        start = end


#: the record fields of a trial's status, in order (then the last error's message)
STATUS_FIELDS = ("stage", "state", "attempts", "duration_s")


def change_line(before: dict | None, after: dict) -> str:
    """One index line: the fields of `after` that differ from `before`; with no `before`, a fresh
    record: the fields that differ from the record's defaults."""
    base = DEFAULTS if before is None else before
    change = {k: v for k, v in after.items() if base.get(k, _MISSING) != v}
    change["trial_id"] = after["trial_id"]
    if before is None:
        change[FRESH] = True
    return json.dumps(change, separators=(",", ":"), default=str)


def removal_line(trial_id: str) -> str:
    """The index line that forgets a trial (its directory was deleted)."""
    return json.dumps({"trial_id": trial_id, REMOVED: True})


def append_index_line(index_path: Path, line: str, sync: bool = True) -> None:
    """Append one line to the study index, whole, under the index's lock (fsynced unless `sync`
    is False); a torn last line, which no writer holding the lock can be writing, is cut first."""
    fd = os.open(index_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if has_torn_tail(index_path):
            cut_torn_tail(index_path)
        append_line(index_path, line, sync=sync)
    finally:
        os.close(fd)  # closing releases the lock


_MISSING = object()
