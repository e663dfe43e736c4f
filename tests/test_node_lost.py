"""A Ray node lost under a running study, for real: its raylet SIGKILLed (found only among the
processes this test started, by their own Ray temp dir).

The driver's own node (embedded Ray): no traceback, the node named, exit 75, running trials left
PENDING, then a resume completes without re-running a finished trial; lost while Ray starts: exit 75
too, naming Ray's "timed out during startup". A worker node of a two-node
`ray start` cluster: its trials restart on the other node (the error names the lost node, not
counted toward max_failures) and the study completes; a resume then finds nothing to run.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psutil
import pytest
import yaml

from orchestrator.ledger import Study
from tests.conftest import BIN, ray_head, short_tmp
from tests.test_cluster_exec import TRAINABLE, env

pytestmark = pytest.mark.slow


def _project(tmp_path: Path) -> tuple[Path, Study]:
    root = tmp_path / "project"
    root.mkdir()
    (root / "mytrain.py").write_text(TRAINABLE)
    (root / "study.yaml").write_text(yaml.safe_dump({
        "name": "lost", "trainable": "mytrain:run", "metrics": {"primary": {"name": "score", "mode": "max"}},
        "baseline": {"mode": "ok", "epochs": 6, "sleep": 0.4, "hp": 1.0},
        "components": {"a": {"kind": "training", "description": "a", "removal": {"hp": 2.0}}},
        "seeds": [0, 1, 2], "fault_tolerance": {"max_failures": 0},
        "tracking": {"wandb": {"mode": "disabled"}}, "tuning": {"enabled": False}}))
    return root, Study(root / "studies" / "lost")


def _raylet(parent: int, temp_dir: str) -> psutil.Process:
    """The raylet that `parent` started for its Ray temp dir `temp_dir` (never anyone else's)."""
    found = [p for p in psutil.Process(parent).children(recursive=True)
             if p.name() == "raylet" and temp_dir in " ".join(p.cmdline())]
    assert len(found) == 1, found
    return found[0]


def _when(study: Study, driver: subprocess.Popen, ready) -> None:
    deadline = time.time() + 300  # a liveness bound, not a speed claim
    while not ready(study.records() if study.exists() else []):
        assert driver.poll() is None, driver.communicate()
        assert time.time() < deadline, "the study did not get where its node is killed"
        time.sleep(0.2)


def _ended(driver: subprocess.Popen, children: list[psutil.Process]) -> tuple[str, str]:
    try:
        return driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
        _, alive = psutil.wait_procs(children, timeout=20)
        for child in alive:  # ours only, by PID
            child.kill()


def test_the_drivers_own_node_lost_exits_75_naming_it_then_resume_completes(tmp_path):
    root, study = _project(tmp_path)
    temp = short_tmp("rt_")
    driver = subprocess.Popen([str(BIN / "ablator"), "launch", "study.yaml", "--no-dashboard", "--ray-temp-dir", temp],
                              cwd=root, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _when(study, driver, lambda rs: any(r.state == "COMPLETED" for r in rs) and any(r.state == "RUNNING" for r in rs))
    children = psutil.Process(driver.pid).children(recursive=True)
    _raylet(driver.pid, temp).kill()
    out, err = _ended(driver, children)
    assert driver.returncode == 75, out + err
    assert "Traceback" not in out + err and "ActorDiedError" not in out + err
    assert "Lost the Ray node this driver runs on: " in err and "node id " in err, err
    assert f"`ablator resume {study.path}`" in err
    before = {r.trial_id: r for r in study.records()}
    assert not [r for r in before.values() if r.state in ("RUNNING", "FAILED")]  # kept, none failed
    finished = {t: r for t, r in before.items() if r.state == "COMPLETED"}
    assert finished and len(finished) < len(before)

    resumed = subprocess.run([str(BIN / "ablator"), "resume", str(study.path), "--no-dashboard", "--ray-temp-dir",
                              short_tmp("rt_")], cwd=root, env=env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = {r.trial_id: r for r in study.records()}
    assert all(r.state == "COMPLETED" for r in after.values())
    for tid, rec in finished.items():  # finished trials were not re-run
        assert after[tid].ended_at == rec.ended_at and after[tid].attempts == rec.attempts


def test_the_node_lost_while_ray_starts_exits_75_naming_it(tmp_path):
    """The raylet killed the moment it exists, before it registers: Ray's "timed out during startup"."""
    root, study = _project(tmp_path)
    temp = short_tmp("rt_")
    driver = subprocess.Popen([str(BIN / "ablator"), "launch", "study.yaml", "--no-dashboard", "--ray-temp-dir", temp],
                              cwd=root, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180  # a liveness bound, not a speed claim
    while not (raylets := [p for p in psutil.Process(driver.pid).children(recursive=True)
                           if p.name() == "raylet" and temp in " ".join(p.cmdline())]):
        assert driver.poll() is None and time.time() < deadline, driver.communicate()
        time.sleep(0.001)
    children = psutil.Process(driver.pid).children(recursive=True)
    raylets[0].kill()
    out, err = _ended(driver, children)
    assert driver.returncode == 75, out + err
    assert "Traceback" not in out + err
    assert "Lost the Ray node of the embedded local Ray while it started: The current node timed out" in err, err
    assert "ablator resume DIR" in err and not any(r.attempts for r in study.records())


def test_a_lost_worker_node_restarts_its_trials_elsewhere_uncounted(tmp_path):
    root, study = _project(tmp_path)
    common = ["--block", "--node-ip-address=127.0.0.1", "--num-cpus=1"]
    with ray_head("--num-cpus=1", env=env()) as head:
        temp = short_tmp("rw_")
        worker = subprocess.Popen([str(BIN / "ray"), "start", f"--address={head['address']}", f"--temp-dir={temp}",
                                   *common], env=head["env"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            driver = subprocess.Popen([str(BIN / "ablator"), "launch", "study.yaml", "--address", head["address"]],
                                      cwd=root, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            # both nodes run a trial (1 CPU each): the worker node's dies with it
            _when(study, driver, lambda rs: len({r.node_id for r in rs if r.state == "RUNNING"}) == 2)
            children = psutil.Process(driver.pid).children(recursive=True)
            _raylet(worker.pid, temp).kill()
            out, err = _ended(driver, children)
            assert driver.returncode == 0, out + err
            assert "Traceback" not in out + err
            records = study.records()
            assert all(r.state == "COMPLETED" for r in records)
            lost = [e for r in records for e in r.errors]
            assert lost and all(e.error.startswith("node lost: ") and ", node id " in e.error and not e.counted
                                for e in lost), lost
            resumed = subprocess.run([str(BIN / "ablator"), "resume", str(study.path), "--address", head["address"]],
                                     cwd=root, env=env(), capture_output=True, text=True, timeout=300)
            assert resumed.returncode == 0, resumed.stdout + resumed.stderr
            assert "6 of 6 trials already finished" in resumed.stdout, resumed.stdout
        finally:
            worker.terminate()
            worker.wait(60)
