"""Read offline W&B runs back from their `.wandb` transaction logs (no network, no server).

A `.wandb` file is a LevelDB-style log: a 7-byte header (`:W&B`, magic 0xBEE1,
version), then 32 KiB blocks of chunks (crc32 4 bytes, length 2, type 1:
full/first/middle/last), each record a `wandb.proto` `Record`. wandb no longer
ships a Python reader, so this small one lets tests (and curious users) check
what a study sent to W&B against the ledger.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_BLOCK = 32768
_HEADER = struct.Struct("<4sHB")
_CHUNK = struct.Struct("<IHB")
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def iter_records(path: str | Path) -> Iterator[Any]:
    """Every `wandb_internal_pb2.Record` of one `.wandb` file, in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    ident, magic, _version = _HEADER.unpack_from(data, 0)
    if ident != b":W&B" or magic != 0xBEE1:
        raise ValueError(f"{path} is not a W&B transaction log")
    pos, buf = _HEADER.size, b""
    while pos + _CHUNK.size <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _CHUNK.size:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = _CHUNK.unpack_from(data, pos)
        if kind == 0 and length == 0:  # zero padding up to the block end
            pos += left
            continue
        chunk = data[pos + _CHUNK.size: pos + _CHUNK.size + length]
        if len(chunk) < length:  # torn tail of a killed writer
            return
        pos += _CHUNK.size + length
        if kind in (_FULL, _FIRST):
            buf = chunk
        else:
            buf += chunk
        if kind in (_FULL, _LAST):
            record = pb.Record()
            record.ParseFromString(buf)
            yield record


def _item_key(item) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


def _item_value(item) -> Any:
    try:
        which = item.WhichOneof("value")  # typed encoding (newer wandb)
    except ValueError:
        which = None
    if which == "none":
        return None
    if which in ("boolean", "integer", "number", "text"):
        return getattr(item, which)
    if which == "json":
        return json.loads(item.json)
    return json.loads(item.value_json) if item.value_json else None


def _set_nested(tree: dict, keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        tree = tree.setdefault(key, {})
    tree[keys[-1]] = value


@dataclass
class OfflineRun:
    """What one `.wandb` file says about a run."""

    path: Path
    run_id: str = ""
    project: str = ""
    entity: str = ""
    group: str = ""
    job_type: str = ""
    name: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    artifacts: list[dict] = field(default_factory=list)  # {name, type, files}
    exit_code: int | None = None
    #: when wandb opened this segment (epoch seconds): the order `wandb sync` uploads a run's segments in
    start_time: float = 0.0

    @property
    def steps(self) -> list[int]:
        return [row["_step"] for row in self.history if "_step" in row]


def read_run(path: str | Path) -> OfflineRun:
    """Read a run from its `.wandb` file or its run directory."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.wandb"))
        if not found:
            raise FileNotFoundError(f"no .wandb file in {path}")
        path = found[0]
    # the id is in the file name too: a log cut short before its run record still names its run
    run = OfflineRun(path=path, run_id=path.stem[4:] if path.stem.startswith("run-") else "")
    for rec in iter_records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            run.run_id, run.project, run.entity = r.run_id or run.run_id, r.project, r.entity
            run.group, run.job_type, run.name = r.run_group, r.job_type, r.display_name
            run.tags = list(r.tags)
            run.start_time = r.start_time.ToMicroseconds() / 1e6
            for item in r.config.update:
                _set_nested(run.config, list(item.nested_key) or [item.key], json.loads(item.value_json))
        elif kind == "config":
            for item in rec.config.update:
                _set_nested(run.config, list(item.nested_key) or [item.key], json.loads(item.value_json))
        elif kind == "summary":
            for item in rec.summary.update:
                _set_nested(run.summary, list(item.nested_key) or [item.key], json.loads(item.value_json))
            for item in rec.summary.remove:
                keys = list(item.nested_key) or [item.key]
                node = run.summary
                for key in keys[:-1]:
                    node = node.get(key, {})
                node.pop(keys[-1], None)
        elif kind == "history":
            run.history.append({_item_key(i): _item_value(i) for i in rec.history.item})
        elif kind == "files":
            run.files.extend(f.path for f in rec.files.files)
        elif kind == "artifact":
            a = rec.artifact
            run.artifacts.append({"name": a.name, "type": a.type, "files": [e.path for e in a.manifest.contents]})
        elif kind == "exit":
            run.exit_code = rec.exit.exit_code
    run.config.pop("_wandb", None)
    return run


_RUN_DIR = re.compile(r"^(?:offline-)?run-\d{8}_\d{6}-")
#: a segment's number, the run directory's suffix (`<mode>-run-<wandb's second>-<id>-seg<n>`)
_SEGMENT = re.compile(r"-seg(\d+)$")


def segment_number(run_dir_name: str) -> int:
    """The segment number the driver gave a run directory (0: an older layout without one)."""
    m = _SEGMENT.search(run_dir_name)
    return int(m.group(1)) if m else 0


def _segment_order(path: Path) -> tuple[int, str]:
    # by number; older-layout dirs (wandb's second, then a nanosecond suffix) come first
    name = path.parent.name
    return segment_number(name), name.split("run-", 1)[-1]


def logged_runs(wandb_dir: str | Path) -> dict[str, list[Path]]:
    """The `.wandb` files under a wandb directory by run id, each run's segments in the order
    they were written (one listing)."""
    out: dict[str, list[Path]] = {}
    try:
        entries = list(os.scandir(wandb_dir))
    except FileNotFoundError:
        return out
    for entry in entries:
        if _RUN_DIR.match(entry.name) and entry.is_dir(follow_symlinks=False):
            for path in Path(entry.path).glob("run-*.wandb"):
                out.setdefault(path.stem[4:], []).append(path)
    for paths in out.values():
        paths.sort(key=_segment_order)
    return out


def run_files(wandb_dir: str | Path, run_id: str | None = None) -> list[Path]:
    """The `.wandb` files under a wandb directory (of one run id, else by run id), each run's
    segments in the order they were written."""
    runs = logged_runs(wandb_dir)
    if run_id is not None:
        return runs.get(run_id, [])
    return [p for rid in sorted(runs) for p in runs[rid]]


def last_step_of(paths: list[Path]) -> int:
    """The highest history step these `.wandb` files hold (-1: none)."""
    best = -1
    for path in paths:
        try:
            for rec in iter_records(path):
                if rec.WhichOneof("record_type") == "history":
                    for item in rec.history.item:
                        if (item.nested_key and list(item.nested_key) == ["_step"]) or item.key == "_step":
                            best = max(best, int(_item_value(item)))
        except (OSError, ValueError):
            continue
    return best


def last_step(wandb_dir: str | Path, run_id: str) -> int:
    """The highest history step this machine's W&B logs hold for a run (-1: none)."""
    return last_step_of(run_files(wandb_dir, run_id))


def absolute_links(root: str | Path) -> list[Path]:
    """Every symlink under `root` whose target is an absolute path."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path) and os.path.isabs(os.readlink(path)):
                out.append(Path(path))
    return out


def read_runs(wandb_dir: str | Path) -> dict[str, list[OfflineRun]]:
    """Every run under a wandb directory, by run id; a resumed run has one entry per driver."""
    out: dict[str, list[OfflineRun]] = {}
    for path in run_files(wandb_dir):
        run = read_run(path)
        out.setdefault(run.run_id, []).append(run)
    return out
