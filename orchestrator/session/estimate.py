"""An estimate before launch (`ablator launch --dry-run`): the ablation stage's trials and trial-hours as
bounds, and a range from the measured trial times when the study already has trials.

Trials: fewest = the first tier's variants x initial seeds (adaptive seeds; every seed for fixed ones),
most = every tier's variants x max seeds, plus the determinism repeat. Trial-hours (GPU-hours on a study that
reserves GPUs, else worker-hours; config/budget.py): the trial counts times the fastest and slowest measured
trial, or, before any trial ran, at most the count times `fault_tolerance.trial_timeout` (per attempt).
"""

from __future__ import annotations

from rich.console import Console

from .. import plan as planning
from ..config import AdaptiveSeeds, StudyConfig
from ..config.budget import rate, spent, unit
from ..ledger import ABLATION, VARIANT, TrialRecord


def trial_bounds(config: StudyConfig) -> tuple[int, int]:
    """(fewest, most) ablation-stage trials the plan can run."""
    variants = len(planning.variants(config))
    adaptive = isinstance(config.seeds, AdaptiveSeeds)
    first = len(config.seed_list)
    most_seeds = config.seeds.max if adaptive else first
    tiers = config.tier_names
    per_tier = [len(planning.groups(config, t)) for t in tiers]
    repeat = int(config.analysis.check_determinism)
    fewest = variants * first * per_tier[0] + (repeat if len(tiers) == 1 else 0)
    return fewest, variants * most_seeds * sum(per_tier) + repeat


def print_estimate(config: StudyConfig, console: Console, records: list[TrialRecord]) -> None:
    fewest, most = trial_bounds(config)
    u, hourly = unit(config.resources), rate(config.resources)
    trials = f"{fewest}..{most}" if fewest != most else str(most)
    lines = [f"Estimate: [bold]{trials} trials[/bold] in the ablation stage"]
    measured = [r.duration_s / 3600 for r in records
                if r.stage == ABLATION and r.purpose == VARIANT and r.finished and r.duration_s > 0]
    if measured:
        lo, hi = min(measured) * hourly, max(measured) * hourly
        used, done = spent(records, config.resources)
        lines.append(f"  {u}: {fewest * lo:.3g}..{most * hi:.3g} (from {len(measured)} measured trials, "
                     f"{lo:.3g}..{hi:.3g} each); {used:.3g} spent so far on {done} finished trials")
    elif config.fault_tolerance.trial_timeout:
        per = config.fault_tolerance.trial_timeout / 3600 * hourly
        lines.append(f"  {u}: at most {most * per:.3g} (fault_tolerance.trial_timeout {per:.3g} per attempt); "
                     "a range once trials have run")
    else:
        lines.append(f"  {u}: unknown until a trial has run (a range then; fault_tolerance.trial_timeout "
                     "gives an upper bound now)")
    if config.budget is not None:
        lines.append(f"  budget: {config.budget.text(config.resources)} (the study stops with its report, "
                     "exit 3, when it is reached)")
    console.print("\n".join(lines))
