"""Shipping the user's project to a Ray cluster as the runtime_env `working_dir`.

Ray uploads the directory once per job and starts every worker inside it, so
`module:function` imports there as it does in the directory `ablator` runs in.
Study directories, W&B files, version control, virtual environments and large files
stay behind.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import UserError

EXCLUDES = [".git", ".venv", "venv", "studies", "wandb", "__pycache__", "*.pt", "*.ckpt", ".ipynb_checkpoints"]
LARGE_FILE_MB = 20  # files above this are data, not code: left out (and named)
LIMIT_MB = 100  # Ray refuses packages above 512 MiB; far less keeps every start quick
MAX_FILES = 50_000  # a directory with more files than this is not hashed (a home directory, not a project)
#: set in a Ray job's environment by `jobs.submit`: the project directory on the machine that submitted it
PROJECT_ENV = "ABLATOR_PROJECT_DIR"
#: the files whose contents are the project's code (hashed at launch, checked by later commands)
CODE_SUFFIXES = {".py", ".pyx", ".pxd", ".pyi", ".sh", ".bash", ".c", ".cc", ".cpp", ".h", ".hpp", ".cu", ".cuh",
                 ".toml", ".cfg", ".ini"}


def _excluded(rel: str, name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(rel, p.strip("/")) for p in patterns)


def _shipped(root: Path, patterns: list[str]) -> Iterator[tuple[str, Path]]:
    """Every file under `root` that the patterns do not leave behind: (relative path, path)."""
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = sorted(d for d in dirnames
                             if not _excluded(os.path.normpath(os.path.join(rel_dir, d)), d, patterns))
        for name in sorted(filenames):
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if not _excluded(rel, name, patterns):
                yield rel, Path(dirpath) / name


def working_dir_env(project: str | Path, extra_excludes: list[str] = ()) -> tuple[dict, list[str]]:
    """The runtime_env that ships `project`; and the large files it leaves out.

    Raises UserError when what remains is still too big, with the biggest entries and
    the ways out (`--no-upload` when the image holds the code, or a `.rayignore`).
    """
    root = Path(project).resolve()
    patterns = EXCLUDES + list(extra_excludes) + _rayignore(root)
    total, left_out, sizes = 0, [], {}
    for rel, path in _shipped(root, patterns):
        try:
            size = path.stat().st_size
        except OSError:
            continue
        if size > LARGE_FILE_MB * 2**20:
            left_out.append(rel)
            continue
        total += size
        top = rel.split(os.sep)[0]
        sizes[top] = sizes.get(top, 0) + size
    if total > LIMIT_MB * 2**20:
        biggest = ", ".join(f"{k} ({v / 2**20:.0f} MiB)" for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])[:5])
        raise UserError(
            f"the project in {root} is {total / 2**20:.0f} MiB to upload to the cluster (limit {LIMIT_MB} MiB); "
            f"biggest: {biggest}. Move data out of the project (read it from shared storage), list it in "
            f"{root / '.rayignore'}, or pass --no-upload when the cluster's image already holds the code."
        )
    excludes = patterns + ["/" + p for p in left_out]
    return {"working_dir": str(root), "excludes": excludes}, left_out


def code_files(project: str | Path, extra_excludes: list[str] = ()) -> dict[str, str] | None:
    """The project's code as shipped: each source file's relative path -> a hash of its bytes; None
    for a directory of more than MAX_FILES files (a home directory, not a project: not hashed).

    Source files only (CODE_SUFFIXES): what a trial writes into the project (logs, outputs) is not code.
    """
    root = Path(project).resolve()
    patterns = EXCLUDES + list(extra_excludes) + _rayignore(root)
    out = {}
    for seen, (rel, path) in enumerate(_shipped(root, patterns)):
        if seen > MAX_FILES:
            return None
        if path.suffix in CODE_SUFFIXES or rel == ".rayignore":
            try:
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            except OSError:
                continue
    return out


def code_hash(files: dict[str, str] | None) -> str | None:
    """One hash of a project's code (its files' paths and contents); None when it was not hashed."""
    if files is None:
        return None
    return hashlib.sha256("".join(f"{rel}\0{h}\n" for rel, h in sorted(files.items())).encode()).hexdigest()[:16]


def changes(before: dict[str, str], now: dict[str, str]) -> list[str]:
    """The files that differ: 'path (changed)', 'path (new)', 'path (removed)'."""
    return [f"{rel} ({'new' if rel not in before else 'removed' if rel not in now else 'changed'})"
            for rel in sorted(before.keys() | now.keys()) if before.get(rel) != now.get(rel)]


def _rayignore(root: Path) -> list[str]:
    path = root / ".rayignore"
    if not path.exists():
        return []
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
