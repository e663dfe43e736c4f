"""Progress of a stage: done / running / pending / failed / restarted, and an ETA.

Counters change by the difference each record event makes (O(1) per event). In a
terminal a live bar shows them; elsewhere (a Slurm log, `ray job logs`, nohup) one plain
line is printed at least every `every` seconds and at the end of the stage.
"""

from __future__ import annotations

import time
from typing import Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..ledger import COMPLETED, FAILED, TrialRecord

PLAIN_EVERY_S = 30.0


class StudyProgress:
    """Counts trial states from the records the executor reports."""

    def __init__(self, console: Console, total: int, label: str = "ablation", every: float = PLAIN_EVERY_S):
        self.console, self.total, self.label, self.every = console, total, label, every
        self._last: dict[str, tuple[str, bool, int]] = {}
        self.done = self.failed = self.running = self.restarts = 0
        self._start = self._printed = time.monotonic()
        self._live = console.is_terminal and not console.quiet
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=console, transient=False, disable=not self._live,
        )
        self._task = self._progress.add_task(label, total=total, detail="")

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.update()
        self._progress.stop()
        if not self._live and not self.console.quiet:
            self._line()

    def seen(self, record: TrialRecord) -> None:
        """Apply one record event: subtract what this trial counted before, add what it counts now."""
        key = (record.state, bool(record.attempt_started), max(0, record.attempts - 1))
        old = self._last.get(record.trial_id)
        if old == key:
            return
        for (state, running, restarts), sign in ((old, -1), (key, 1)) if old else ((key, 1),):
            self.done += sign * (state == COMPLETED)
            self.failed += sign * (state == FAILED)
            self.running += sign * (running and state not in (COMPLETED, FAILED))
            self.restarts += sign * restarts
        self._last[record.trial_id] = key
        self.update()

    def summary(self) -> str:
        finished = self.done + self.failed
        pending = max(0, self.total - finished - self.running)
        elapsed = time.monotonic() - self._start
        eta = f"{(self.total - finished) * elapsed / finished:.0f} s" if finished else "?"
        return (f"[{self.label}] done {self.done}/{self.total}  running {self.running}  pending {pending}  "
                f"failed {self.failed}  restarts {self.restarts}  elapsed {elapsed:.0f} s  ETA {eta}")

    def update(self) -> None:
        if self._live:
            detail = f"running {self.running}  failed {self.failed}  restarted {self.restarts}"
            self._progress.update(self._task, completed=self.done + self.failed, detail=detail)
        elif not self.console.quiet and time.monotonic() - self._printed >= self.every:
            self._line()

    def _line(self) -> None:
        self._printed = time.monotonic()
        self.console.print(self.summary(), markup=False, highlight=False)  # wraps at spaces to fit a log
