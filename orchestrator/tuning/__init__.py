"""The tuning stage: Optuna TPE over the ablation's survivors, on Ray, resumable, confirmed.

Ablate first, then tune only what survived; never mix the two. The stage reads
the ablation's verdicts from disk (verdicts.json), so it can run right after the ablation
(`tuning.schedule: after_ablation`), at a set time (`{at: ...}`), or whenever the user
runs `ablator tune DIR` (`manual`), on any machine that reads the study directory.

Modules: space (what is tuned and why), search (Optuna storage, ask/tell on Ray,
pruning, resume), confirm (best config vs baseline over fresh seeds), report
(best_config.yaml, tuning/report.md, plots), stage (the whole stage; the study session runs it).

Files in the study directory::

    tuning/optuna.log       the Optuna study (JournalStorage, JournalFileBackend)
    tuning/report.md        what was tuned and why, history, importances, confirmation
    tuning/history.png, tuning/importances.png
    tuning/results.json     the same, for programs
    best_config.yaml        a launchable study config with the best values
    trials/tune-NNNN/       tuning trials (stage "tuning", purpose "search"), like any trial
    trials/confirm-*/       confirmation trials (stage "tuning", purpose "confirmation")
"""

from .confirm import run_confirmation
from .search import PruneHook, journal_path, open_optuna_study, open_storage
from .stage import not_ready, nothing_to_tune, run_tuning
from .tuning_plan import TunedParam, TuningPlan, to_distribution, tuning_plan

__all__ = [
    "PruneHook",
    "TunedParam",
    "TuningPlan",
    "journal_path",
    "not_ready",
    "nothing_to_tune",
    "open_optuna_study",
    "open_storage",
    "run_confirmation",
    "run_tuning",
    "to_distribution",
    "tuning_plan",
]
