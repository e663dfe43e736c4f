"""What the tuning stage tunes: survivors' search spaces, removals, and why.

Ablate first, then tune only what survived, never both in one sweep.
From the ablation verdicts (``verdicts.json``):

- ``essential`` components (survivors) stay, and their ``tune`` spaces are searched;
- ``harmful`` components are removed (their removal contract applied), not tuned;
- ``negligible`` components (shown equivalent within +-min_effect) are removed, not tuned;
- ``inconclusive`` components stay as in the baseline (``tuning.inconclusive: keep``)
  or are removed (``remove``); they are never tuned;
- the global ``tuning.search_space`` is searched as well;
- a kept component whose alternative beat the baseline's choice (its verdict ``harmful``)
  carries the best such alternative into every tuning trial and the tuned config;
- a factor whose effect is significant seeds the search with its own space, unless a
  survivor's ``tune`` or ``tuning.search_space`` already searches that path (they rule);
  a significant range inside a branch seeds its factor's whole space (its branches and ranges).

A parameter that a removed component's removal contract pins (e.g. ``model.dropout: 0.0``)
is not tuned: tuning it would undo the removal. It is listed as skipped, with the reason.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from .. import space_sampling
from ..analysis.stats import ESSENTIAL, HARMFUL, NEGLIGIBLE
from ..config import SearchSpace, StudyConfig
from ..ledger.verdicts_json import Verdicts

GLOBAL = "tuning.search_space"
FACTOR = "factors"
_PRIMITIVE = (type(None), bool, int, float, str)


@dataclass
class TunedParam:
    """One tuned parameter: its dotted baseline path, its space, and where it came from."""

    path: str
    space: SearchSpace
    sources: list[str]  # component names, and/or "tuning.search_space"
    verdicts: list[str]  # the verdict of each source component ("-" for the global space)

    def describe(self) -> str:
        return space_sampling.describe(self.space)

    def distribution(self) -> BaseDistribution:
        """The Optuna distribution of a space without nested choices (see ``sample`` for the others)."""
        return to_distribution(self.space)

    def sample(self, pick: Callable[[str, BaseDistribution], Any]) -> Any:
        return sample(self.space, self.path, pick)


@dataclass
class TuningPlan:
    """The tuned configuration space and the fate of every component."""

    metric: str
    mode: str  # "max" | "min"
    params: dict[str, TunedParam]
    verdicts: dict[str, str]  # component -> verdict (as judged, or "not judged")
    removed: list[str]  # components removed in every tuning trial
    kept: list[str]  # components kept as in the baseline
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (path, source, reason)
    base_overrides: dict[str, Any] = field(default_factory=dict)  # the last tier's overrides
    group: str | None = None  # ablation group of the reference baseline (tiers)
    notes: list[str] = field(default_factory=list)
    alternatives: dict[str, str] = field(default_factory=dict)  # kept component -> its winning alternative

    @property
    def direction(self) -> str:
        return "maximize" if self.mode == "max" else "minimize"

    def distributions(self) -> dict[str, BaseDistribution]:
        """Fixed distributions (spaces without subspaces or branches only; ``suggest`` takes any)."""
        return {path: p.distribution() for path, p in self.params.items()}

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Config values by dotted path, asked of an Optuna trial define-by-run (a branch's ranges only in it)."""
        return {path: p.sample(lambda name, d: ask_value(trial, name, d)) for path, p in self.params.items()}

    def decode(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Optuna's sampled parameters (a trial's ``params``) -> config values, by dotted path."""
        return {path: p.sample(lambda name, _: raw[name]) for path, p in self.params.items()
                if _asked(raw, path)}

    def value_overrides(self, values: dict[str, Any]) -> dict[str, Any]:
        """Dotted overrides of tuned values: a branch's value leaf by leaf."""
        out: dict[str, Any] = {}
        for path, value in values.items():
            out.update(space_sampling.overrides(self.params[path].space, path, value) if path in self.params
                       else {path: value})
        return out

    def removal_overrides(self, config: StudyConfig) -> dict[str, Any]:
        """The fixed overrides: removal contracts, then the winning alternatives."""
        out: dict[str, Any] = {}
        for name in self.removed:
            out.update(config.components[name].removal)
        for name, alt in self.alternatives.items():
            out.update(config.components[name].alternatives[alt])
        return out

    def overrides(self, config: StudyConfig, values: dict[str, Any]) -> dict[str, Any]:
        """Every override of a tuning trial: removals, the reference tier, the sampled values."""
        return {**self.removal_overrides(config), **self.base_overrides, **self.value_overrides(values)}

    def fate(self, name: str) -> str:
        verdict = self.verdicts.get(name, "not judged")
        if name in self.removed:
            return {HARMFUL: "removed (harmful: removal helps)",
                    NEGLIGIBLE: "removed (negligible: shown not to matter)"}.get(
                verdict, f"removed ({verdict}; tuning.inconclusive: remove)")
        tuned = [p for p in self.params.values() if name in p.sources]
        if name in self.alternatives:
            return f"kept with alternative '{self.alternatives[name]}' (it beat the baseline's choice)"
        if verdict == ESSENTIAL:
            return "kept, tuned" if tuned else "kept (survivor; no `tune` space)"
        return "kept as in the baseline, not tuned"


