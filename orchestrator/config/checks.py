"""Checks of a study config against its baseline: paths, names, types, the design's size."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .. import levels, space_sampling
from ..paths import get_path

if TYPE_CHECKING:
    from .search_space import SearchSpace
    from .study import StudyConfig

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class CrossCheckError(ValueError):
    """Every cross-check problem of a config at once, each with its location."""

    def __init__(self, errors: list[tuple[tuple, str]]):
        self.errors = errors
        super().__init__("; ".join(msg for _, msg in errors))


RESERVED_LEVELS = (levels.BASELINE, levels.REMOVED_LEVEL, "removal")
SCALAR = (str, int, float, bool, type(None))


def factor_checks(config: StudyConfig) -> list[tuple[tuple, str]]:
    """Alternatives and factors checked against the baseline (paths, names, types) and the design's size."""
    errors: list[tuple[tuple, str]] = []
    for name, comp in config.components.items():
        for alt, overrides in comp.alternatives.items():
            loc = ("components", name, "alternatives", alt)
            if alt in RESERVED_LEVELS or alt == f"no-{name}" or not NAME_RE.match(alt):
                msg = (f"alternative '{alt}' is named like the baseline or the removal; "
                       "use a name of its own (letters, digits, '-', '_', '.')")
                errors.append((loc, msg))
            if not overrides:
                errors.append((loc, "an alternative needs at least one override"))
            elif overrides == comp.removal:
                errors.append((loc, "this alternative is the removal contract itself; the removal is already a level"))
            for dotted in overrides:
                if not has_path(config.baseline, dotted):
                    errors.append((loc + (dotted,), f"path '{dotted}' is not in baseline"))
    for dotted, space in config.factors.items():
        loc = ("factors", dotted)
        if not has_path(config.baseline, dotted):
            errors.append((loc, f"path '{dotted}' is not in baseline"))
            continue
        base = get_path(config.baseline, dotted)
        if space_sampling.numeric(space):
            key = "value_range" if space.value_range is not None else "subspaces"
            if isinstance(base, bool) or not isinstance(base, int | float):
                msg = f"a numeric range for a baseline value of type {type(base).__name__} ({base!r})"
                errors.append((loc + (key,), msg))
            elif space_sampling.bounds(space)[2] and base <= 0:
                errors.append((loc + ("log",), f"log: true needs a positive baseline value, got {base!r}"))
        errors += space_checks(config.baseline, dotted, space, loc)
        if config.sweep is not None and config.sweep.path == dotted:
            errors.append((loc, f"'{dotted}' is also the sweep path; ablate it in one place"))
    if config.design.type == "full_factorial" and not errors:
        n = levels.factorial_size(config)
        if n > config.design.max_variants:
            msg = (f"full_factorial has {n} variants, over the cap of {config.design.max_variants} "
                   "(design.max_variants); use design.type: random with total_trials, or raise the cap")
            errors.append((("design", "type"), msg))
    return errors


def space_checks(baseline: dict, dotted: str, space: SearchSpace, loc: tuple) -> list[tuple[tuple, str]]:
    """A factor's space against the baseline: plain distinct categories, branch keys that exist there."""
    errors: list[tuple[tuple, str]] = []
    if space.categorical_values is not None:
        bad = [v for v in space.categorical_values if not isinstance(v, SCALAR)]
        if bad:
            errors.append((loc + ("categorical_values",), f"levels must be plain values, got {bad[0]!r}"))
        elif len({repr(v) for v in space.categorical_values}) != len(space.categorical_values):
            errors.append((loc + ("categorical_values",), "levels must be distinct"))
    for i, sub in enumerate(space.subspaces or []):
        errors += space_checks(baseline, dotted, sub, loc + ("subspaces", i))
    if space.sub_configuration is not None:
        where = loc + ("sub_configuration",)
        if not isinstance(get_path(baseline, dotted), dict):
            return errors + [(where, f"a sub_configuration sets keys under '{dotted}', but the baseline's value "
                                     f"there is not a mapping ({get_path(baseline, dotted)!r})")]
        for sub, leaf in space_sampling.leaves(space.sub_configuration):
            full = f"{dotted}.{sub}"
            if not has_path(baseline, full):
                errors.append((where + tuple(sub.split(".")),
                               f"path '{full}' is not in baseline (a branch sets keys the baseline has; "
                               "give it there, e.g. as null)"))
            elif space_sampling.is_space(leaf):
                errors += space_checks(baseline, full, leaf, where + tuple(sub.split(".")))
    return errors


def has_path(tree: dict, dotted: str) -> bool:
    absent = object()
    return get_path(tree, dotted, absent) is not absent
