"""A stop request from a signal, raised as `Interrupted` at the next safe point.

Signal handlers only record the signal: raising from a handler could land inside a Ray
call and leave it half done. The driver's loops call `check()` once per turn (at least
every second), so a stop takes effect within about a second.
"""

from __future__ import annotations

import signal
import threading

from ..errors import Interrupted

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_requested: list[int] = []


def check() -> None:
    """Raise Interrupted if a stop was requested."""
    if _requested:
        raise Interrupted(_requested[0])


def catch() -> dict:
    """Route SIGTERM, SIGINT and SIGHUP to a stop request; return the handlers to restore."""
    _requested.clear()
    if threading.current_thread() is not threading.main_thread():
        return {}

    def request(signum, frame):
        if not _requested:
            _requested.append(signum)

    return {signum: signal.signal(signum, request) for signum in SIGNALS}


def restore(handlers: dict) -> None:
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    _requested.clear()
