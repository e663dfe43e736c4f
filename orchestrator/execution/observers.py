"""Who hears of trial updates: one list the study session fills once, every stage reports to.

Progress, the tracker (W&B) and telemetry subscribe; every run of trials (the ablation's
tiers, adaptive seeds and determinism repeat; the tuning's search and confirmation) passes
``observers.update`` to its executor and ``observers.tick`` to its loop, so a trial of any
stage reaches all of them the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console

from ..ledger import TrialRecord
from .progress import StudyProgress


class TrialObservers:
    """Subscribers to trial records (`update`) and to each turn of a driver loop (`tick`)."""

    def __init__(self, console: Console):
        self.console = console
        self._updates: list[Callable[[TrialRecord], None]] = []
        self._ticks: list[Callable[[], None]] = []

    def subscribe(self, update: Callable[[TrialRecord], None] | None = None,
                  tick: Callable[[], None] | None = None) -> Callable[[], None]:
        """Add `update` (a changed record) and `tick` (a loop turn); return what unsubscribes them."""
        if update is not None:
            self._updates.append(update)
        if tick is not None:
            self._ticks.append(tick)

        def unsubscribe() -> None:
            if update is not None:
                self._updates.remove(update)
            if tick is not None:
                self._ticks.remove(tick)
        return unsubscribe

    def update(self, record: TrialRecord) -> None:
        """A trial's record changed (any stage, any state)."""
        for fn in self._updates:
            fn(record)

    def tick(self) -> None:
        """One turn of a stage's driver loop (refresh progress, let the tracker tail new metrics)."""
        for fn in self._ticks:
            fn()

    @contextlib.contextmanager
    def progress(self, total: int, label: str) -> Iterator[StudyProgress]:
        """A progress display of one stage's `total` trials, subscribed while the stage runs."""
        with StudyProgress(self.console, total, label) as progress:
            unsubscribe = self.subscribe(progress.seen, progress.update)
            try:
                yield progress
            finally:
                unsubscribe()
