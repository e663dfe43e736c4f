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


def adjust_for_peeking(levels: dict, sequential: Sequential | None, alpha: float, min_effect: float,
                       group: GroupData) -> None:
    """With adaptive seeds, alternatives and factors get seeds added too: their tests are made valid under
    optional stopping as the components' are (``Sequential``), Holm across each family, in place."""
    if sequential is None:
        return
    flat = {f"{c}={a}": r for c, by_alt in levels.get("alternatives", {}).items() for a, r in by_alt.items()}
    for key, r in flat.items():
        r.n_seeds = r.n if r.method == "paired" else seeds_of(group, alternative=key)
    finish_family(flat, alpha, min_effect, sequential)
    facs = levels.get("factors", {})
    adj = holm([sequential.adjust(r.p, seeds_of(group, factor=p)) if finite(r.p) else np.nan
                for p, r in facs.items()])
    for r, pa in zip(facs.values(), adj):
        r.p_holm, r.significant = float(pa), bool(finite(pa) and pa < alpha)
    factors.decide_negligible(facs, alpha, lambda p, name: sequential.adjust(p, seeds_of(group, factor=name), 1))


def seeds_of(group: GroupData, alternative: str | None = None, factor: str | None = None) -> int:
    """Distinct seeds of the group's variants that use this alternative ("c=a") or move this factor."""
    seeds: set = set()
    for v in group.variants.values():
        if alternative is not None and alternative in {f"{c}={a}" for c, a in v.alternatives.items()} \
                or factor is not None and factor in v.levels:
            seeds |= set(v.by_seed)
    return len(seeds)
