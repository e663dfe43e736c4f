"""The ablation stage: tiers in order, adaptive seeds, the determinism check, the tier gate.

It runs trials through ``execute(specs, label=...)`` and reads the verdicts through ``report()``, both the
caller's (the study session's: on Ray, and the report it writes; a simulation's: a formula), so the stage
knows nothing of the session that sequences it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console

from .. import plan as planning
from ..config import AdaptiveSeeds, StudyConfig
from ..ledger import VARIANT, Study
from ..ledger.verdicts_json import Verdicts

Execute = Callable[..., object]


def run_ablation(study: Study, config: StudyConfig, console: Console, execute: Execute,
                 report: Callable[[], Verdicts], rerun: list[planning.Variant] | None = None) -> bool:
    """Run every tier of the ablation stage; False when a tier gate stopped the study.

    Each tier: its trials (`rerun` variants run again), adaptive seeds while components are undecided,
    the determinism check after the last tier, then the gate that lets the next tier run.
    """
    started = time.time()
    study.set_stage("ablation", "running", started=started)
    tiers = config.tier_names
    for i, tier in enumerate(tiers):
        specs = planning.ablation_trials(config, seeds=seeds_so_far(study, config, tier), tier=tier)
        if rerun:
            names = {v.name for v in rerun}
            for spec in specs:
                if spec.variant in names:
                    study.remove_trial(spec.trial_id)
        execute(specs, label=tier or "ablation")
        if isinstance(config.seeds, AdaptiveSeeds):
            adaptive_seeds(study, config, console, tier, execute)
        if config.analysis.check_determinism and i == len(tiers) - 1:
            from ..analysis.reproducibility import repeat_spec

            # the baseline's first seed a second time (the report compares the two)
            execute([repeat_spec(config, tier)], label="determinism check")
        if tier is not None and i < len(tiers) - 1 and not tier_separates(report(), config, console, tier):
            study.set_stage("ablation", "stopped", started=started,
                            reason=f"tier '{tier}' did not separate the variants")
            return False
    study.set_stage("ablation", "completed", started=started)
    return True


def seeds_so_far(study: Study, config: StudyConfig, tier: str | None) -> list[int]:
    """The initial seeds, plus adaptive seeds a previous driver already added to the baseline."""
    seeds = config.seed_list
    if isinstance(config.seeds, AdaptiveSeeds):
        for record in study.records():
            if (record.variant == planning.BASELINE and record.purpose == VARIANT
                    and record.seed not in seeds
                    and (record.group is None or tier is None or str(record.group).startswith(tier))):
                seeds.append(record.seed)
    return seeds


def tier_separates(verdicts: Verdicts, config: StudyConfig, console: Console, tier: str) -> bool:
    """Synthetic-first gate: the next tier runs only if this one decided enough verdicts."""
    from ..analysis.stats import DECIDED

    decided = {name for label, group in verdicts.groups.items() if label.split("/")[0] == tier
               for name, v in group.components.items() if v.verdict in DECIDED}
    need = config.tiers.min_decided
    if len(decided) >= need:
        console.print(f"Tier '{tier}' separates the variants ({len(decided)} decided): next tier runs")
        return True
    console.print(
        f"[bold yellow]Stopping after tier '{tier}':[/bold yellow] {len(decided)} component(s) decided, "
        f"{need} needed (tiers.min_decided; decided = essential, harmful or negligible). A tier that "
        "decides nothing cheaply is unlikely to decide on the expensive tier; see report.md."
    )
    return False


def adaptive_seeds(study: Study, config: StudyConfig, console: Console, tier, execute: Execute) -> None:
    """Add seeds to undecided components (and the baseline, to stay paired) until decided or max.

    ``execute(specs, label=...)`` runs trial specs (the session: on Ray; simulations: a formula).
    """
    from ..analysis import next_seed
    from ..analysis.adaptive import design_of, look, takes_seed
    from ..ledger.looks import log_look, read_looks

    path = getattr(study, "path", None)  # simulations pass a bare list of records
    logged = read_looks(path) if path is not None else []
    if logged and logged[0].get("design") != design_of(config):
        console.print(f"[yellow]Adaptive seeds: the logged looks used the design {logged[0].get('design')}; "
                      f"now it is {design_of(config)} (seeds.design or this version changed it): the verdicts "
                      f"use the new one[/yellow]")
    while True:
        records = [r for r in study.records() if r.purpose == VARIANT]
        if path is not None:
            log_look(path, look(records, config, tier))
        if (step := next_seed(records, config)) is None:
            break
        seed, open_components = step
        console.print(f"Adaptive seeds: {', '.join(open_components)} undecided; adding seed {seed}")
        chosen = [planning.Variant()] + [v for v in planning.variants(config) if takes_seed(v, open_components)]
        execute(planning.ablation_trials(config, seeds=[seed], only=chosen, tier=tier), label=f"seed {seed}")