def tuning_plan(config: StudyConfig, verdicts: Verdicts | None) -> TuningPlan:
    """The tuning plan of a study from its config and its ablation verdicts (None: none yet)."""
    metric = verdicts.primary.name if verdicts else config.metrics.primary.name
    mode = verdicts.primary.mode if verdicts else config.metrics.primary.mode
    judged = {name: v.verdict for name, v in verdicts.components.items()} if verdicts else {}
    notes = []
    fates: dict[str, str] = {}
    for name in config.components:
        if name not in judged:
            notes.append(f"component '{name}' has no verdict in verdicts.json: treated as 'inconclusive'")
        fates[name] = judged.get(name, "not judged")
    drop_inconclusive = config.tuning.inconclusive == "remove"
    removed = [n for n, v in fates.items()
               if v in (HARMFUL, NEGLIGIBLE) or (drop_inconclusive and v not in (ESSENTIAL, HARMFUL, NEGLIGIBLE))]
    kept = [n for n in config.components if n not in removed]

    alternatives = winning_alternatives(verdicts, [n for n in kept if config.components[n].alternatives])
    pinned: dict[str, str] = {}
    for name in removed:
        for dotted in config.components[name].removal:
            pinned[dotted] = name
    for name, alt in alternatives.items():
        for dotted in config.components[name].alternatives[alt]:
            pinned[dotted] = f"{name}={alt}"

    params: dict[str, TunedParam] = {}
    skipped: list[tuple[str, str, str]] = []
    candidates: list[tuple[str, SearchSpace, str, str]] = []
    for name, comp in config.components.items():
        for dotted, space in comp.tune.items():
            if fates[name] == ESSENTIAL:
                candidates.append((dotted, space, name, ESSENTIAL))
            else:
                why = "component removed" if name in removed else f"verdict '{fates[name]}': only survivors are tuned"
                skipped.append((dotted, name, why))
    for dotted, space in config.tuning.search_space.items():
        candidates.append((dotted, space, GLOBAL, "-"))
    for dotted, space, source, verdict in candidates:
        if dotted in pinned:
            skipped.append((dotted, source, f"pinned by the removal contract of '{pinned[dotted]}'"))
            continue
        if dotted in params:
            p = params[dotted]
            p.sources.append(source)
            p.verdicts.append(verdict)
            if source == GLOBAL:  # the study-wide space wins where both define one
                p.space = space
            continue
        params[dotted] = TunedParam(dotted, space, [source], [verdict])
    for fv in (verdicts.factors if verdicts else {}).values():
        dotted = fv.path  # a range inside a branch seeds its whole factor's space
        if dotted not in config.factors or not fv.significant:
            continue
        if dotted in params and FACTOR in params[dotted].sources:
            continue  # already seeded by another of its ranges
        if dotted in params or dotted in pinned:
            skipped.append((dotted, FACTOR, "already searched or pinned: the tuning spaces rule"
                            if dotted in params else f"pinned by '{pinned[dotted]}'"))
            continue
        params[dotted] = TunedParam(dotted, config.factors[dotted], [FACTOR], [f"p_holm {fv.p_holm:.3g}"])

    base_overrides: dict[str, Any] = {}
    group = None
    if config.tiers is not None:
        last = config.tiers.order[-1]
        base_overrides, group = dict(last.overrides), last.name
        notes.append(f"tuning trials use the last tier '{last.name}' (its overrides apply)")
    if config.sweep is not None:
        group = None
        notes.append(f"sweep over {config.sweep.path}: tuning uses the baseline value "
                     f"{_baseline_value(config, config.sweep.path)!r}")
    return TuningPlan(metric=metric, mode=mode, params=params, verdicts=fates, removed=removed, kept=kept,
                      skipped=skipped, base_overrides=base_overrides, group=group, notes=notes,
                      alternatives=alternatives)


