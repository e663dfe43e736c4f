"""Shipping the user's project to a Ray cluster as the runtime_env `working_dir`.

Ray uploads the directory once per job and starts every worker inside it, so
`module:function` imports there as it does in the directory `ablator` runs in.
Study directories, W&B files, version control, virtual environments and large files
stay behind.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from ..errors import UserError

EXCLUDES = [".git", ".venv", "venv", "studies", "wandb", "__pycache__", "*.pt", "*.ckpt", ".ipynb_checkpoints"]
LARGE_FILE_MB = 20  # files above this are data, not code: left out (and named)
LIMIT_MB = 100  # Ray refuses packages above 512 MiB; far less keeps every start quick


def _excluded(rel: str, name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(rel, p.strip("/")) for p in patterns)


def working_dir_env(project: str | Path, extra_excludes: list[str] = ()) -> tuple[dict, list[str]]:
    """The runtime_env that ships `project`; and the large files it leaves out.

    Raises UserError when what remains is still too big, with the biggest entries and
    the ways out (`--no-upload` when the image holds the code, or a `.rayignore`).
    """
    root = Path(project).resolve()
    patterns = EXCLUDES + list(extra_excludes) + _rayignore(root)
    total, left_out, sizes = 0, [], {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = [d for d in dirnames
                       if not _excluded(os.path.normpath(os.path.join(rel_dir, d)), d, patterns)]
        for name in filenames:
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if _excluded(rel, name, patterns):
                continue
            try:
                size = os.path.getsize(os.path.join(dirpath, name))
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


def _rayignore(root: Path) -> list[str]:
    path = root / ".rayignore"
    if not path.exists():
        return []
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
