"""The error kinds of the orchestrator, each with its exit code and whether a retry can help.

Every module raises these (never a bare Exception for a condition a user can meet); the
CLI prints ``str(exc)`` without a traceback and exits with ``exc.exit_code``.

    AblatorError             base: anything this package raises on purpose
      UserError              the user can fix it (exit 2)
        ConfigError          a study config with problems, each with file:line and field
        StudyError           a study directory that cannot be used as asked
          StudyLocked        another driver holds the study
          LedgerDamaged      a file of the ledger cannot be read (names it, says how to mend)
          NoRoom             a disk the study writes to is full: the study stops, resumable
        ResourceError        a trial asks for more than any node of the cluster has
        ClusterError         a Ray cluster that cannot be reached or used
      Interrupted            SIGINT/SIGTERM/SIGHUP: stopped cleanly, resumable (exit 130/143)
      NodeLost               the Ray node the driver runs on died under it: stopped, resumable (exit 75)
      BudgetReached          the study's budget is spent: report written, `resume --budget` raises it (exit 3)
"""

from __future__ import annotations

from pathlib import Path


class AblatorError(Exception):
    """Base of every error the orchestrator raises on purpose."""

    exit_code: int = 1
    #: whether running the same thing again may succeed without a change by the user
    retryable: bool = False


class UserError(AblatorError):
    """Something the user can fix: printed as one readable block, exit code 2."""

    exit_code = 2


class ConfigError(UserError):
    """A study config with problems; ``str()`` names file, line and field of each.

    A problem's place is a line number of the file, or a text such as "argument 'a.b=1'"
    for a value set on the command line.
    """

    def __init__(self, path: str | Path, problems: list[tuple[str, int | str | None, str]]):
        self.path = str(path)
        self.problems = problems
        lines = [f"Invalid study config {self.path}:"]
        for field, line, msg in problems:
            where = line if isinstance(line, str) else f"{self.path}:{line}" if line else self.path
            lines.append(f"  {where}  {field or '<root>'}: {msg}")
        super().__init__("\n".join(lines))


class StudyError(UserError):
    """A study directory that cannot be used as asked (missing, different config, not ready)."""


class StudyLocked(StudyError):
    """Another driver holds this study directory."""

    retryable = True


class LedgerDamaged(StudyError):
    """A ledger file that cannot be read: the message names the file and how to mend it."""

    def __init__(self, path: str | Path, problem: str, mend: str = ""):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" + (f"\n  {mend}" if mend else ""))


class NoRoom(StudyError):
    """A write found its disk full (or over quota). Not a trial failure: the study stops, keeps
    everything written before, and resumes once there is room."""

    retryable = True


class ResourceError(UserError):
    """A trial's resource request that no node of the cluster can satisfy."""


class ClusterError(UserError):
    """A Ray cluster that cannot be reached, joined or submitted to."""

    retryable = True


class Interrupted(AblatorError):
    """The driver was asked to stop (SIGINT, SIGTERM, SIGHUP); the study can be resumed."""

    #: whether the driver has told the user how to continue (the study's resume command)
    told: bool = False

    def __init__(self, signum: int, message: str = ""):
        import signal

        self.signum = signum
        self.exit_code = 128 + int(signum)
        name = signal.Signals(signum).name
        super().__init__(message or f"interrupted by {name}")


class NodeLost(AblatorError):
    """The Ray node this driver runs on died under it (its raylet ended: killed, out of memory, the
    machine lost). Not a trial failure: running trials are left PENDING, finished ones kept, and
    `ablator resume DIR` continues. Exit 75 (EX_TEMPFAIL): a job script can tell it from exit 1
    (a trial FAILED) and run the resume."""

    exit_code = 75
    retryable = True


class BudgetReached(AblatorError):
    """The study's budget (``budget:``) is spent: no trial starts after it, the running ones finish, the report
    is written (the rows it left undecided, and what each would need). Exit 3: not 0 (some planned trial did
    not run), not 1 (no trial failed); `ablator resume DIR --budget ...` raises it and continues."""

    exit_code = 3
