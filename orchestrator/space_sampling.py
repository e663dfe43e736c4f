"""ABLATOR's SearchSpace language, what its four kinds mean: grid, random draw, branches.

A space is one of: ``value_range`` (numbers, ``value_type`` int or float, ``log``, ``n_bins``),
``categorical_values``, ``subspaces`` (a union of spaces) or ``sub_configuration`` (a mapping
whose leaves are plain values or spaces: a *branch*). Values drawn from a ``sub_configuration``
are mappings; they are set leaf by leaf at the factor's path, so keys a branch does not name
keep the baseline's value (a branch that sets a key to null sets it to None).

- grid (ABLATOR's grid sampler, also the tuning stage's ``n_bins`` grid): a range gives
  ``n_bins`` values (log-spaced with ``log``; ints rounded and deduplicated), subspaces are
  concatenated, a sub_configuration expands to every combination of its leaves' grids;
- draw (random design): a subspace is picked uniformly, then a value inside it; a range
  without ``n_bins`` is sampled (log-)uniformly, with ``n_bins`` from its grid;
- the tuning stage (tuning/tuning_plan.py `sample`) makes the same choices as Optuna define-by-run parameters, so
  a branch's own ranges exist only in trials of that branch.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .config import SearchSpace

DEFAULT_BINS = 3  # numeric levels of a range without n_bins (one_at_a_time, full_factorial)
SPACE_KEYS = frozenset({"value_range", "categorical_values", "subspaces", "sub_configuration",
                        "value_type", "n_bins", "log"})
KINDS = ("value_range", "categorical_values", "subspaces", "sub_configuration")


def is_space(value: Any) -> bool:
    """A validated SearchSpace (a drawn value's mappings are plain, whatever their keys)."""
    return not isinstance(value, dict) and hasattr(value, "sub_configuration")


def looks_like_space(value: Any) -> bool:
    """A YAML mapping that is a SearchSpace, as ABLATOR tells one: it has any of its keys (set, not null)."""
    return isinstance(value, dict) and any(value[k] is not None for k in SPACE_KEYS & value.keys())


def drop_nulls(space: dict) -> dict:
    """A space mapping without the null fields ABLATOR's dumps write for every unset one (null means absent).

    Spaces inside it (subspaces, a sub_configuration's space leaves) lose theirs too; a null plain
    leaf of a sub_configuration stays (it sets None).
    """
    out = {k: v for k, v in space.items() if not (k in SPACE_KEYS and v is None)}
    if isinstance(out.get("subspaces"), list):
        out["subspaces"] = [drop_nulls(s) if isinstance(s, dict) else s for s in out["subspaces"]]
    if isinstance(out.get("sub_configuration"), dict):
        out["sub_configuration"] = _branch_nulls(out["sub_configuration"])
    return out


def _branch_nulls(mapping: dict) -> dict:
    return {k: drop_nulls(v) if looks_like_space(v) else _branch_nulls(v) if isinstance(v, dict) else v
            for k, v in mapping.items()}


def kind(space: SearchSpace) -> str:
    return next(k for k in KINDS if getattr(space, k) is not None)


# ---------------------------------------------------------------- values


def cast(space: SearchSpace, value: float, digits: int = 6) -> Any:
    """An int, or a float kept to `digits` significant digits (so its name in a variant is exact)."""
    return round(value) if space.value_type == "int" else float(f"{value:.{digits}g}")


def bins(space: SearchSpace) -> list:
    """A range cut into n_bins values (DEFAULT_BINS without), log-spaced with log; ints deduplicated."""
    lo, hi = space.value_range
    n = space.n_bins or DEFAULT_BINS
    xs = np.geomspace(lo, hi, n) if space.log else np.linspace(lo, hi, n)
    out: list = []
    for x in xs:
        v = cast(space, float(x))
        if v not in out:
            out.append(v)
    return out


def grid(space: SearchSpace) -> list:
    """Every value of the space on ABLATOR's grid (deduplicated, in order)."""
    k = kind(space)
    if k == "value_range":
        return bins(space)
    if k == "categorical_values":
        return list(space.categorical_values)
    if k == "sub_configuration":
        return expand(space.sub_configuration)
    out, seen = [], set()
    for sub in space.subspaces:
        for v in grid(sub):
            key = json.dumps(v, sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                out.append(v)
    return out


def expand(mapping: dict) -> list[dict]:
    """Every combination of a sub_configuration's leaves (spaces on their grid)."""
    keys = list(mapping)
    options = [grid(v) if is_space(v) else expand(v) if isinstance(v, dict) else [v] for v in mapping.values()]
    return [dict(zip(keys, combo)) for combo in itertools.product(*options)]


def resolve(mapping: dict, pick: Callable[[SearchSpace, str], Any], prefix: str = "") -> dict:
    """A sub_configuration with each space leaf replaced by ``pick(space, its dotted subpath)``."""
    out = {}
    for k, v in mapping.items():
        sub = f"{prefix}.{k}" if prefix else k
        out[k] = pick(v, sub) if is_space(v) else resolve(v, pick, sub) if isinstance(v, dict) else v
    return out


def draw(space: SearchSpace, rng: np.random.Generator) -> Any:
    """One random value: a category, a grid value (n_bins given), a (log-)uniform number, a branch."""
    k = kind(space)
    if k == "subspaces":
        return draw(space.subspaces[int(rng.integers(len(space.subspaces)))], rng)
    if k == "sub_configuration":
        return resolve(space.sub_configuration, lambda s, _: draw(s, rng))
    if k == "categorical_values" or space.n_bins is not None:
        options = grid(space)
        return options[int(rng.integers(len(options)))]
    lo, hi = space.value_range
    if space.value_type == "int":
        if space.log:
            return round(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        return int(rng.integers(int(lo), int(hi) + 1))
    x = math.exp(rng.uniform(math.log(lo), math.log(hi))) if space.log else rng.uniform(lo, hi)
    return cast(space, float(x), digits=4)


def contains(space: SearchSpace, value: Any) -> bool:
    """Whether a value lies inside the space (a branch's value: its plain leaves equal, its ranges hold)."""
    k = kind(space)
    if k == "value_range":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        lo, hi = space.value_range
        return lo - 1e-9 * abs(lo) <= value <= hi + 1e-9 * abs(hi)
    if k == "categorical_values":
        return any(same(value, c) for c in space.categorical_values)
    if k == "subspaces":
        return any(contains(s, value) for s in space.subspaces)
    return isinstance(value, dict) and _within(space.sub_configuration, value)


def _within(mapping: dict, value: dict) -> bool:
    for key, spec in mapping.items():
        if key not in value:
            return False
        got = value[key]
        if is_space(spec):
            if not contains(spec, got):
                return False
        elif isinstance(spec, dict):
            if not (isinstance(got, dict) and _within(spec, got)):
                return False
        elif not same(spec, got):
            return False
    return True


def same(a: Any, b: Any) -> bool:
    """Level equality that treats 64 and 64.0 alike but not True and 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


# ---------------------------------------------------------------- structure


def leaves(mapping: dict, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted subpath, leaf) of a nested mapping; a space is a leaf."""
    for k, v in mapping.items():
        sub = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            yield from leaves(v, sub)
        else:
            yield sub, v


def members(space: SearchSpace) -> list[SearchSpace]:
    """The spaces a union is made of, nested subspaces flattened (a space alone: itself)."""
    if space.subspaces is None:
        return [space]
    return [m for s in space.subspaces for m in members(s)]


def numeric(space: SearchSpace) -> bool:
    """A range, or a union of ranges only: one numeric factor."""
    return all(m.value_range is not None for m in members(space))


def bounds(space: SearchSpace) -> tuple[float, float, bool]:
    """(low, high, log) of a numeric space (a union: its hull; log when every member is)."""
    ms = members(space)
    return (min(m.value_range[0] for m in ms), max(m.value_range[1] for m in ms), all(m.log for m in ms))


@dataclass(frozen=True)
class Branch:
    """One sub_configuration of a factor: its label and mapping."""

    label: str
    mapping: dict

    def plain(self) -> dict[str, Any]:
        return {q: v for q, v in leaves(self.mapping) if not is_space(v)}

    def spaces(self) -> dict[str, SearchSpace]:
        return {q: v for q, v in leaves(self.mapping) if is_space(v)}


def branches(space: SearchSpace) -> list[Branch]:
    """The branches of a factor whose every member is a sub_configuration ([] otherwise).

    A branch is named by the plain values that tell it from the others (``sgd``, ``adam``);
    one alone by its plain text values; where nothing tells two apart, by position.
    """
    ms = members(space)
    if not ms or any(m.sub_configuration is None for m in ms):
        return []
    plains = [dict((q, v) for q, v in leaves(m.sub_configuration) if not is_space(v)) for m in ms]
    paths = list(dict.fromkeys(q for p in plains for q in p))
    if len(ms) == 1:
        telling = [q for q in paths if isinstance(plains[0][q], str)]
    else:
        def differ(qs: list[str]) -> list[str]:
            return [q for q in qs if len({json.dumps(p.get(q, "\0"), default=str) for p in plains}) > 1]
        telling = differ([q for q in paths if all(q in p for p in plains)]) or differ(paths)
    out, used = [], set()
    for i, (m, p) in enumerate(zip(ms, plains), 1):
        label = "-".join(fmt(p[q]) for q in telling if q in p) or f"branch{i}"
        if label in used:
            label = f"{label}-{i}"
        used.add(label)
        out.append(Branch(label, m.sub_configuration))
    return out


def branch_of(found: list[Branch], value: Any) -> Branch | None:
    """The branch a value belongs to: its plain leaves match (ranges decide between look-alikes)."""
    if not isinstance(value, dict):
        return None
    flat = dict(leaves(value))
    alike = [b for b in found if all(q in flat and same(flat[q], v) for q, v in b.plain().items())]
    inside = [b for b in alike if _within(b.mapping, value)]
    return (inside or alike or [None])[0]


def flatten(path: str, value: dict) -> dict[str, Any]:
    """A branch's value as dotted overrides under the factor's path (leaf by leaf)."""
    return {f"{path}.{q}": v for q, v in leaves(value)}


def overrides(space: SearchSpace, path: str, value: Any) -> dict[str, Any]:
    """Dotted overrides of a value of a space: a branch's leaf by leaf, any other value at the path."""
    if isinstance(value, dict) and branches(space):
        return flatten(path, value)
    return {path: value}


def merge(base: Any, value: Any) -> Any:
    """The baseline's subtree with a branch's value set leaf by leaf."""
    if not (isinstance(base, dict) and isinstance(value, dict)):
        return value
    return {**base, **{k: merge(base.get(k), v) for k, v in value.items()}}


def fmt(value: Any) -> str:
    """A level as it appears in a variant name (``64``, ``0.001``, ``batch``, ``sgd[lr=0.01]``)."""
    if isinstance(value, dict):
        flat = list(leaves(value))
        words = [fmt(v) for _, v in flat if isinstance(v, str)]
        nums = [f"{q.rsplit('.', 1)[-1]}={fmt(v)}" for q, v in flat if not isinstance(v, str)]
        return "-".join(words) + (f"[{','.join(nums)}]" if nums else "")
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("/", "_").replace(" ", "_")


def describe(space: SearchSpace) -> str:
    """A space in one line (tables and the tuning report)."""
    k = kind(space)
    if k == "categorical_values":
        return "one of " + ", ".join(json.dumps(v) for v in space.categorical_values)
    if k == "subspaces":
        return "any of (" + "; ".join(describe(s) for s in space.subspaces) + ")"
    if k == "sub_configuration":
        parts = [f"{q}: {describe(v) if is_space(v) else json.dumps(v, default=str)}"
                 for q, v in leaves(space.sub_configuration)]
        return "{" + ", ".join(parts) + "}"
    lo, hi = space.value_range
    text = f"{space.value_type} in [{lo:g}, {hi:g}]"
    if space.log:
        text += " (log)"
    if space.n_bins:
        text += f", {space.n_bins} bins"
    return text
