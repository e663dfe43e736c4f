"""Analysis of the ablation stage: paired deltas, CIs, Holm, verdicts, flags, report.

Public entry points:

* ``build_report(study_path, console=None) -> Verdicts`` - write report.md, results.csv,
  verdicts.json and plots/ for a study dir; returns the verdicts (``orchestrator.ledger.verdicts_json``).
* ``analyse(records, config, study_path=None) -> Analysis`` / ``analyse_study(path)`` - the
  analysis without writing files: per group its variants' metrics and its typed rows
  (``Comparison``, ``Factor``, ``FactorInteraction``), the flags (``Flag``) and the cost;
  ``verdicts_payload(analysis)`` is the ``Verdicts`` document written to verdicts.json.
* ``compare_paired(baseline_by_seed, other_by_seed, mode, alpha, min_effect, n_bootstrap)``
  - one variant against the baseline over paired seeds, a ``Comparison``: effect, CI,
  p-values, verdict, mde, seeds_needed (the tuning stage's confirmation uses it);
  ``stats.decide_family`` then Holm-adjusts a family of such comparisons.
* ``undecided(study_path_or_records, config=None) -> list[str]`` - components that still
  need seeds under the adaptive-seeds rule; ``next_seed`` - the study session's next step.
"""

from .adaptive import decisions, next_seed, undecided
from .report import analyse_study, build_report, load_study_config
from .stats import ESSENTIAL, HARMFUL, INCONCLUSIVE, NEGLIGIBLE, compare_paired, holm
from .study_analysis import analyse, verdicts_payload

__all__ = [
    "ESSENTIAL",
    "HARMFUL",
    "INCONCLUSIVE",
    "NEGLIGIBLE",
    "analyse",
    "analyse_study",
    "build_report",
    "compare_paired",
    "decisions",
    "holm",
    "load_study_config",
    "next_seed",
    "undecided",
    "verdicts_payload",
]
