"""Shared fixtures: one real local Ray cluster per test session, private to it."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

# Ray 2.5x turns token auth on for clusters that ray.init() starts; tests run their own
# private clusters, so they switch it off rather than touch ~/.ray/auth_token.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

REPO = Path(__file__).resolve().parent.parent


def short_tmp(prefix: str) -> str:
    """A short temp dir: Ray's socket paths must stay under ~107 characters."""
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp")


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` run only where torch sees a CUDA device."""
    if not any("gpu" in item.keywords for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray cluster for in-process tests (its own temp dir, no dashboard)."""
    import ray

    from orchestrator.execution.runner import connect

    temp = short_tmp("rt_")
    connect(None, temp_dir=temp, dashboard=False, num_cpus=2)
    yield
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    """Trainables are imported by module path from the repo root, as a user's would be."""
    monkeypatch.chdir(REPO)


def write_study(tmp_path: Path, base: str | Path | dict, **changes) -> Path:
    """Copy a study YAML (or dict) into tmp_path with top-level changes and its storage there."""
    data = yaml.safe_load(Path(base).read_text()) if not isinstance(base, dict) else dict(base)
    data.update(changes)
    data.setdefault("storage", {})
    data["storage"] = {"root": str(tmp_path / "studies")}
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
