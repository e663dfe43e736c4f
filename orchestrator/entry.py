"""The `ablator` script: a stop signal is told plainly from the process's first instant.

`interrupt.early` is in place before the command is even imported, so a SIGTERM while Python
loads ends with exit 143 and a sentence, never a traceback or a bare signal death.
"""

from __future__ import annotations

import sys


def main() -> None:
    from .errors import Interrupted
    from .execution import interrupt

    try:
        interrupt.early()  # inside the try: a signal may arrive between its handlers being set
        from .cli import app

        app()
    except Interrupted as exc:  # before a command took over: nothing ran, nothing changed
        sys.stderr.write(f"{exc} while `ablator` started: nothing ran; run the same command again "
                         "(a study that ran before continues with `ablator resume DIR`).\n")
        sys.exit(exc.exit_code)