def winning_alternatives(verdicts: Verdicts | None, names: list[str]) -> dict[str, str]:
    """Per component, the alternative that beat the baseline's choice by the most (verdict harmful)."""
    out = {}
    for name in names:
        row = verdicts.components.get(name) if verdicts else None
        better = [(r.effect, a) for a, r in (row.alternatives if row else {}).items()
                  if r.verdict == HARMFUL and r.effect is not None]
        if better:
            out[name] = min(better)[1]
    return out


def _baseline_value(config: StudyConfig, dotted: str) -> Any:
    from ..paths import get_path

    return get_path(config.baseline, dotted, None)


# ---------------------------------------------------------------- SearchSpace -> Optuna


def sample(space: SearchSpace, name: str, pick: Callable[[str, BaseDistribution], Any]) -> Any:
    """A value of a space, each choice made by ``pick(parameter name, distribution)`` (define-by-run).

    A union first picks its subspace (uniformly at first, as the random design does): a branch
    by its label (``train.opt#branch``), other subspaces by position (``x#subspace``); the
    chosen subspace's parameters are named under it (``train.opt[sgd].arguments.lr``, ``x#1``).
    """
    found = space_sampling.branches(space)
    if space.subspaces is not None:
        if len(found) == len(space.subspaces):
            label = pick(f"{name}#branch", CategoricalDistribution([b.label for b in found]))
            chosen = space.subspaces[[b.label for b in found].index(label)]
            return sample(chosen, f"{name}[{label}]", pick)
        i = int(pick(f"{name}#subspace", CategoricalDistribution(list(range(len(space.subspaces))))))
        return sample(space.subspaces[i], f"{name}#{i}", pick)
    if space.sub_configuration is not None:
        return space_sampling.resolve(space.sub_configuration, lambda s, sub: sample(s, f"{name}.{sub}", pick))
    return decode_value(space, pick(name, to_distribution(space)))


def ask_value(trial: optuna.Trial, name: str, d: BaseDistribution) -> Any:
    """Ask an Optuna trial for one parameter of a distribution (define-by-run)."""
    if isinstance(d, CategoricalDistribution):
        return trial.suggest_categorical(name, d.choices)
    if isinstance(d, IntDistribution):
        return trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
    return trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)


def _asked(raw: dict[str, Any], path: str) -> bool:
    """Whether a trial's parameters hold a value of this path (itself or its nested choices)."""
    return any(k == path or k.startswith((f"{path}#", f"{path}[", f"{path}.")) for k in raw)


def to_distribution(space: SearchSpace) -> BaseDistribution:
    """A range or categories of ABLATOR's SearchSpace as an Optuna distribution.

    ``n_bins`` (ABLATOR's grid, ``space_sampling.bins``: the same grid as the ablation levels) becomes a
    stepped range where the grid is evenly spaced and fits a step exactly, else a categorical
    over the grid values (log grids). Categories that are not plain scalars (lists, mappings)
    are searched as their JSON text.
    """
    if space.value_range is None and space.categorical_values is None:
        raise ValueError(f"{space_sampling.describe(space)} has nested choices: sample it with `sample`")
    if space.categorical_values is not None:
        return CategoricalDistribution([_encode(v) for v in space.categorical_values])
    lo, hi = space.value_range
    if space.value_type == "int":
        lo_i, hi_i = math.ceil(lo), math.floor(hi)
        if space.n_bins:
            span = hi_i - lo_i
            if not space.log and span % (space.n_bins - 1) == 0 and span // (space.n_bins - 1) >= 1:
                return IntDistribution(lo_i, hi_i, step=span // (space.n_bins - 1))
            return CategoricalDistribution(space_sampling.bins(space))
        return IntDistribution(lo_i, hi_i, log=space.log)
    if space.n_bins:
        if space.log:
            return CategoricalDistribution(space_sampling.bins(space))
        return FloatDistribution(float(lo), float(hi), step=(float(hi) - float(lo)) / (space.n_bins - 1))
    return FloatDistribution(float(lo), float(hi), log=space.log)


def _encode(value: Any) -> Any:
    return value if isinstance(value, _PRIMITIVE) else "json:" + json.dumps(value, sort_keys=True)


def decode_value(space: SearchSpace, value: Any) -> Any:
    if isinstance(value, str) and value.startswith("json:") and space.categorical_values is not None:
        return json.loads(value[5:])
    if space.value_range is None or value is None:
        return value
    if space.n_bins:  # a grid value exactly as the ablation levels have it (a stepped float may be off by an ulp)
        return min(space_sampling.bins(space), key=lambda b: abs(b - float(value)))
    return int(value) if space.value_type == "int" else float(value)
