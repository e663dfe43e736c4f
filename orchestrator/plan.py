"""Designs: which variants run, over which seeds. Every variant gets the same seeds (paired)."""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import levels as lv
from .config import StudyConfig
from .ledger import ABLATION, VARIANT
from .levels import BASELINE


@dataclass(frozen=True)
class Variant:
    """The baseline, or the baseline with components removed, replaced by alternatives, or factors moved.

    ``alternatives`` holds (component, alternative) pairs, ``levels`` (factor path, level) pairs;
    both leave out what equals the baseline, so the baseline has one name and one key.
    """

    removed: tuple[str, ...] = ()
    alternatives: tuple[tuple[str, str], ...] = ()
    levels: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        parts = ["no-" + "+".join(self.removed)] if self.removed else []
        parts += [f"{c}={a}" for c, a in self.alternatives]
        parts += [f"{label}={lv.fmt(v)}" for label, v in self.labelled_levels]
        return "+".join(parts) or BASELINE

    @property
    def labelled_levels(self) -> list[tuple[str, Any]]:
        label = lv.labels([p for p, _ in self.levels])
        return [(label[p], v) for p, v in self.levels]

    @property
    def key(self) -> frozenset:
        return variant_key(self.removed, dict(self.alternatives), dict(self.levels))


def variant_key(removed, alternatives: dict | None = None, levels: dict | None = None) -> frozenset:
    """The identity of a variant: a plain removal's key is the set of removed components."""
    key = set(removed)
    key |= {f"{c}={a}" for c, a in (alternatives or {}).items()}
    key |= {f"{p}:={json.dumps(v, sort_keys=True)}" for p, v in (levels or {}).items()}
    return frozenset(key)


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
    alternatives: dict[str, str] = field(default_factory=dict)
    levels: dict[str, Any] = field(default_factory=dict)
    purpose: str = VARIANT

    def to_dict(self) -> dict:
        return asdict(self)


def variants(config: StudyConfig) -> list[Variant]:
    """The variants of the study's design, baseline first."""
    names = list(config.components)
    design = config.design
    if design.type == "one_at_a_time":
        out = [Variant()] + [Variant((n,)) for n in names] + one_factor_variants(config)
        out += [Variant(tuple(p)) for p in design.pairs]
    elif config.has_levels:
        out = _level_variants(config)
    elif design.type == "full_factorial":
        out = [
            Variant(tuple(n for n, on in zip(names, bits) if not on))
            for bits in itertools.product([True, False], repeat=len(names))
        ]
    else:  # random: ABLATOR's random-search ablation over the on/off space
        space = 2 ** len(names)
        n_variants = min(random_variant_count(config), space)
        rng = np.random.default_rng(design.seed)
        codes = rng.choice(np.arange(1, space), size=n_variants - 1, replace=False)
        out = [Variant()] + [
            Variant(tuple(n for i, n in enumerate(names) if (int(code) >> i) & 1)) for code in sorted(codes)
        ]
        out += [Variant(tuple(p)) for p in design.pairs if Variant(tuple(p)) not in out]
    seen, unique = set(), []
    for v in out:
        key = v.key
        if key not in seen:
            seen.add(key)
            unique.append(v)
    return unique


def random_variant_count(config: StudyConfig) -> int:
    """random: the variants the trial budget buys (total_trials // seeds, at least 2), the baseline among them."""
    return max(2, config.design.total_trials // len(config.seed_list))


def _level_variants(config: StudyConfig) -> list[Variant]:
    """random and full_factorial over components (baseline / alternatives / removed) and factor levels."""
    comps = list(config.components)
    paths = list(config.factors)
    comp_levels = [lv.component_levels(config, c) for c in comps]
    if config.design.type == "full_factorial":
        choices = itertools.product(*comp_levels, *(lv.factor_levels(config, p) for p in paths))
        return [_joint(config, comps, paths, list(choice)) for choice in choices]
    design = config.design
    n_variants = random_variant_count(config)
    rng = np.random.default_rng(design.seed)
    out, seen = [Variant()], {Variant().key}
    for _ in range(100 * n_variants):  # a small finite space runs out of new draws
        if len(out) >= n_variants:
            break
        choice = [lvls[int(rng.integers(len(lvls)))] for lvls in comp_levels]
        choice += [lv.draw(config.factors[p], rng) for p in paths]  # a subspace picked uniformly, then a value
        v = _joint(config, comps, paths, choice)
        if v.key not in seen:
            seen.add(v.key)
            out.append(v)
    return out + [Variant(tuple(p)) for p in design.pairs]


def _joint(config: StudyConfig, comps: list[str], paths: list[str], choice: list) -> Variant:
    """The variant of one joint choice (a level per component, then a level per factor)."""
    removed = tuple(c for c, level in zip(comps, choice) if level == lv.REMOVED_LEVEL)
    alts = tuple((c, level) for c, level in zip(comps, choice) if level not in (BASELINE, lv.REMOVED_LEVEL))
    levels = tuple((p, v) for p, v in zip(paths, choice[len(comps):]) if not lv.at_baseline(config, p, v))
    return Variant(removed, alts, levels)


def one_factor_variants(config: StudyConfig) -> list[Variant]:
    """one_at_a_time: each alternative alone, then each factor alone over its other levels (each branch)."""
    out = [Variant(alternatives=((c, a),)) for c, comp in config.components.items() for a in comp.alternatives]
    for p in config.factors:
        out += [Variant(levels=((p, v),)) for v in lv.sweep_levels(config, p)]
    return out


def variant_overrides(config: StudyConfig, v: Variant) -> dict[str, Any]:
    """Overrides of a variant's factor levels and alternatives (a removal's own paths win)."""
    pinned = {p for c in v.removed for p in config.components[c].removal}
    out = {}
    for p, val in v.levels:
        out.update({q: x for q, x in lv.overrides(config, p, val).items() if q not in pinned})
    for c, a in v.alternatives:
        out.update(config.components[c].alternatives[a])
    return out


def groups(config: StudyConfig, tier: str | None = None) -> list[tuple[str | None, dict]]:
    """(group label, extra overrides) for a tier and every sweep value."""
    base: dict[str, Any] = {}
    label = tier
    if config.tiers is not None:
        tier_obj = next(t for t in config.tiers.order if t.name == (tier or config.tiers.order[0].name))
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
            inference_only = bool(v.removed) and not (v.alternatives or v.levels) and config.evaluate is not None \
                and all(config.components[c].kind == "inference" for c in v.removed)
            for seed in seeds:
                specs.append(
                    TrialSpec(
                        trial_id=trial_id(v.name, seed, group),
                        stage=ABLATION,
                        variant=v.name,
                        removed=list(v.removed),
                        seed=seed,
                        group=group,
                        overrides={**overrides, **variant_overrides(config, v)},
                        inference_only=inference_only,
                        source_trial=trial_id(BASELINE, seed, group) if inference_only else None,
                        alternatives=dict(v.alternatives),
                        levels=dict(v.levels),
                    )
                )
    return specs


def variant_by_name(config: StudyConfig, name: str) -> Variant:
    for v in variants(config):
        if v.name == name:
            return v
    known = ", ".join(v.name for v in variants(config))
    raise KeyError(f"unknown variant '{name}' (this study has: {known})")
