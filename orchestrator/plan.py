"""Designs: which variants run, over which seeds. Every variant gets the same seeds (paired)."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .config import StudyConfig

BASELINE = "baseline"


@dataclass(frozen=True)
class Variant:
    """The baseline, or the baseline with a set of components removed."""

    removed: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return BASELINE if not self.removed else "no-" + "+".join(self.removed)


@dataclass
class TrialSpec:
    """One variant trained (or evaluated) with one seed."""

    trial_id: str
    stage: str
    variant: str
    removed: list[str]
    seed: int
    group: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    inference_only: bool = False
    source_trial: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def variants(config: StudyConfig) -> list[Variant]:
    """The variants of the study's design, baseline first."""
    names = list(config.components)
    design = config.design
    if design.type == "one_at_a_time":
        out = [Variant()] + [Variant((n,)) for n in names]
        out += [Variant(tuple(p)) for p in design.pairs]
    elif design.type == "full_factorial":
        out = [
            Variant(tuple(n for n, on in zip(names, bits) if not on))
            for bits in itertools.product([True, False], repeat=len(names))
        ]
    else:  # random: ABLATOR's random-search ablation over the on/off space
        n_variants = max(2, design.total_trials // len(config.seed_list))
        space = 2 ** len(names)
        n_variants = min(n_variants, space)
        rng = np.random.default_rng(design.seed)
        codes = rng.choice(np.arange(1, space), size=n_variants - 1, replace=False)
        out = [Variant()] + [
            Variant(tuple(n for i, n in enumerate(names) if (int(code) >> i) & 1)) for code in sorted(codes)
        ]
        out += [Variant(tuple(p)) for p in design.pairs if Variant(tuple(p)) not in out]
    seen, unique = set(), []
    for v in out:
        key = frozenset(v.removed)
        if key not in seen:
            seen.add(key)
            unique.append(v)
    return unique


def groups(config: StudyConfig, tier: str | None = None) -> list[tuple[str | None, dict]]:
    """(group label, extra overrides) for a tier and every sweep value."""
    base: dict[str, Any] = {}
    label = tier
    if config.tiers is not None:
        tier_obj = next(t for t in config.tiers.stages if t.name == (tier or config.tiers.stages[0].name))
        label, base = tier_obj.name, dict(tier_obj.overrides)
    if config.sweep is None:
        return [(label, base)]
    leaf = config.sweep.path.rsplit(".", 1)[-1]
    out = []
    for value in config.sweep.values:
        sweep_label = f"{leaf}={value}"
        out.append((f"{label}/{sweep_label}" if label else sweep_label, {**base, config.sweep.path: value}))
    return out


def trial_id(variant: str, seed: int, group: str | None = None) -> str:
    base = f"{variant}-seed{seed}"
    return f"{group.replace('/', '.')}.{base}" if group else base


def ablation_trials(
    config: StudyConfig,
    seeds: list[int] | None = None,
    only: list[Variant] | None = None,
    tier: str | None = None,
) -> list[TrialSpec]:
    """Trials of the ablation stage: variants x seeds (x sweep groups) for one tier."""
    seeds = config.seed_list if seeds is None else seeds
    chosen = variants(config) if only is None else only
    specs = []
    for group, overrides in groups(config, tier):
        for v in chosen:
            inference_only = bool(v.removed) and config.evaluate is not None and all(
                config.components[c].kind == "inference" for c in v.removed
            )
            for seed in seeds:
                specs.append(
                    TrialSpec(
                        trial_id=trial_id(v.name, seed, group),
                        stage="ablation",
                        variant=v.name,
                        removed=list(v.removed),
                        seed=seed,
                        group=group,
                        overrides=dict(overrides),
                        inference_only=inference_only,
                        source_trial=trial_id(BASELINE, seed, group) if inference_only else None,
                    )
                )
    return specs


def variant_by_name(config: StudyConfig, name: str) -> Variant:
    for v in variants(config):
        if v.name == name:
            return v
    known = ", ".join(v.name for v in variants(config))
    raise KeyError(f"unknown variant '{name}' (this study has: {known})")
