"""The command line itself: version, completion, and listing studies."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from orchestrator import __version__
from orchestrator.ledger import Study
from tests.conftest import REPO

#: every test here starts Ray or a subprocess: not in the quick loop (`pytest -m "not slow"`)
pytestmark = pytest.mark.slow


def ablator(*args, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run(["ablator", *args], capture_output=True, text=True, cwd=cwd)


def test_version_and_completion():
    assert ablator("--version").stdout.strip() == f"ablator {__version__}"
    # the completion script is for the shell that runs `ablator` (typer finds it among the parent processes):
    # run it from bash, as a user's terminal does, not from whatever process tree the test runner has
    proc = subprocess.run(["bash", "-c", "ablator --show-completion bash; exit $?"], capture_output=True, text=True,
                          cwd=REPO)
    assert proc.returncode == 0 and "_ABLATOR_COMPLETE" in proc.stdout


def test_list_shows_every_study_with_its_stages(tmp_path):
    for name in ("beta", "alpha"):
        Study.create(tmp_path / name, "name: x\n", name)
    Study(tmp_path / "beta").set_stage("ablation", "completed")
    (tmp_path / "not-a-study").mkdir()
    proc = ablator("list", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["name"] for r in rows] == ["alpha", "beta"]
    assert rows[1]["stages"] == {"ablation": "completed"} and rows[0]["stages"] == {}
    assert rows[0]["study_id"].startswith("alpha-")
    table = ablator("list", str(tmp_path)).stdout
    assert "alpha" in table and "completed" in table


def test_status_json_names_the_running_driver_and_its_dashboard(tmp_path):
    study = Study.create(tmp_path / "s", "name: s\n", "s")
    study.set_info(dashboard="http://127.0.0.1:8265")
    proc = ablator("status", str(study.path), "--json")
    assert proc.returncode == 0, proc.stderr
    idle = json.loads(proc.stdout)
    assert idle["driver"] is None and idle["dashboard"] is None  # nobody runs it: no stale URL
    with study.lock():  # this process holds the study, as a driver does
        running = json.loads(ablator("status", str(study.path), "--json").stdout)
        shown = ablator("status", str(study.path)).stdout
    assert running["driver"].startswith("pid ") and running["dashboard"] == "http://127.0.0.1:8265"
    assert "Ray dashboard: http://127.0.0.1:8265" in shown
    (study.path / ".lock").write_text(f"pid 999999999 on {os.uname().nodename}")  # a SIGKILLed driver
    assert json.loads(ablator("status", str(study.path), "--json").stdout)["driver"] is None  # it died
