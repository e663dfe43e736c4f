"""What makes a result auditable: code version, libraries, hardware."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata as metadata
import importlib.util
import os
import platform
import subprocess
import sys
from pathlib import Path
from types import ModuleType

KEY_PACKAGES = ("torch", "ray", "optuna", "pydantic", "numpy", "scipy", "wandb", "mir_eval", "scikit-learn")


def git_state(where: str | Path = ".") -> dict:
    """Commit, dirty flag and uncommitted tracked files of the git work tree containing `where` (None outside
    git)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=where, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None, "dirty_files": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    files = (git("diff", "--name-only", "HEAD") or "").splitlines()
    return {"commit": commit, "dirty": bool(status), "dirty_files": files}


def packages() -> dict[str, str]:
    """Versions of the libraries a result depends on most."""
    out = {}
    for name in KEY_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def freeze() -> list[str]:
    """Every installed distribution as `name==version`, sorted. Reading them all parses each one's
    metadata (tens of ms), so the list is kept until a directory on sys.path changes (an install)."""
    return list(_freeze(tuple(_mtime(p) for p in sys.path)))


def _mtime(path: str) -> int:
    try:
        return os.stat(path or ".").st_mtime_ns
    except OSError:
        return 0


@functools.lru_cache(maxsize=1)
def _freeze(_key: tuple) -> tuple[str, ...]:
    return tuple(sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()))


def packages_hash() -> str:
    """A short hash of every installed distribution and its version."""
    return hashlib.sha256("\n".join(freeze()).encode()).hexdigest()[:16]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict:
    """The machine a trial runs on (recorded per trial: workers may differ from the driver)."""
    gpu = gpus()
    return {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "gpu_models": gpu["models"],
            "gpu_count": gpu["count"], "cuda": gpu["cuda"], "torch": gpu["torch"]}


def torch_build() -> ModuleType | None:
    """torch's version and build (CUDA, ROCm) from its `version.py`, a plain file, so that a CPU build is told
    without importing torch (a second or more of CPU in every command); None where torch is not installed."""
    if "torch" in sys.modules:
        return sys.modules["torch"].version
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "version.py"
    version_spec = importlib.util.spec_from_file_location("_torch_build_version", path)
    module = importlib.util.module_from_spec(version_spec)
    version_spec.loader.exec_module(module)
    return module


def gpus() -> dict:
    build = torch_build()
    if build is None:
        return {"count": 0, "models": [], "cuda": None, "torch": None}
    if build.cuda is None and build.hip is None:  # a CPU build: torch.cuda sees no device
        return {"count": 0, "models": [], "cuda": None, "torch": build.__version__}
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return {
        "count": count,
        "models": [torch.cuda.get_device_name(i) for i in range(count)],
        "cuda": torch.version.cuda,
        "torch": torch.__version__,
    }


def collect(where: str | Path = ".") -> dict:
    """Everything needed to tell where and with what a study ran."""
    return {
        "git": git_state(where),
        "python": sys.version.split()[0],
        "packages": packages(),
        "packages_hash": packages_hash(),
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu": {"model": cpu_model(), "count": os.cpu_count()},
        "gpu": gpus(),
    }
