"""Analysis of the ablation stage: paired deltas, CIs, Holm, verdicts, flags, report.

Public entry points:

* ``build_report(study_path, console=None) -> dict`` - write report.md, results.csv,
  verdicts.json and plots/ for a study dir; returns the verdicts payload (+ ``files``).
* ``analyse(records, config, study_path=None) -> dict`` / ``analyse_study(path)`` - the
  analysis as a JSON-ready dict, without writing files.
* ``compare_paired(baseline_by_seed, other_by_seed, mode, alpha, min_effect, n_bootstrap)``
  - one paired comparison (the tuning stage's confirmation uses it).
* ``undecided(study_path_or_records, config=None) -> list[str]`` - components that still
  need seeds under the adaptive-seeds rule (see adaptive.py).
"""

from .adaptive import decisions, undecided
from .report import analyse_study, build_report, load_study_config
from .stats import ESSENTIAL, HARMFUL, NO_EVIDENCE, compare_paired, holm
from .verdicts import analyse, verdicts_payload

__all__ = [
    "ESSENTIAL",
    "HARMFUL",
    "NO_EVIDENCE",
    "analyse",
    "analyse_study",
    "build_report",
    "compare_paired",
    "decisions",
    "holm",
    "load_study_config",
    "undecided",
    "verdicts_payload",
]
