"""A live progress bar: trials done / running / failed / restarted, and an ETA."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..ledger import COMPLETED, FAILED


class StudyProgress:
    """Counts trial states from the records the executor reports."""

    def __init__(self, console: Console, total: int, label: str = "ablation"):
        self.records: dict[str, dict] = {}
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            disable=console.quiet,
        )
        self._task = self._progress.add_task(label, total=total, detail="")

    def __enter__(self) -> StudyProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.update()
        self._progress.stop()

    def seen(self, record: dict) -> None:
        self.records[record["trial_id"]] = record
        self.update()

    def update(self) -> None:
        recs = self.records.values()
        done = sum(r["state"] == COMPLETED for r in recs)
        failed = sum(r["state"] == FAILED for r in recs)
        running = sum(bool(r.get("attempt_started")) for r in recs)
        restarts = sum(max(0, r["attempts"] - 1) for r in recs)
        detail = f"running {running}  failed {failed}  restarted {restarts}"
        self._progress.update(self._task, completed=done + failed, detail=detail)
