"""The study's project directory is the launch's: recorded with its code's hash, entered by later
commands from anywhere, and a change of its code refused by file name (or accepted, and recorded)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from orchestrator.config import load_config
from orchestrator.errors import StudyError, UserError
from orchestrator.ledger import Study
from orchestrator.session.project import enter_project, record_project

STUDY = {"name": "proj", "trainable": "mytrain:run", "metrics": {"primary": {"name": "score", "mode": "max"}},
         "baseline": {"x": 1}, "components": {"a": {"kind": "training", "description": "a", "removal": {"x": 0}}},
         "seeds": [0], "tracking": {"wandb": {"mode": "disabled"}}}


@pytest.fixture
def launched(tmp_path, monkeypatch):
    """A project (code, a data file, its studies inside) launched from its own directory."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    project = tmp_path / "project"
    (project / "pkg").mkdir(parents=True)
    (project / "mytrain.py").write_text("def run(ctx):\n    ctx.report({'score': 1.0})\n")
    (project / "pkg" / "helper.py").write_text("K = 1\n")
    (project / "data.csv").write_text("a,b\n1,2\n")
    (project / "study.yaml").write_text(yaml.safe_dump(STUDY))
    monkeypatch.chdir(project)
    config = load_config(project / "study.yaml", import_trainable=False)
    study = Study.create(project / "studies" / "proj", yaml.safe_dump(STUDY), "proj")
    study.write_provenance({"project": record_project(study, config)})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mytrain.py").write_text("raise ImportError('the wrong project')\n")
    monkeypatch.chdir(elsewhere)
    return project.resolve(), elsewhere.resolve(), study, config


def test_a_later_command_runs_in_the_launchs_project_from_anywhere(launched):
    project, elsewhere, study, config = launched
    assert study.read_provenance()["project"]["dir"] == str(project)
    # what trials write (the study, data, logs) is not code: no refusal
    (project / "studies" / "proj" / "trials" / "t.py").write_text("x = 1\n")
    (project / "data.csv").write_text("a,b\n3,4\n")
    (project / "__pycache__").mkdir()
    (project / "__pycache__" / "mytrain.cpython-311.pyc").write_bytes(b"\0")
    assert enter_project(study, config, "resume") == project
    assert Path.cwd() == project and sys.path[0] == str(project)


def test_changed_code_is_refused_naming_the_files_and_both_paths_then_accepted_and_recorded(launched):
    project, elsewhere, study, config = launched
    (project / "mytrain.py").write_text("def run(ctx):\n    ctx.report({'score': 2.0})\n")
    (project / "pkg" / "new.py").write_text("")
    (project / "pkg" / "helper.py").unlink()
    with pytest.raises(StudyError) as refused:
        enter_project(study, config, "resume")
    said = str(refused.value)
    assert "mytrain.py (changed), pkg/helper.py (removed), pkg/new.py (new)" in said
    assert f"project directory (the launch's): {project}" in said and f"this command runs in: {elsewhere}" in said
    assert f"`ablator resume {study.path} --code-changed ok`" in said
    assert Path.cwd() == elsewhere
    with pytest.raises(UserError, match="--code-changed takes ok"):
        enter_project(study, config, "resume", "yes")

    assert enter_project(study, config, "tune", "ok") == project
    change = study.read_provenance()["code_changes"][-1]
    assert change["command"] == "tune" and change["run_in"] == str(elsewhere)
    assert change["files"] == ["mytrain.py (changed)", "pkg/helper.py (removed)", "pkg/new.py (new)"]
    assert change["code_hash"] != change["code_hash_before"] == study.read_provenance()["project"]["code_hash"]
    enter_project(study, config, "resume")  # the accepted code is the study's from now on


def test_a_project_directory_that_is_gone_is_named(launched, tmp_path):
    project, elsewhere, study, config = launched
    moved = tmp_path / "moved"
    shutil.move(project / "studies", moved)
    shutil.rmtree(project)
    with pytest.raises(StudyError, match=f"{project} \\(where it was launched\\), is gone"):
        enter_project(Study(moved / "proj"), config, "resume")


