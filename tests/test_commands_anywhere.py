"""Commands that only read a study work from any directory; the trainable is imported only where it runs.

A tiny study is launched from a temporary project directory (its trainable module lives there), then
status, report, sync (W&B offline), doctor and list are run on it from another directory: none of them
imports the trainable. `tune`, which runs it, runs the launch's project from there: its code removed,
it refuses, naming the file.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN, on_cluster

pytestmark = pytest.mark.slow

TRAINABLE = '''
import random


def run(ctx):
    y = 1.0 + ctx.config["gain"] + random.Random(ctx.seed).gauss(0, 0.01)
    ctx.report({"score": y})
'''

STUDY = """\
name: anywhere
trainable: mytrain:run
metrics:
  primary: {name: score, mode: max}
baseline: {gain: 1.0}
components:
  gain: {kind: training, description: the gain term, removal: {gain: 0.0}}
seeds: [0, 1, 2]
analysis: {n_bootstrap: 200}
tracking: {wandb: {mode: offline, project: anywhere-test}}
tuning: {schedule: manual}
"""


def ablator(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(BIN / "ablator"), *args], cwd=cwd, env={**env, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=600, check=False)


def test_reading_commands_work_from_another_directory_and_tune_still_needs_the_trainable(tmp_path, ray_address):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "mytrain.py").write_text(TRAINABLE)
    (project / "study.yaml").write_text(STUDY)
    launched = ablator(project, "launch", "study.yaml", *on_cluster(ray_address))
    assert launched.returncode == 0, launched.stdout + launched.stderr
    study = project / "studies" / "anywhere"
    (study / "report.md").unlink()

    status = ablator(elsewhere, "status", str(study), "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["name"] == "anywhere" and data["trials"]["ablation"]["COMPLETED"] == 6

    report = ablator(elsewhere, "report", str(study))
    assert report.returncode == 0, report.stderr
    assert "gain" in report.stdout and (study / "report.md").exists()
    assert "cannot be imported" not in (study / "report.md").read_text()

    synced = ablator(elsewhere, "sync", str(study))
    assert synced.returncode == 0, synced.stderr
    assert str(study) in synced.stdout

    doctor = ablator(elsewhere, "doctor", str(study))
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "trainable" not in doctor.stdout + doctor.stderr

    listed = ablator(elsewhere, "list", str(project / "studies"), "--json")
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line)["name"] for line in listed.stdout.splitlines()] == ["anywhere"]

    (project / "mytrain.py").unlink()  # tune runs the launch's project, from anywhere: its code is gone
    tune = ablator(elsewhere, "tune", str(study))
    assert tune.returncode == 2 and "Traceback" not in tune.stderr
    assert "mytrain.py (removed)" in tune.stderr and f"this command runs in: {elsewhere}" in tune.stderr
