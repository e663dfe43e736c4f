"""Alternatives at parity with components: their secondary metrics (and the flag when one moves against
the primary metric), and with adaptive seeds tests valid under optional stopping for alternatives and
factors. Their primary-metric analysis (with BCa intervals from 10 seeds) is in factors.py.
"""

from __future__ import annotations

import numpy as np

from ..config import StudyConfig
from ..ledger.verdicts_json import Comparison, Flag, SecondaryEffect
from . import factors
from .effects import Sequential, finish_family
from .flags import secondary_flags
from .numbers import finite
from .records import GroupData
from .stats import holm


def add_secondary(group: GroupData, config: StudyConfig, alternatives: dict[str, dict[str, Comparison]],
                  alpha: float) -> list[Flag]:
    """Each alternative's effect on every secondary metric (t-based, oriented by the metric's own mode),
    stored as ``secondary`` in its result as for components; returns the flags of those moving against
    the primary metric."""
    flat = {f"{c}={a}": r for c, by_alt in alternatives.items() for a, r in by_alt.items()}
    for m in config.metrics.secondary:
        if config.design.type == "one_at_a_time":
            res = factors._paired_alternatives(group, config, m.name, m.mode, alpha, 0.0, 0)
        else:
            res = factors._joint_alternatives(group, config, m.name, m.mode, alpha, 0.0)
        for c, by_alt in res.items():
            for a, r in by_alt.items():
                flat[f"{c}={a}"].secondary[m.name] = SecondaryEffect(effect=r.effect, ci=r.ci, p=r.p, n=r.n)
    return secondary_flags(group.label, flat, config.metrics.primary.name)


def adjust_for_peeking(levels: dict, sequential: Sequential | None, config: StudyConfig, group: GroupData) -> None:
    """With adaptive seeds, alternatives and factors get seeds added too: their tests are made valid under
    optional stopping as the components' are (``Sequential``: the running minimum over the looks, each
    earlier look the analysis of the group's first k seeds), Holm across each family, in place."""
    if sequential is None or not (levels.get("alternatives") or levels.get("factors")):
        return
    alpha, min_effect = config.analysis.alpha, config.analysis.min_effect
    n_all = len(group.seeds())
    # earlier looks recomputed only where a row cannot read them from itself (paired alternatives can)
    joint = levels.get("factors") or config.design.type != "one_at_a_time"
    earlier = [(g, factors.level_tests(g, config))
               for g in (group.prefix(k) for k in sequential.design.looks() if k < n_all)] if joint else []
    flat = {f"{c}={a}": r for c, by_alt in levels.get("alternatives", {}).items() for a, r in by_alt.items()}
    for key, r in flat.items():
        r.n_seeds = r.n if r.method == "paired" else seeds_of(group, alternative=key)
    finish_family(flat, alpha, min_effect, sequential, {
        key: [(seeds_of(g, alternative=key), t["alternatives"][key]) for g, t in earlier if key in t["alternatives"]]
        for key in flat})
    facs = levels.get("factors", {})

    def repeated(name: str, test: str, p: float, sides: int) -> float:
        looks = [(seeds_of(g, factor=name), t["factors"][name][test]) for g, t in earlier if name in t["factors"]]
        return sequential.repeated([*looks, (seeds_of(group, factor=name), p)], sides)

    adj = holm([repeated(p, "p", r.p, 2) if finite(r.p) else np.nan for p, r in facs.items()])
    for r, pa in zip(facs.values(), adj):
        r.p_holm, r.significant = float(pa), bool(finite(pa) and pa < alpha)
    factors.decide_negligible(facs, alpha, lambda p, name: repeated(name, "p_negligible", p, 1))


def seeds_of(group: GroupData, alternative: str | None = None, factor: str | None = None) -> int:
    """Distinct seeds of the group's variants that use this alternative ("c=a") or move this factor."""
    seeds: set = set()
    for v in group.variants.values():
        if alternative is not None and alternative in {f"{c}={a}" for c, a in v.alternatives.items()} \
                or factor is not None and factor in v.levels:
            seeds |= set(v.by_seed)
    return len(seeds)
