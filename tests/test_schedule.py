"""A tuning stage scheduled for a set time, through the `ablator` command from a user's project.

On a private Ray head (the Jobs API): a Ray job waits for the time and runs the stage by
itself; a schedule is moved (its job replaced) and cancelled (its job stopped). On a
workstation (embedded Ray): `tune --wait` runs the stage at its time (of two such runners,
one), and a runner killed while it waits leaves the stage missed. The submission retry is checked against a real head
whose job agent cannot start.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from orchestrator.errors import ClusterError
from orchestrator.execution import jobs
from orchestrator.ledger import Study
from tests.conftest import BIN, free_port, on_cluster, ray_head

ABLATOR = str(BIN / "ablator")

TRAINABLE = '''
import random


def run(ctx):
    cfg = ctx.config
    noise = random.Random(ctx.seed)
    for epoch in range(2):
        score = 1.0 + 2.0 * cfg["parts"]["a"] - (cfg["hp"]["x"] - 0.7) ** 2 + 0.05 * noise.gauss(0, 1)
        ctx.report({"score": score})
'''


def project(tmp_path: Path, name: str, at: datetime | str) -> Path:
    """A user's project: mytrain.py and study.yaml, its studies on (here: local) shared storage."""
    root = tmp_path / name
    root.mkdir()
    (root / "mytrain.py").write_text(TRAINABLE)
    schedule = at if isinstance(at, str) else {"at": at.isoformat()}
    (root / "study.yaml").write_text(yaml.safe_dump({
        "name": name, "trainable": "mytrain:run",
        "metrics": {"primary": {"name": "score", "mode": "max"}},
        "baseline": {"parts": {"a": 1.0}, "hp": {"x": 0.3}},
        "components": {"a": {"kind": "structural", "description": "part a", "removal": {"parts.a": 0.0},
                             "tune": {"hp.x": {"value_range": [0.0, 1.0], "value_type": "float"}}}},
        "seeds": [0, 1],
        "tuning": {"schedule": schedule, "n_trials": 2, "confirm_seeds": [0],
                   "search_space": {"hp.x": {"value_range": [0.0, 1.0], "value_type": "float"}}},
        "tracking": {"wandb": {"mode": "disabled"}},
        "storage": {"root": str(tmp_path / "studies")},
    }, sort_keys=False))
    return root


