"""Levels of alternatives and factors, and the factors the analysis estimates.

A factor is a baseline path ablated over ABLATOR's SearchSpace (orchestrator/space_sampling.py); each
value it takes is a level. A component with alternatives has the levels baseline / each
alternative / removed. A factor whose values are branches (``sub_configuration``s) is one
categorical factor over its branches, and each numeric range inside a branch is a numeric
factor of its own, estimated within that branch only (``path[branch].subpath``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import space_sampling
from .paths import get_path
from .space_sampling import branch_of, branches, draw, fmt, grid, same  # noqa: F401  (the levels' vocabulary)

if TYPE_CHECKING:
    from .config import SearchSpace, StudyConfig

#: the baseline (a variant's name and a component's level), and a component's removed level
BASELINE, REMOVED_LEVEL = "baseline", "removed"


def at_baseline(config: StudyConfig, path: str, value: Any) -> bool:
    """Whether a factor's value leaves the baseline as it is (a branch: set leaf by leaf)."""
    base = get_path(config.baseline, path)
    return same(space_sampling.merge(base, value), base) if isinstance(value, dict) else same(value, base)


def overrides(config: StudyConfig, path: str, value: Any) -> dict[str, Any]:
    """Dotted overrides of a factor's value: a branch leaf by leaf, any other value at the path."""
    return space_sampling.overrides(config.factors[path], path, value)


def factor_levels(config: StudyConfig, path: str) -> list:
    """The grid of a factor with the baseline's own value first (the reference level)."""
    base = get_path(config.baseline, path)
    return [base] + [v for v in grid(config.factors[path]) if not at_baseline(config, path, v)]


def sweep_levels(config: StudyConfig, path: str) -> list:
    """one_at_a_time: a factor's levels apart from the baseline's, one thing moved at a time.

    A plain factor: its grid. A factor with branches: each branch at its reference values
    (the baseline's where the branch holds them, else the middle of each range's grid), then
    each range of the branch over its grid with the branch's other ranges at reference.
    """
    space = config.factors[path]
    found = branches(space)
    if not found:
        return factor_levels(config, path)[1:]
    out: list = []
    for b in found:
        ref = reference(config, path, b)
        out.append(ref)
        for sub, leaf in b.spaces().items():
            for v in grid(leaf):
                out.append(space_sampling.merge(ref, _nest(sub, v)))
    keep, seen = [], set()
    for v in out:
        key = repr(sorted(space_sampling.leaves(v)))
        if key not in seen and not at_baseline(config, path, v):
            seen.add(key)
            keep.append(v)
    return keep


def reference(config: StudyConfig, path: str, branch: space_sampling.Branch) -> dict:
    """A branch at its reference values: the baseline's value of a range where it lies inside, else its middle."""
    def pick(space: SearchSpace, sub: str) -> Any:
        base = get_path(config.baseline, f"{path}.{sub}", None)
        if space_sampling.contains(space, base):
            return base
        options = grid(space)
        return options[len(options) // 2]
    return space_sampling.resolve(branch.mapping, pick)


def _nest(dotted: str, value: Any) -> dict:
    *parents, leaf = dotted.split(".")
    out: dict = {leaf: value}
    for key in reversed(parents):
        out = {key: out}
    return out


def labels(paths: list[str]) -> dict[str, str]:
    """Short label per factor path: the last key (`width`), or the whole path where two of `paths` share it."""
    leaves = [p.rsplit(".", 1)[-1] for p in paths]
    return {p: (leaf if leaves.count(leaf) == 1 else p) for p, leaf in zip(paths, leaves)}


def component_levels(config: StudyConfig, name: str) -> list[str]:
    return [BASELINE, *config.components[name].alternatives, REMOVED_LEVEL]


def factorial_size(config: StudyConfig) -> int:
    """Variants of the full-factorial design (components with their levels x factor levels)."""
    n = 1
    for name in config.components:
        n *= len(component_levels(config, name))
    for path in config.factors:
        n *= len(factor_levels(config, path))
    return n


# ---------------------------------------------------------------- what the analysis estimates


@dataclass(frozen=True)
class Factor:
    """One estimated factor: a factor path, or a range inside one branch of it.

    ``level(value)`` maps the value a trial had at ``path`` to this factor's level: a number
    (numeric), a level name (categorical: the value, or its branch's label), or None where
    the factor does not exist (a trial of another branch).
    """

    name: str
    path: str
    numeric: bool
    space: SearchSpace
    branch: str | None = None  # the branch a nested range lives in
    subpath: str | None = None  # the range's key path inside the branch
    origin: float = 0.0  # numeric: x is measured from here (the baseline's value, else the range's low)
    base_level: Any = None  # the level of the baseline's value (None: not in this factor)
    found: tuple[space_sampling.Branch, ...] = ()

    @property
    def log(self) -> bool:
        return space_sampling.bounds(self.space)[2] if self.numeric else False

    @property
    def unit(self) -> str:
        return ("per doubling" if self.log else "per unit") if self.numeric else "vs the baseline's value"

    def level(self, value: Any) -> Any:
        if self.found:
            b = branch_of(list(self.found), value)
            if self.branch is None:
                return b.label if b is not None else BASELINE
            if b is None or b.label != self.branch:
                return None
            value = get_path(value, self.subpath, None)
        if self.numeric:
            return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        return value

    def x(self, level: float) -> float:
        """A numeric level on the factor's scale: units from the origin, or doublings with log."""
        return math.log2(level / self.origin) if self.log else level - self.origin

    def span(self) -> str:
        if self.numeric:
            lo, hi, log = space_sampling.bounds(self.space)
            return f"{lo:g}..{hi:g}" + (" (log)" if log else "")
        if self.found:
            return ", ".join(b.label for b in self.found)
        return ", ".join(map(str, space_sampling.grid(self.space)))


def factors(config: StudyConfig) -> dict[str, Factor]:
    """Every factor the analysis estimates, by name: each path, then each range inside each of its branches."""
    out: dict[str, Factor] = {}
    for path, space in config.factors.items():
        base = get_path(config.baseline, path)
        found = tuple(branches(space))
        if not found:
            numeric = space_sampling.numeric(space)
            origin = float(base) if numeric else 0.0
            out[path] = Factor(path, path, numeric, space, origin=origin, base_level=base)
            continue
        top = Factor(path, path, False, space, found=found)
        out[path] = Factor(path, path, False, space, found=found, base_level=top.level(base))
        for b in found:
            for sub, leaf in b.spaces().items():
                if not space_sampling.numeric(leaf):
                    continue
                lo, _, log = space_sampling.bounds(leaf)
                at = get_path(config.baseline, f"{path}.{sub}", None)
                ok = isinstance(at, int | float) and not isinstance(at, bool) and (at > 0 or not log)
                name = f"{path}[{b.label}].{sub}"
                out[name] = Factor(name, path, True, leaf, branch=b.label, subpath=sub,
                                   origin=float(at) if ok else float(lo), found=found)
    return out