# ---------------------------------------------------------------- from another directory, over --address


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    from tests.test_cluster_exec import ABLATOR, env

    return subprocess.run([ABLATOR, *args], cwd=cwd, env=env(), capture_output=True, text=True, timeout=600,
                          check=False)


@pytest.mark.slow
def test_tune_a_scheduled_stage_and_resume_from_elsewhere_ship_the_launchs_code(tmp_path):
    from ray.job_submission import JobSubmissionClient

    from tests.conftest import ray_head
    from tests.test_cluster_exec import TRAINABLE, env

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "mytrain.py").write_text(TRAINABLE)
    (elsewhere / "mytrain.py").write_text("raise ImportError('the wrong project was shipped')\n")
    (project / "study.yaml").write_text(yaml.safe_dump({
        "name": "shipped", "trainable": "mytrain:run", "metrics": {"primary": {"name": "score", "mode": "max"}},
        "baseline": {"mode": "ok", "epochs": 1, "sleep": 0.0, "hp": 1.0},
        "components": {"a": {"kind": "training", "description": "a", "removal": {"hp": 2.0}}},
        "seeds": [0], "tracking": {"wandb": {"mode": "disabled"}},
        "tuning": {"schedule": "manual", "n_trials": 1, "confirm_seeds": [0],
                   "search_space": {"hp": {"value_range": [0.5, 2.0]}}}}))
    study = Study(project / "studies" / "shipped")
    with ray_head("--num-cpus=2", env=env()) as head:
        launched = _run(project, "launch", "study.yaml", "--address", head["address"])
        assert launched.returncode == 0, launched.stdout + launched.stderr
        tuned = _run(elsewhere, "tune", str(study.path), "--address", head["address"])
        assert tuned.returncode == 0, tuned.stdout + tuned.stderr
        assert [r.state for r in study.records() if r.stage == "tuning"] and \
            all(r.state == "COMPLETED" for r in study.records())

        # a scheduled stage's Ray job, scheduled from elsewhere: the launch's project is its working_dir
        at = (datetime.now(UTC) + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%S")  # still ahead once it runs
        scheduled = _run(elsewhere, "tune", str(study.path), "--at", at, "--n-trials", "2",
                         "--address", head["dashboard"])
        assert scheduled.returncode == 0, scheduled.stdout + scheduled.stderr
        job = study.info["stages"]["tuning"]["runner"]["job_id"]
        client = JobSubmissionClient(head["dashboard"])
        deadline = time.time() + 300  # a liveness bound, not a speed claim
        while str(client.get_job_status(job).value) in ("PENDING", "RUNNING") and time.time() < deadline:
            time.sleep(1)
        assert str(client.get_job_status(job).value) == "SUCCEEDED", client.get_job_logs(job)
        assert len([r for r in study.records() if r.purpose == "search"]) == 2
        assert all(r.state == "COMPLETED" for r in study.records())

        with (project / "mytrain.py").open("a") as fh:
            fh.write("# edited after the launch\n")
        refused = _run(elsewhere, "resume", str(study.path), "--address", head["address"])
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "mytrain.py (changed)" in refused.stderr and "Traceback" not in refused.stderr
        said = " ".join(refused.stderr.split())
        assert str(project) in said and str(elsewhere) in said
        again = _run(project, "launch", "study.yaml", "--address", head["address"])  # continuing it: the same
        assert again.returncode == 2 and "mytrain.py (changed)" in again.stderr, again.stdout + again.stderr
        accepted = _run(elsewhere, "resume", str(study.path), "--address", head["address"], "--code-changed", "ok")
        assert accepted.returncode == 0, accepted.stdout + accepted.stderr
        assert study.read_provenance()["code_changes"][0]["files"] == ["mytrain.py (changed)"]
