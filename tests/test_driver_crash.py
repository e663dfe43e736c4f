"""The driver killed with SIGKILL mid-study, then `ablator resume`: nothing finished is re-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from orchestrator.ledger import Study
from tests.conftest import REPO, on_cluster, short_tmp, write_study

#: every test here starts Ray or a subprocess: not in the quick loop (`pytest -m "not slow"`)
pytestmark = pytest.mark.slow

ABLATOR = [sys.executable, "-c", "from orchestrator.cli import app; app()"]


def _env() -> dict:
    return {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO)}


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the driver, then any process it started that outlived it (by PID, ours only)."""
    children = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    _, alive = psutil.wait_procs(children, timeout=15)
    for child in alive:
        child.kill()


def launch_then_kill(config, study: Study, ready) -> None:
    """`ablator launch` in a subprocess, SIGKILLed (with what it started) once `ready(records)` holds."""
    driver = subprocess.Popen([*ABLATOR, "launch", str(config), "--no-dashboard",
                               "--ray-temp-dir", short_tmp("rt_")], cwd=REPO, env=_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            if ready(study.records() if study.exists() else []):
                return
            assert driver.poll() is None, "the driver ended before it could be killed"
            time.sleep(0.2)
        raise AssertionError("the study did not reach the point to kill its driver in time")
    finally:
        _kill_tree(driver)


def test_driver_sigkill_then_resume_completes_without_rerunning(tmp_path, ray_address):
    config = write_study(tmp_path, REPO / "tests/faulty.yaml",
                         baseline={"train": {"epochs": 6, "sleep": 0.2}, "fault": {"mode": "none", "epoch": 99}},
                         seeds=[0, 1, 2], resources={"max_concurrent": 2})  # the same on any core count
    study = Study(tmp_path / "studies" / "faulty")
    launch_then_kill(config, study, lambda records: sum(r.state == "COMPLETED" for r in records) >= 3
                     and any(r.state == "RUNNING" for r in records))

    before = {r.trial_id: r for r in study.records()}
    finished = {tid: r for tid, r in before.items() if r.state == "COMPLETED"}
    interrupted = {tid: study.history(tid) for tid, r in before.items() if r.state == "RUNNING"}
    assert finished and len(finished) < len(before)

    # the killed driver's local Ray died with it; the resume may run anywhere: on the shared head
    resumed = subprocess.run([*ABLATOR, "resume", str(study.path), *on_cluster(ray_address)], cwd=REPO, env=_env(),
                             capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{len(finished)} of 12 trials already finished" in resumed.stdout

    after = {r.trial_id: r for r in study.records()}
    assert len(after) == 12 and all(r.state == "COMPLETED" for r in after.values())
    for tid, rec in finished.items():  # finished trials were not re-run
        assert after[tid].attempts == rec.attempts == 1
        assert after[tid].ended_at == rec.ended_at
    for tid, rows in interrupted.items():  # no reported epoch was lost
        history = study.history(tid)
        assert [r["step"] for r in history] == list(range(6))
        kept = {r["step"]: r for r in history}
        for row in rows:
            if row["step"] < len(rows) - 1:  # every checkpointed epoch survives as it was
                assert kept[row["step"]]["attempt"] == row["attempt"]
        assert after[tid].attempts >= 2
        assert after[tid].errors[0].error.startswith("the worker running this attempt died")
