"""A stop request from a signal, raised as `Interrupted` at the next safe point.

Signal handlers only record the signal: raising from a handler could land inside a Ray
call and leave it half done. The driver's loops call `check()` once per turn (at least
every second), so a stop takes effect within about a second.

From the `ablator` process's first instant (`early`) SIGTERM and SIGHUP end a command with
`Interrupted` (exit 143 / 129); a driver (`defer`) only records them from its start and
raises them at its safe points, so nothing it writes is left half done.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import Interrupted

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
EARLY = (signal.SIGTERM, signal.SIGHUP)  # SIGINT is Python's KeyboardInterrupt until a driver catches it
_requested: list[int] = []
_deferred: list[bool] = []


def check() -> None:
    """Raise Interrupted if a stop was requested."""
    if _requested:
        raise Interrupted(_requested[0])


def _early(signum, frame):
    if not _requested:
        _requested.append(signum)
    if not _deferred:
        raise Interrupted(signum)


def early() -> None:
    """From now on SIGTERM and SIGHUP raise Interrupted where the process is (until `defer`)."""
    for signum in EARLY:
        signal.signal(signum, _early)


def defer() -> None:
    """From now on a stop signal is only recorded; `check` raises it at the driver's next safe point."""
    _deferred[:] = [True]


def catch() -> dict:
    """Route SIGTERM, SIGINT and SIGHUP to a stop request; return the handlers to restore.

    A request recorded before (a signal while the driver started) is kept: the next `check` raises it.
    """
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


@contextmanager
def around_ray_init() -> Iterator[None]:
    """Keep a stop handler of ours through `ray.init`, then raise a stop it recorded meanwhile.

    `ray.init` installs its own SIGTERM handler (``sys.exit(signum)``) first thing: a SIGTERM then
    exits 15 without a word, or is lost when the SystemExit lands in a callback that ignores it.
    While one of our handlers is in place, Ray's is not installed (Ray's `set_sigterm_handler`
    is skipped for the call).
    """
    ours = getattr(signal.getsignal(signal.SIGTERM), "__module__", None) == __name__
    from ray._private import utils as ray_utils

    original = getattr(ray_utils, "set_sigterm_handler", None)
    if ours and original is not None:
        ray_utils.set_sigterm_handler = lambda handler: None
    try:
        yield
    finally:
        if original is not None:
            ray_utils.set_sigterm_handler = original
    check()
