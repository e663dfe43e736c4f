"""Dotted paths (`model.dropout`) into a nested config mapping."""

from __future__ import annotations

import copy
from typing import Any

MISSING = object()


def get_path(tree: dict, dotted: str, default: Any = MISSING) -> Any:
    """Value at a dotted path (`model.dropout`) of a nested mapping."""
    node: Any = tree
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            if default is MISSING:
                raise KeyError(dotted)
            return default
        node = node[key]
    return node


def set_path(tree: dict, dotted: str, value: Any) -> None:
    """Set an existing dotted path of a nested mapping in place."""
    *parents, leaf = dotted.split(".")
    node = tree
    for key in parents:
        node = node[key]
    node[leaf] = value


def apply_overrides(baseline: dict, overrides: dict[str, Any]) -> dict:
    """A deep copy of `baseline` with dotted-path overrides applied."""
    tree = copy.deepcopy(baseline)
    for dotted, value in overrides.items():
        set_path(tree, dotted, copy.deepcopy(value))
    return tree
