"""Levels of alternatives and factors: the grid of a numeric range, a random draw, a label.

A factor is a baseline path ablated over ABLATOR's SearchSpace (a numeric ``value_range``
or ``categorical_values``); each value it takes is a level. A component with alternatives
has the levels baseline / each alternative / removed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .paths import get_path

if TYPE_CHECKING:
    from .config import SearchSpace, StudyConfig

DEFAULT_BINS = 3  # numeric levels of a range without n_bins (one_at_a_time, full_factorial)
BASE_LEVEL, REMOVED_LEVEL = "baseline", "removed"


def cast(space: SearchSpace, value: float, digits: int = 6) -> Any:
    """An int, or a float kept to `digits` significant digits (so its name in a variant is exact)."""
    return round(value) if space.value_type == "int" else float(f"{value:.{digits}g}")


def grid(space: SearchSpace) -> list:
    """The levels of a factor: its categories, or n_bins values spread over its range (log-spaced if log)."""
    if space.categorical_values is not None:
        return list(space.categorical_values)
    lo, hi = space.value_range
    n = space.n_bins or DEFAULT_BINS
    xs = np.geomspace(lo, hi, n) if space.log else np.linspace(lo, hi, n)
    out: list = []
    for x in xs:
        v = cast(space, float(x))
        if v not in out:
            out.append(v)
    return out


def factor_levels(config: StudyConfig, path: str) -> list:
    """The grid of a factor with the baseline's own value first (the reference level)."""
    base = get_path(config.baseline, path)
    return [base] + [v for v in grid(config.factors[path]) if not same(v, base)]


def draw(space: SearchSpace, rng: np.random.Generator) -> Any:
    """One random level: a category, a grid value (n_bins given), or a (log-)uniform value of the range."""
    if space.categorical_values is not None or space.n_bins is not None:
        options = grid(space)
        return options[int(rng.integers(len(options)))]
    lo, hi = space.value_range
    if space.value_type == "int":
        if space.log:
            return round(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        return int(rng.integers(int(lo), int(hi) + 1))
    x = math.exp(rng.uniform(math.log(lo), math.log(hi))) if space.log else rng.uniform(lo, hi)
    return cast(space, float(x), digits=4)


def same(a: Any, b: Any) -> bool:
    """Level equality that treats 64 and 64.0 alike but not True and 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def fmt(value: Any) -> str:
    """A level as it appears in a variant name (``64``, ``0.001``, ``batch``)."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("/", "_").replace(" ", "_")


def labels(config: StudyConfig) -> dict[str, str]:
    """Short label per factor path: the last key (`width`), or the whole path where two share it."""
    leaves = [p.rsplit(".", 1)[-1] for p in config.factors]
    return {p: (leaf if leaves.count(leaf) == 1 else p) for p, leaf in zip(config.factors, leaves)}


def component_levels(config: StudyConfig, name: str) -> list[str]:
    return [BASE_LEVEL, *config.components[name].alternatives, REMOVED_LEVEL]


def factorial_size(config: StudyConfig) -> int:
    """Variants of the full-factorial design (components with their levels x factor levels)."""
    n = 1
    for name in config.components:
        n *= len(component_levels(config, name))
    for path in config.factors:
        n *= len(factor_levels(config, path))
    return n
