"""W&B tracking (and nothing else in the project needs to know W&B exists).

The driver makes one tracker per study run::

    tracker = make_tracker(config, study, provenance)   # disabled -> NullTracker
    tracker.trial_update(record)     # a trial's record changed; returns at once
    tracker.poll()                   # each driver loop turn: new metrics rows
    tracker.log_analysis(study_dir) # after the report: the `analysis` run
    tracker.close()                  # write the backlog, finish every run

Modules: `mode` (which mode, importing wandb), `payload` (what a run holds, from the
ledger), `runs` (one trial's run), `writers` (the writers' queue), `tracker` (the
driver's side), `analysis_run` (the analysis run), `pending` (what W&B does not hold yet),
`offline` (reading offline runs back). wandb itself is imported only when a mode other
than disabled is in effect. `sync_study(DIR)` is `ablator sync DIR`.
"""

from .base import NullTracker, Tracker
from .mode import resolve_mode
from .offline import read_run, read_runs
from .tracker import WandbTracker, make_tracker, sync_study

__all__ = ["NullTracker", "Tracker", "WandbTracker", "make_tracker", "read_run", "read_runs",
           "resolve_mode", "sync_study"]
