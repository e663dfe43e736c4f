"""Command-line overrides of a study config: ``ablator launch study.yaml key.path=value ...``.

The grammar follows Hydra's: ``key.path=value`` sets a key, ``+key.path=value`` adds a key
to the free-form ``baseline`` (elsewhere the schema decides what is known), ``~key.path``
deletes one. Values are YAML flow scalars and collections:
``3``, ``0.1``, ``true``, ``null``, ``'quoted text'``, ``[0,1,2]``, ``{initial: 3, max: 8}``.
A key of a mapping may itself contain dots (``removal: {model.dropout: 0.0}``): the longest
existing key wins, so ``components.dropout.removal.model.dropout=0.2`` works.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

SOURCE = "<command line>"


@dataclass(frozen=True)
class Override:
    arg: str  # the argument as typed
    op: str  # "set", "add" or "delete"
    keys: tuple[str, ...]  # the dotted path, split
    value: Any = None

    @property
    def where(self) -> str:
        return f"argument '{self.arg}'"


def parse(args: list[str]) -> list[Override]:
    """Parse `key.path=value` arguments; raise ConfigError naming each bad argument."""
    out, problems = [], []
    for arg in args:
        try:
            out.append(_parse_one(arg))
        except ValueError as exc:
            problems.append(("", f"argument '{arg}'", str(exc)))
    if problems:
        raise ConfigError(SOURCE, problems)
    return out


def _parse_one(arg: str) -> Override:
    if arg.startswith("~"):
        path, value, op = arg[1:].split("=", 1)[0], None, "delete"
    else:
        if "=" not in arg:
            raise ValueError("an override looks like key.path=value (or +key=value, ~key)")
        path, text = arg.split("=", 1)
        op = "add" if path.startswith("+") else "set"
        path = path.removeprefix("+")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as exc:
            raise ValueError(f"value is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    keys = tuple(path.split("."))
    if not path or any(not k for k in keys):
        raise ValueError("the key path is empty or has an empty part")
    return Override(arg, op, keys, value)


def apply(data: dict, lines: dict[tuple, Any], overrides: list[Override]) -> dict:
    """Apply overrides to a parsed YAML mapping in place; point their paths at the argument.

    `lines` maps config paths to YAML lines (for error messages); an overridden path and
    everything under it now map to the argument that set it.
    """
    problems = []
    for ov in overrides:
        try:
            parent, path = _locate(data, ov)
        except ValueError as exc:
            problems.append((".".join(ov.keys), ov.where, str(exc)))
            continue
        if ov.op == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = ov.value
        for known in [p for p in lines if p[: len(path)] == path]:
            del lines[known]
        lines[path] = ov.where
    if problems:
        raise ConfigError(SOURCE, problems)
    return data


def _locate(tree: dict, ov: Override) -> tuple[dict, tuple]:
    """The mapping that holds the override's last key, and the path of mapping keys to it.

    At each level the longest run of parts that is a key wins (keys may contain dots);
    `+key` creates the mappings it goes through.
    """
    node, keys, path = tree, list(ov.keys), ()
    while True:
        if not isinstance(node, dict):
            raise ValueError(f"'{'.'.join(path)}' is not a mapping, so it has no key '{keys[0]}'")
        key = next((".".join(keys[:n]) for n in range(len(keys), 0, -1) if ".".join(keys[:n]) in node),
                   None)
        if key is None:
            # the schema checks new keys of the study's own fields; the free-form baseline
            # (handed to the trainable as it is) takes a new key only with an explicit `+`
            if ov.op == "delete" or (ov.op == "set" and ov.keys[0] == "baseline"):
                known = ", ".join(map(str, node)) or "none"
                hint = " (+key=value adds a key)" if ov.op == "set" else ""
                raise ValueError(f"no key '{keys[0]}' here{hint}; known keys: {known}")
            key = keys[0]
            if len(keys) > 1:
                node[key] = {}
        path += (key,)
        keys = keys[len(key.split(".")):]
        if not keys:
            return node, path
        node = node[key]


def resolved_text(path: str | Path, overrides: list[Override]) -> str:
    """The config a study records: the user's YAML as it is, or with the overrides applied.

    With overrides the YAML is re-written from the resolved mapping (comments are lost), under a
    header that names the file and the arguments, so the study dir says exactly what ran.
    """
    text = Path(path).read_text()
    if not overrides:
        return text
    data = apply(yaml.safe_load(text), {}, overrides)
    header = [f"# Resolved from {path} with overrides:"] + [f"#   {ov.arg}" for ov in overrides]
    return "\n".join(header) + "\n" + yaml.safe_dump(data, sort_keys=False)
