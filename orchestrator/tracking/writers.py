"""The writers' queue and their gate.

The queue holds keys (trial ids, and a few named jobs) with the latest value for
each: a trial updated ten times while its writer is busy is written once, with its
latest record. It can therefore never hold more entries than the study has trials,
and `put` never blocks: back-pressure shows up as larger batches per write, not as
a waiting driver. A key is held by one writer at a time, so a trial's run is only
ever touched by one thread.

The gate lets a writer that met a W&B failure change the mode (online -> offline ->
off) while no other writer is inside wandb.
"""

from __future__ import annotations

import threading
from typing import Any


class WorkQueue:
    """Keys waiting for a writer, each with its latest value, oldest first."""

    def __init__(self):
        self._cond = threading.Condition()
        self._items: dict[str, Any] = {}
        self._last: set[str] = set()  # keys taken only when nothing else waits or runs
        self._held: set[str] = set()

    def put(self, key: str, value: Any = None, *, last: bool = False, keep: bool = False) -> None:
        """Queue `key` with `value` (replacing a queued value, unless `keep`); never blocks."""
        with self._cond:
            if keep and key in self._items:
                return
            self._items[key] = value
            if last:
                self._last.add(key)
            self._cond.notify()

    def take(self, timeout: float) -> tuple[str, Any] | None:
        """The oldest key no writer holds, now held by the caller; None after `timeout`."""
        with self._cond:
            found = self._find()
            if found is None:
                self._cond.wait(timeout)
                found = self._find()
            if found is None:
                return None
            self._held.add(found)
            return found, self._items.pop(found)

    def _find(self) -> str | None:
        for key in self._items:
            if key not in self._held and key not in self._last:
                return key
        if not self._held:
            for key in self._items:
                self._last.discard(key)
                return key
        return None

    def hold(self, key: str) -> bool:
        """Hold a key no writer holds (to close another trial's run); a queued value stays."""
        with self._cond:
            if key in self._held:
                return False
            self._held.add(key)
            return True

    def release(self, key: str) -> None:
        with self._cond:
            self._held.discard(key)
            self._cond.notify_all()

    def keys(self) -> set[str]:
        with self._cond:
            return set(self._items) | self._held

    def idle(self) -> bool:
        with self._cond:
            return not self._items and not self._held

    def __len__(self) -> int:
        with self._cond:
            return len(self._items) + len(self._held)


class Gate:
    """Writers pass it around each step; `pause` waits until none is inside."""

    def __init__(self):
        self._cond = threading.Condition()
        self._inside = 0
        self._pausing = False
        self.generation = 0

    def enter(self) -> int:
        with self._cond:
            while self._pausing:
                self._cond.wait()
            self._inside += 1
            return self.generation

    def leave(self) -> None:
        with self._cond:
            self._inside -= 1
            self._cond.notify_all()

    def pause(self, seen: int) -> bool:
        """Called outside the gate: True when the caller may change the mode now (then call
        `resume`); False when another writer already did for this generation."""
        with self._cond:
            while self._pausing:
                self._cond.wait()
            if self.generation != seen:
                return False
            self._pausing = True
            while self._inside:
                self._cond.wait()
            return True

    def resume(self) -> None:
        with self._cond:
            self.generation += 1
            self._pausing = False
            self._cond.notify_all()
