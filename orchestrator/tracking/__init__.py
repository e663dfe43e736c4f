"""W&B tracking (and nothing else in the project needs to know W&B exists).

The driver makes one tracker per study run::

    tracker = make_tracker(config, study, provenance)   # disabled -> NullTracker
    tracker.trial_update(record)     # a trial's record changed; returns at once
    tracker.poll()                   # each driver loop turn: tail metrics.jsonl
    tracker.study_summary(study_dir) # after the report: the `analysis` run
    tracker.close()                  # finish every run (bounded wait)

wandb itself is imported only here, and only when a mode other than disabled is
in effect. `read_runs(<study>/wandb)` reads offline runs back (tests, audits).
"""

from .base import NullTracker, Tracker
from .offline import read_run, read_runs
from .wandb_tracker import WandbTracker, make_tracker, resolve_mode

__all__ = ["NullTracker", "Tracker", "WandbTracker", "make_tracker", "read_run", "read_runs", "resolve_mode"]
