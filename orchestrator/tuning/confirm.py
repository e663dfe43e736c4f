"""Confirmation: the best tuned config against the baseline over `tuning.confirm_seeds`.

TPE's best trial is the maximum of many noisy draws, so its own value is biased upward
(winner's curse). The confirmation retrains the best config over fresh seeds, and the
baseline over the same seeds (reusing the ablation's baseline trials where a seed
coincides), and compares them paired with the ablation report's statistics
(`orchestrator.analysis.stats.compare_paired`): did tuning help beyond noise?
"""

from __future__ import annotations

from ..analysis.stats import ESSENTIAL, HARMFUL, INCONCLUSIVE, compare_paired
from ..config import StudyConfig
from ..execution import runner
from ..execution.observers import TrialObservers
from ..ledger import COMPLETED, CONFIRMATION, TUNING, VARIANT, Study
from ..ledger.tuning_results import HELPED, HURT, Confirmation
from ..plan import BASELINE, TrialSpec
from ..plan import trial_id as ablation_trial_id
from .tuning_plan import TuningPlan


def confirmation_specs(study: Study, config: StudyConfig, plan: TuningPlan, best_trial_id: str,
                       values: dict) -> tuple[list[TrialSpec], dict[int, str], dict[int, str]]:
    """Specs to run, and {seed: trial id} of the tuned and the baseline side."""
    specs: list[TrialSpec] = []
    tuned_ids: dict[int, str] = {}
    base_ids: dict[int, str] = {}
    for seed in config.tuning.confirm_seeds:
        tid = f"confirm-{best_trial_id}-seed{seed}"
        specs.append(TrialSpec(trial_id=tid, stage=TUNING, purpose=CONFIRMATION, variant="tuned",
                               removed=list(plan.removed), seed=seed, group=plan.group,
                               overrides=plan.overrides(config, values)))
        tuned_ids[seed] = tid
        reuse = study.trial(ablation_trial_id(BASELINE, seed, plan.group)).read()
        if (config.sweep is None and reuse is not None and reuse.purpose == VARIANT
                and reuse.state == COMPLETED and not reuse.removed):
            base_ids[seed] = reuse.trial_id
            continue
        tid = f"confirm-baseline-seed{seed}"
        specs.append(TrialSpec(trial_id=tid, stage=TUNING, purpose=CONFIRMATION, variant=BASELINE, removed=[],
                               seed=seed, group=plan.group, overrides=dict(plan.base_overrides)))
        base_ids[seed] = tid
    return specs, tuned_ids, base_ids


def prepare_confirmation(study: Study, config: StudyConfig, plan: TuningPlan, best_trial_id: str,
                         values: dict) -> tuple[list[TrialSpec], dict[int, str], dict[int, str]]:
    """Write PENDING records for new confirmation trials; return (specs still to run, tuned ids, baseline ids)."""
    specs, tuned_ids, base_ids = confirmation_specs(study, config, plan, best_trial_id, values)
    todo = runner.prepare(study, specs, annotate=lambda spec: {"tuning": {
        "confirms": best_trial_id, "params": values if spec.variant == "tuned" else {}}})
    return todo, tuned_ids, base_ids


def run_confirmation(study: Study, config: StudyConfig, plan: TuningPlan, executor: runner.TrialExecutor,
                     best_trial_id: str, values: dict, observers: TrialObservers) -> Confirmation:
    """Run (or reuse) the confirmation trials; return the paired comparison."""
    todo, tuned_ids, base_ids = prepare_confirmation(study, config, plan, best_trial_id, values)
    if todo:
        with observers.progress(len(todo), CONFIRMATION):
            runner.run_trials(executor, todo, tick=observers.tick)
    return compare(study, config, plan, tuned_ids, base_ids)


def compare(study: Study, config: StudyConfig, plan: TuningPlan, tuned_ids: dict[int, str],
            base_ids: dict[int, str]) -> Confirmation:
    tuned = _values(study, tuned_ids, plan.metric)
    base = _values(study, base_ids, plan.metric)
    a = config.analysis
    # compare_paired's effect is "first minus second, oriented": the tuned config goes first,
    # so a positive effect means tuning (with the harmful removals) beat the baseline
    comparison = compare_paired(tuned, base, plan.mode, alpha=a.alpha, min_effect=a.min_effect,
                                n_bootstrap=a.n_bootstrap)
    return Confirmation(
        **dict(comparison), outcome={ESSENTIAL: HELPED, HARMFUL: HURT}.get(comparison.verdict, INCONCLUSIVE),
        tuned_values={str(s): v for s, v in tuned.items()}, baseline_values={str(s): v for s, v in base.items()},
        tuned_trials={str(s): t for s, t in tuned_ids.items()},
        baseline_trials={str(s): t for s, t in base_ids.items()},
        reused_baseline=sorted(s for s, t in base_ids.items() if not t.startswith("confirm-")),
        alpha=a.alpha, min_effect=a.min_effect, removed=list(plan.removed))


def _values(study: Study, ids: dict[int, str], metric: str) -> dict[int, float]:
    out = {}
    for seed, tid in ids.items():
        record = study.trial(tid).read()
        value = record.metric(metric) if record is not None and record.state == COMPLETED else None
        if value is not None:
            out[seed] = float(value)
    return out


def sentence(result: Confirmation, metric: str) -> str:
    """One line: did tuning help beyond noise?"""
    n, effect = result.n, result.effect
    lo, hi = result.ci
    if result.outcome == HELPED:
        head = "Tuning helped beyond noise"
    elif result.outcome == HURT:
        head = "The tuned config is worse than the baseline beyond noise"
    else:
        head = "Inconclusive: tuning not shown to help beyond seed noise"
    if n < 2:
        return f"{head}: {result.note}"
    what = "tuned config" + (f" (with {', '.join(result.removed)} removed)" if result.removed else "")
    return (f"{head}: {metric} {effect:+.4g} ({what} vs baseline, + = better) over {n} paired "
            f"seeds, {100 * (1 - result.alpha):.0f}% t-CI [{lo:.4g}, {hi:.4g}], p = {result.p:.3g}"
            + (f", min_effect {result.min_effect:g}" if result.min_effect else "") + ".")
