"""Alternatives at parity with components: their secondary metrics and the flag when one moves against
the primary metric. Their primary-metric analysis (with BCa intervals from 10 seeds) is in factors.py.
"""

from __future__ import annotations

from ..config import StudyConfig
from . import factors
from .flags import secondary_flags
from .records import GroupData


def add_secondary(group: GroupData, config: StudyConfig, alternatives: dict[str, dict], alpha: float) -> list[dict]:
    """Each alternative's effect on every secondary metric (t-based, oriented by the metric's own mode),
    stored as ``secondary`` in its result as for components; returns the flags of those moving against
    the primary metric."""
    flat = {f"{c}={a}": r for c, by_alt in alternatives.items() for a, r in by_alt.items()}
    per_metric: dict[str, dict[str, dict]] = {}
    for m in config.metrics.secondary:
        if config.design.type == "one_at_a_time":
            res = factors._paired_alternatives(group, config, m.name, m.mode, alpha, 0.0, 0)
        else:
            res, _ = factors._joint(group, config, m.name, m.mode, alpha, 0.0)
        for c, by_alt in res.items():
            for a, r in by_alt.items():
                s = {"effect": r["effect"], "ci": r["ci_t"], "p": r["p"], "n": r["n"]}
                flat[f"{c}={a}"].setdefault("secondary", {})[m.name] = s
                per_metric.setdefault(m.name, {})[f"{c}={a}"] = s
    return secondary_flags(group.label, flat, per_metric, config.metrics.primary.name)
