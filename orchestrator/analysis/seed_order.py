"""Seeds where they decide sooner: the order in which an adaptive study's trials take the free slots (the
study session applies it when a batch has more trials than free slots; where every trial starts at once,
the order cannot matter and is not computed).

Each (variant, seed) trial is worth the expected decisions it buys per trial-hour: the sum, over the
undecided rows it informs (the components it removes, the alternatives it uses, the factors it moves; the
baseline informs every undecided row of its group), of each row's predictive probability of a decision at
``max`` (``adaptive.predictive_power``, 1 where it cannot be computed yet), divided by the variant's mean
measured trial time (for a variant not yet measured, the mean of every measured trial). Trials start in
decreasing worth; ties keep the plan's order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from ..config import StudyConfig
from ..ledger import TrialRecord
from ..plan import TrialSpec
from .adaptive import UNDECIDED, decisions
from .numbers import finite
from .records import DEFAULT_GROUP


def _subjects(spec: TrialSpec) -> list[str]:
    return [*spec.removed, *(f"{c}={a}" for c, a in spec.alternatives.items()), *spec.levels]


def trial_hours(records: Iterable[TrialRecord]) -> tuple[dict[tuple[str, str], float], float]:
    """Mean measured hours of a finished trial, per (group, variant), and over all of them."""
    by: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in records:
        if r.finished and r.duration_s > 0:
            by[r.group or DEFAULT_GROUP, r.variant or ""].append(r.duration_s / 3600)
    every = [x for xs in by.values() for x in xs]
    return {k: sum(xs) / len(xs) for k, xs in by.items()}, (sum(every) / len(every) if every else 1.0)


def worth(specs: list[TrialSpec], records: list[TrialRecord], config: StudyConfig) -> dict[str, float]:
    """trial id -> expected decisions per trial-hour (the module's rule)."""
    states = decisions(records, config)
    hours, mean = trial_hours(records)
    out = {}
    for spec in specs:
        group = spec.group or DEFAULT_GROUP
        open_ = {s: st for s, st in states.get(group, {}).items() if st["state"] == UNDECIDED}
        subjects = _subjects(spec)
        informs = {s for s in subjects if s in open_} if subjects else set(open_)
        expected = sum(open_[s]["predictive_power"] if finite(open_[s]["predictive_power"]) else 1.0
                       for s in informs)
        out[spec.trial_id] = expected / hours.get((group, spec.variant), mean)
    return out


def by_worth(specs: list[TrialSpec], records: list[TrialRecord], config: StudyConfig) -> list[TrialSpec]:
    """The specs, most expected decisions per trial-hour first (stable)."""
    value = worth(specs, records, config)
    return sorted(specs, key=lambda s: -value[s.trial_id])
