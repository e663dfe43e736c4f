"""The tracker interface the driver talks to, and the no-op tracker.

The driver (one process per study run) owns one tracker. Trials never touch it:
they write the ledger (record.json, metrics.jsonl) and the tracker reads the
ledger, so W&B stays off every trial's critical path.
"""

from __future__ import annotations

from pathlib import Path

from ..ledger import TrialRecord


class Tracker:
    """What the driver calls. This base class does nothing (tracking disabled)."""

    #: "disabled", "offline" or "online": where runs go now (a failure may lower it).
    mode: str = "disabled"

    def trial_update(self, record: TrialRecord) -> None:
        """A trial's record changed (pending, started, restarted, finished, failed).

        Returns at once: the work happens in the tracker's writer threads.
        """

    def poll(self) -> None:
        """Driver loop tick (~1 s): tail metrics.jsonl of the trials being tracked."""

    def log_analysis(self, study_dir: str | Path) -> None:
        """After the report: one `analysis` run with results, plots, verdicts, best config."""

    def close(self, timeout: float | None = None) -> None:
        """Write the backlog and finish every run; after `timeout` s (or Ctrl-C), list the
        trials not written in the study dir instead."""


class NullTracker(Tracker):
    """Tracking disabled: every call is a no-op, and wandb is never imported."""
