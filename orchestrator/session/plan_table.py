"""The plan as a table: variants x seeds, and the trial count (`ablator launch --dry-run`)."""

from __future__ import annotations

from rich.console import Console

from .. import plan as planning
from ..config import AdaptiveSeeds, StudyConfig
from ..space_sampling import fmt
from ..terminal import FitTable


def print_plan(config: StudyConfig, console: Console) -> None:
    """The plan as a table: variants x seeds, and the trial count."""
    seeds = config.seed_list
    variants = planning.variants(config)
    groups = planning.groups(config, config.tier_names[0])
    rows = []
    for v in variants:
        kinds = sorted({config.components[c].kind for c in v.removed}) or ["-"]
        levels = [", ".join([f"{c}={a}" for c, a in v.alternatives] + [f"{p}={fmt(x)}" for p, x in v.levels]) or "-"]
        rows.append([v.name, ", ".join(v.removed) or "-", ", ".join(kinds), *(levels if config.has_levels else []),
                     " ".join(map(str, seeds))])
    header = ("variant", "removed", "kind", *(["alternatives, levels"] if config.has_levels else []), "seeds")
    console.print(FitTable(f"Plan of study '{config.name}' ({config.design.type})", header, rows))
    n = len(variants) * len(seeds) * len(groups)
    extra = ""
    if isinstance(config.seeds, AdaptiveSeeds):
        extra = f" (adaptive seeds: up to {config.seeds.max} per undecided variant)"
    if len(groups) > 1:
        extra += f" over {len(groups)} groups: {', '.join(g for g, _ in groups)}"
    if config.tiers:
        extra += f"; tiers run in order: {', '.join(t.name for t in config.tiers.order)}"
    console.print(f"{len(variants)} variants x {len(seeds)} seeds = [bold]{n} trials[/bold]{extra}")
