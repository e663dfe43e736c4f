"""The ledger as the analysis sees it: ablation records grouped by group and variant.

Reads only the records (``Study.records()``); never the running system. Variants keep
references to the ``TrialRecord`` objects (no copies).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ..ledger import COMPLETED, PENDING, RUNNING, VARIANT, TrialRecord
from ..plan import Variant, variant_key
from .numbers import _seed_key, finite, sort_seeds

DEFAULT_GROUP = "default"


def group_label(record: TrialRecord) -> str:
    g = record.group
    return DEFAULT_GROUP if g in (None, "") else str(g)


def metric_value(record: TrialRecord, metric: str) -> float | None:
    """The final value of a metric of a COMPLETED trial (None when absent); may be NaN/inf."""
    if record.state != COMPLETED:
        return None
    value = record.metric(metric)
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


@dataclass
class VariantData:
    """The trials of one variant in one group, by seed."""

    name: str
    removed: tuple[str, ...]
    alternatives: dict[str, str] = field(default_factory=dict)
    levels: dict[str, Any] = field(default_factory=dict)
    by_seed: dict[Any, TrialRecord] = field(default_factory=dict)
    _cache: dict[str, dict] = field(default_factory=dict, repr=False)

    def values(self, metric: str) -> dict:
        """{seed: value} for COMPLETED trials with a finite value of `metric` (a fresh dict)."""
        got = self._cache.get(metric)
        if got is None:
            got = {}
            for seed, rec in self.by_seed.items():
                v = metric_value(rec, metric)
                if v is not None and finite(v):
                    got[seed] = v
            self._cache[metric] = got
        return dict(got)

    def nonfinite(self, metric: str) -> dict:
        """{seed: value} for COMPLETED trials whose `metric` is NaN or infinite."""
        out = {}
        for seed, rec in self.by_seed.items():
            v = metric_value(rec, metric)
            if v is not None and not finite(v):
                out[seed] = v
        return out

    def seeds_in_state(self, state: str) -> list:
        return sorted((s for s, r in self.by_seed.items() if r.state == state), key=_seed_key)

    def missing_metric(self, metric: str) -> list:
        """Seeds COMPLETED but without `metric` in their final report."""
        return sorted(
            (s for s, r in self.by_seed.items()
             if r.state == COMPLETED and metric not in (r.final or {})),
            key=_seed_key,
        )


@dataclass
class GroupData:
    """One group (tier and/or sweep value) of the ablation stage."""

    label: str
    variants: dict[frozenset, VariantData] = field(default_factory=dict)

    def get(self, removed: Iterable[str]) -> VariantData | None:
        return self.variants.get(frozenset(removed))

    @property
    def baseline(self) -> VariantData | None:
        return self.variants.get(frozenset())

    def ordered(self) -> list[VariantData]:
        """Baseline first, then by number of removals, then by name."""
        return sorted(self.variants.values(), key=lambda v: (len(v.removed), v.name))

    def records(self) -> list[TrialRecord]:
        return [r for v in self.variants.values() for r in v.by_seed.values()]

    def seeds(self) -> list:
        """Every seed any variant of the group ran, in seed order."""
        return sort_seeds({s for v in self.variants.values() for s in v.by_seed})

    def prefix(self, k: int) -> GroupData:
        """The group as a look at ``k`` seeds saw it: only the trials of its first k seeds (seed order)."""
        keep = set(self.seeds()[:k])
        return GroupData(self.label, {key: replace(v, by_seed={s: r for s, r in v.by_seed.items() if s in keep},
                                                   _cache={}) for key, v in self.variants.items()})


def running(records: Iterable[TrialRecord]) -> bool:
    """Whether some ablation trial is still pending or running: an analysis now is an interim look."""
    return any(r.state in (PENDING, RUNNING) for r in records if r.purpose == VARIANT)


def ablation_records(records: Iterable[TrialRecord]) -> list[TrialRecord]:
    return [r for r in records if r.purpose == VARIANT]


def group_records(records: Iterable[TrialRecord]) -> dict[str, GroupData]:
    """Ablation records by group label (insertion order of first appearance) and variant.

    A (group, variant, seed) seen twice keeps the COMPLETED one, else the later one.
    """
    groups: dict[str, GroupData] = {}
    for rec in ablation_records(records):
        label = group_label(rec)
        grp = groups.get(label)
        if grp is None:
            grp = groups[label] = GroupData(label)
        alts, levels = rec.alternatives, rec.levels
        key = variant_key(rec.removed, alts, levels)
        var = grp.variants.get(key)
        if var is None:
            removed = tuple(rec.removed)
            name = rec.variant or Variant(removed, tuple(alts.items()), tuple(levels.items())).name
            var = grp.variants[key] = VariantData(name, removed, dict(alts), dict(levels))
        seed = rec.seed
        old = var.by_seed.get(seed)
        if old is None or not (old.state == COMPLETED and rec.state != COMPLETED):
            var.by_seed[seed] = rec
    return groups