def ablator(root: Path, *args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run([ABLATOR, *args], cwd=root, env=env or _env(), capture_output=True, text=True,
                            timeout=timeout, check=False)
    return result


def _env() -> dict:
    return {**os.environ, "RAY_AUTH_MODE": "disabled", "PATH": f"{BIN}:{os.environ['PATH']}"}


def status(root: Path, study: Path) -> dict:
    result = ablator(root, "status", str(study), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def until(what: str, check, timeout: float, every: float = 2.0):
    deadline = time.time() + timeout
    while not (value := check()):
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(every)
    return value


def ablator_jobs(client, study: str) -> list:
    return [j for j in client.list_jobs() if (j.metadata or {}).get("ablator_study") == study]


def in_utc(seconds: float) -> datetime:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)


@pytest.mark.slow
def test_on_a_ray_cluster_a_job_waits_runs_the_stage_and_a_schedule_moves_and_cancels(tmp_path):
    from ray.job_submission import JobStatus, JobSubmissionClient

    with ray_head("--num-cpus=2") as head:
        url, env = head["dashboard"], head["env"]
        client = JobSubmissionClient(url)
        at = in_utc(120)  # after the ablation (a few trials: 20-60 s, twice that on a loaded machine): a job waits
        soon = project(tmp_path, "soon", at)
        result = ablator(soon, "launch", "study.yaml", "--address", url, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        launched = ablator_jobs(client, "soon")
        assert [j.metadata["job_name"] for j in launched] == ["ablator soon"]  # the dashboard's Name column

        # the launch job runs the ablation, then submits the job that waits, named for the schedule
        name = f"ablator tune soon at {at.isoformat()}"
        waiting = until("the waiting job", lambda: [j for j in ablator_jobs(client, "soon")
                                                    if j.metadata.get("job_name") == name], 140)[0]
        assert datetime.now(UTC) < at, "the ablation took past the schedule: nothing had to wait"
        assert waiting.entrypoint.startswith("ablator tune ") and "--wait" in waiting.entrypoint
        assert client.get_job_status(waiting.submission_id) in (JobStatus.PENDING, JobStatus.RUNNING)
        study = tmp_path / "studies" / "soon"
        data = status(soon, study)
        assert data["stages"]["ablation"]["state"] == "completed"
        assert data["schedule"]["state"] == "scheduled" and waiting.submission_id in data["schedule"]["runner"]

        # meanwhile, a far study: moving its schedule replaces its job; cancelling stops the new one
        far, far_study = project(tmp_path, "far", in_utc(2 * 86400)), tmp_path / "studies" / "far"
        result = ablator(far, "launch", "study.yaml", "--address", url, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        launch_far = next(j for j in ablator_jobs(client, "far") if j.metadata["ablator_command"] == "launch")
        until("the far study's launch", lambda: client.get_job_status(launch_far.submission_id)
              in (JobStatus.SUCCEEDED, JobStatus.FAILED), 200)  # its driver holds the study until it ends
        first = status(far, far_study)["schedule"]
        old_id = Study(far_study).info["stages"]["tuning"]["runner"]["job_id"]
        assert old_id in first["runner"] and first["state"] == "scheduled"
        moved_to = in_utc(3 * 86400)
        result = ablator(far, "tune", str(far_study), "--at", moved_to.isoformat(), "--address", url, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        new_id = Study(far_study).info["stages"]["tuning"]["runner"]["job_id"]
        assert new_id != old_id and f"Stopped Ray job {old_id}" in result.stdout
        until("the old job stopped", lambda: client.get_job_status(old_id) == JobStatus.STOPPED, 60)
        assert client.get_job_info(new_id).metadata["job_name"] == f"ablator tune far at {moved_to.isoformat()}"
        result = ablator(far, "tune", str(far_study), "--cancel", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        until("the moved job stopped", lambda: client.get_job_status(new_id) == JobStatus.STOPPED, 60)
        data = status(far, far_study)
        assert data["schedule"] is None and data["stages"]["tuning"]["state"] == "manual"
        assert "stage tuning: manual" in ablator(far, "status", str(far_study)).stdout

        # the waiting job runs the stage after its time, with no further command
        until("the scheduled tuning stage", lambda: client.get_job_status(waiting.submission_id)
              in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED), 420)
        logs = client.get_job_logs(waiting.submission_id)
        assert client.get_job_status(waiting.submission_id) == JobStatus.SUCCEEDED, logs[-3000:]
        data = status(soon, study)
        assert data["stages"]["tuning"]["state"] == "completed" and data["schedule"] is None
        assert (study / "best_config.yaml").exists() and "## Tuning" in (study / "report.md").read_text()
        tuned = [r for r in Study(study).records() if r.purpose == "search"]
        assert len(tuned) == 2 and all(r.state == "COMPLETED" for r in tuned)
        assert min(r.started_at for r in tuned) >= at.timestamp()  # not one trial before its time
        assert all(math.isfinite(r.final["score"]) for r in tuned)


@pytest.mark.slow
def test_on_a_workstation_tune_wait_runs_at_its_time_once_and_a_killed_runner_leaves_it_missed(tmp_path,
                                                                                                ray_address):
    root = project(tmp_path, "desk", in_utc(86400))
    desk = on_cluster(ray_address)  # no Jobs API there: as on a desk
    result = ablator(root, "launch", "study.yaml", *desk)
    assert result.returncode == 0, result.stdout + result.stderr
    study = tmp_path / "studies" / "desk"
    assert f"ablator tune {study} --wait" in result.stdout and "systemd-run --user --on-calendar=" in result.stdout
    assert "sbatch --begin=" in result.stdout and "tune-cronjob.yaml" in result.stdout
    assert "no runner: start it with `ablator tune" in status(root, study)["schedule"]["runner"]

    # a runner killed while it waits: after the time, the stage is missed
    at = in_utc(12)
    assert ablator(root, "tune", str(study), "--at", at.isoformat(), "--n-trials", "3").returncode == 0
    began = time.monotonic()
    runner = subprocess.Popen([ABLATOR, "tune", str(study), "--wait", *desk], cwd=root, env=_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        until("the runner recorded", lambda: "pid" in (Study(study).info["stages"]["tuning"].get("runner") or {}), 30,
              every=0.5)
        starts = time.monotonic() - began  # how long a runner takes to start here and now
        assert status(root, study)["schedule"]["alive"] is True
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait(30)
    until("the time", lambda: datetime.now(UTC) > at, 30, every=1)
    data = status(root, study)
    assert data["schedule"]["state"] == "missed" and data["schedule"]["alive"] is False
    assert data["schedule"]["n_trials"] == 3
    assert data["stages"]["tuning"]["state"] == "scheduled"
    listed = json.loads(ablator(root, "list", str(tmp_path / "studies"), "--json").stdout)
    assert listed["stages"]["tuning"] == "missed"
    shown = ablator(root, "status", str(study)).stdout
    assert "stage tuning: missed" in shown and "3 trials;" in shown

    # two `tune --wait` runners for one schedule sleep until it; the study lock decides which runs it,
    # with the budget the schedule was given before it moved (3 trials; the config says 2)
    at = in_utc(max(8.0, 4 * starts))  # both runners (started at once) wait before it comes
    assert ablator(root, "tune", str(study), "--at", at.isoformat()).returncode == 0
    runners = [subprocess.Popen([ABLATOR, "tune", str(study), "--wait", *desk], cwd=root, env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [r.communicate(timeout=600)[0] for r in runners]
    assert [r.returncode for r in runners] == [0, 0], outs
    assert all(f"Waiting until {at.isoformat()}" in out for out in outs)
    assert sum("no longer scheduled" in out and "nothing to do" in out for out in outs) == 1, outs
    tuned = [r for r in Study(study).records() if r.purpose == "search"]
    assert len(tuned) == 3 and min(r.started_at for r in tuned) >= at.timestamp()
    data = status(root, study)
    assert data["stages"]["tuning"]["state"] == "completed" and (study / "best_config.yaml").exists()
    assert ablator(root, "tune", str(study), "--cancel").returncode == 2  # nothing scheduled now


@pytest.mark.slow
def test_submission_waits_a_bounded_time_for_a_head_whose_job_agent_is_not_ready(monkeypatch, tmp_path):
    # a real fault: the head's job agent cannot take its port, so the Jobs API answers
    # HTTP 500 "No available agent to submit job, please try again later" (as right after `ray start`)
    monkeypatch.setattr(jobs, "AGENT_WAIT_S", 15)  # > one refused call (the head waits 10 s for its agent)
    monkeypatch.setattr(jobs, "CONNECT_WAIT_S", 3)
    console = Console(record=True, width=200)
    with pytest.raises(ClusterError, match="retried for 3 s.*Failed to connect"):  # nobody listens there
        jobs.submit(f"http://127.0.0.1:{free_port()}", ["launch", "x.yaml"], "x", console, upload=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with (ray_head("--num-cpus=1", f"--dashboard-agent-listen-port={taken.getsockname()[1]}") as head,
              pytest.raises(ClusterError, match="retried for 15 s.*No available agent")):
            jobs.submit(head["dashboard"], ["launch", "x.yaml"], "x", console, upload=False)
    out = console.export_text()
    assert "its dashboard does not answer); retrying for up to 3 s" in out
    assert "its job agent is starting); retrying for up to 15 s" in out


def test_schedule_states_and_refusals_without_a_runner(tmp_path):
    from typer.testing import CliRunner

    from orchestrator.cli import app
    from orchestrator.tuning import schedule
    from tests.test_tuning import finished_ablation, sim_config

    study, _ = finished_ablation(tmp_path, sim_config("plain"))
    cli = CliRunner()
    result = cli.invoke(app, ["tune", str(study.path), "--wait"])
    assert result.exit_code == 2 and "Nothing to wait for" in result.output
    result = cli.invoke(app, ["tune", str(study.path), "--cancel"])
    assert result.exit_code == 2 and "Nothing to cancel" in result.output
    result = cli.invoke(app, ["tune", str(study.path), "--cancel", "--at", "2030-01-01T00:00:00"])
    assert result.exit_code == 2 and "--cancel goes alone" in result.output

    # a budget given with --at is the scheduled stage's (whatever runs it reads it); a move keeps it
    result = cli.invoke(app, ["tune", str(study.path), "--at", in_utc(3600).isoformat(), "--n-trials", "5"])
    assert result.exit_code == 0 and study.info["stages"]["tuning"]["n_trials"] == 5, result.output
    result = cli.invoke(app, ["tune", str(study.path), "--at", in_utc(7200).isoformat()])
    assert result.exit_code == 0 and schedule.scheduled_trials(study) == 5 == schedule.describe(study)["n_trials"]

    study.set_stage("tuning", "scheduled", at=in_utc(3600).isoformat())
    assert schedule.describe(study)["state"] == "scheduled"
    assert "no runner: start it with" in schedule.describe(study)["runner"]
    gone = subprocess.Popen(["true"])
    gone.wait()
    study.set_stage("tuning", "scheduled", at=in_utc(-60).isoformat(), runner={"pid": gone.pid,
                                                                             "host": os.uname().nodename})
    described = schedule.describe(study)
    assert described["state"] == "missed" and described["alive"] is False and "(gone)" in described["runner"]
    study.set_stage("tuning", "scheduled", at=in_utc(-60).isoformat(), runner={"pid": os.getpid(), "host": "elsewhere"})
    assert schedule.describe(study)["state"] == "due"  # a runner on another host: never called missed
    result = cli.invoke(app, ["tune", str(study.path), "--cancel"])
    assert result.exit_code == 0 and study.info["stages"]["tuning"]["state"] == "manual"
