"""Study YAML files read with their lines: every problem names file:line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ConfigError
from ..overrides import Override
from ..overrides import apply as apply_overrides_args
from .checks import CrossCheckError
from .study import StudyConfig
from .trainable import IMPORT_TRAINABLE


def _line_index(node: yaml.Node, prefix: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map each path (tuple of keys/indices) of a composed YAML document to its 1-based line."""
    out = {} if out is None else out
    out.setdefault(prefix, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = prefix + (key_node.value,)
            out[path] = key_node.start_mark.line + 1
            _line_index(value_node, path, out)
            out[path] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, prefix + (i,), out)
    return out


def _line_for(index: dict[tuple, int], loc: tuple) -> int | None:
    loc = tuple(loc)
    while loc:
        # union members and dotted keys show up in Pydantic locs: try the path as is, then shorter
        if loc in index:
            return index[loc]
        loc = loc[:-1]
    return index.get(())


def _clean_loc(loc: tuple) -> tuple:
    """Drop Pydantic's union-member tags (e.g. 'list[int]', 'AdaptiveSeeds') from a loc."""
    return tuple(p for p in loc if not (isinstance(p, str) and (p[:1].isupper() or "[" in p)))


def load_yaml(path: str | Path) -> tuple[dict, dict[tuple, int]]:
    """Parse a YAML file; return the data and a path->line index. Raises ConfigError."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(path, [("", None, f"cannot read file: {exc.strerror}")]) from None
    loader = _Loader(text)
    try:  # one parse: compose the node tree, check it, then construct the data from it
        node = loader.get_single_node()
        if node is None:
            raise ConfigError(path, [("", 1, "a study config must be a YAML mapping")])
        _check_tree(node, path)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(path, [("", line, f"malformed YAML: {problem}")]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(path, [("", 1, "a study config must be a YAML mapping")])
    return data, _line_index(node)


#: libyaml's parser when PyYAML was built with it (about 10x faster), else the Python one
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: the most nodes aliases may expand a config to, beyond its own nodes (an alias bomb stops here)
MAX_ALIAS_EXPANSION = 100_000


def _check_tree(root: yaml.Node, path: Path) -> None:
    """Refuse duplicate keys (naming both lines) and aliases that expand beyond the cap."""
    sizes: dict[int, int] = {}
    problems: list[tuple[str, int | None, str]] = []

    def size(node: yaml.Node, where: tuple) -> int:
        got = sizes.get(id(node))
        if got is not None:  # an alias: counted again, not walked again
            return got
        sizes[id(node)] = 1  # a recursive alias counts once
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                line = key_node.start_mark.line + 1
                if key is not None and key != "<<":
                    if key in seen:
                        problems.append((_dotted(where + (key,)), line,
                                         (f"duplicate key: '{key}' is already given on line {seen[key]} "
                                          "(YAML would keep only the last one)")))
                    seen.setdefault(key, line)
                total += size(value_node, where + (key,))
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item, where + (i,)) for i, item in enumerate(node.value))
        sizes[id(node)] = total
        return total

    expanded = size(root, ())
    if problems:
        raise ConfigError(path, problems)
    if expanded - len(sizes) > MAX_ALIAS_EXPANSION:
        raise ConfigError(path, [("", None, (f"YAML aliases expand this config to {expanded:,} nodes "
                                             f"(more than {MAX_ALIAS_EXPANSION:,} beyond its own "
                                             f"{len(sizes):,}): an alias bomb? Write the values out "
                                             "or use fewer nested aliases"))])


def parse_config(data: dict, path: str | Path = "<config>", lines: dict | None = None, *,
                 import_trainable: bool = True) -> StudyConfig:
    """Validate a config mapping; raise ConfigError listing every problem with its line.

    ``import_trainable=False`` checks the trainable's form only (not that it imports, nor that its script
    is here): for commands that read the ledger and never run it.
    """
    lines = lines or {}
    try:
        return StudyConfig.model_validate(data, context={IMPORT_TRAINABLE: import_trainable})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            ctx_error = (err.get("ctx") or {}).get("error")
            if isinstance(ctx_error, CrossCheckError):
                for loc, msg in ctx_error.errors:
                    problems.append((_dotted(loc), _line_for(lines, loc), msg))
                continue
            loc = _clean_loc(err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (not allowed here)"
            problems.append((_dotted(loc), _line_for(lines, loc), msg))
        raise ConfigError(path, _dedupe(problems)) from None


def _dedupe(problems):
    seen, out = set(), []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def _dotted(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


def load_config(path: str | Path, overrides: list[Override] = (), *, import_trainable: bool = True) -> StudyConfig:
    """Load and validate a study YAML file, with command-line overrides applied.

    Raises ConfigError naming file and line (or the argument) and the field of each mistake.
    ``import_trainable``: as in parse_config; only commands that run the trainable need it.
    """
    data, lines = load_yaml(path)
    return parse_config(apply_overrides_args(data, lines, list(overrides)), path, lines,
                        import_trainable=import_trainable)
