"""Cluster-grade execution through the real `ablator` command, from a user's own project.

Each test writes a trainable into a temporary project directory and runs the installed
`ablator` script there as a user would: the project directory is NOT on PYTHONPATH (only
this repository is, so that the orchestrator package under test is imported). Real local
Ray everywhere, real faults: a trial that breaks its process, hung and stalled trials,
infeasible requests, SIGTERM, and a two-node cluster started with `ray start`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import yaml

from orchestrator.ledger import Study, TrialRecord
from tests.conftest import BIN, REPO, on_cluster, ray_head, short_tmp

#: every test here starts Ray or a subprocess: not in the quick loop (`pytest -m "not slow"`)
pytestmark = pytest.mark.slow

ABLATOR = str(BIN / "ablator")  # a console script: its sys.path[0] is bin/, not the cwd

TRAINABLE = '''
import re
import time

POISONED = False  # module state a broken trial leaves behind in its worker process


def run(ctx):
    global POISONED
    cfg = ctx.config
    if POISONED:
        raise RuntimeError("this worker process was broken by an earlier trial")
    mode = cfg["mode"]
    if mode == "poison":
        POISONED = True
        raise RuntimeError("broke its process")
    while mode == "endless":  # reports forever: only the wall-time limit stops it
        ctx.report({"score": 0.0})
        time.sleep(0.5)
    if mode == "gil":  # catastrophic backtracking in C, holding the GIL: no Python thread runs
        re.match(r"(a+)+$", "a" * 64 + "b")
    if mode == "hog":  # grows until Ray's memory monitor kills the worker
        hoard = []
        for _ in range(48):
            hoard.append(bytearray(128 * 2**20))  # zero-filled: the pages are really used
            time.sleep(0.05)
        time.sleep(30)
    if mode == "stall":
        ctx.report({"score": 0.0})
        time.sleep(600)
    state = ctx.restore()
    for epoch in range(0 if state is None else state["epoch"] + 1, cfg["epochs"]):
        time.sleep(cfg["sleep"])
        ctx.report({"score": 1.0 + 0.1 * ctx.seed + 0.01 * epoch, "x": cfg["hp"]}, checkpoint={"epoch": epoch})
'''


def project(tmp_path: Path, name: str, components: dict, **changes) -> Path:
    """A user's project: mytrain.py and study.yaml (studies under the project, as by default)."""
    root = tmp_path / "project"
    root.mkdir(exist_ok=True)
    (root / "mytrain.py").write_text(TRAINABLE)
    config = {
        "name": name,
        "trainable": "mytrain:run",
        "metrics": {"primary": {"name": "score", "mode": "max"}},
        "baseline": {"mode": "ok", "epochs": 2, "sleep": 0.0, "hp": 1.0},
        "components": {k: {"kind": "training", "description": k, "removal": {"mode": v}}
                       for k, v in components.items()},
        "seeds": [0, 1],
        "fault_tolerance": {"max_failures": 1},
        "tracking": {"wandb": {"mode": "disabled"}},
        "tuning": {"enabled": False},
        **changes,
    }
    (root / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def env() -> dict:
    """This repository on PYTHONPATH (the package under test), the user's project not."""
    return {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO), "WANDB_MODE": "offline",
            "PATH": f"{BIN}:{os.environ['PATH']}"}


def ablator(root: Path, *args: str, timeout: float = 600, address: str | None = None,
            **extra_env: str) -> subprocess.CompletedProcess:
    """`ablator ARGS` in `root`: on the module's Ray head at `address`, else with its own local Ray."""
    local = on_cluster(address) if "--address" not in args else []
    return subprocess.run([ABLATOR, *args, *local], cwd=root, env={**env(), **extra_env}, capture_output=True,
                          text=True,
                          timeout=timeout, check=False)


def records(root: Path, name: str) -> dict[str, TrialRecord]:
    """Every trial's full record.json (the study index leaves out the worker's pid)."""
    study = Study(root / "studies" / name)
    return {p.parent.name: study.trial(p.parent.name).read() for p in study.trials_dir.glob("*/record.json")}


# ---------------------------------------------------------------- isolation, exit code 1


def test_broken_process_fails_only_its_own_trials_and_the_study_exits_1(tmp_path, ray_address):
    root = project(tmp_path, "iso", {"a": "ok", "poison": "poison"}, seeds=[0, 1, 2, 3])
    result = ablator(root, "launch", "study.yaml", address=ray_address)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "4 trial(s) FAILED" in out and "Traceback" not in result.stdout
    assert "[ablation] done 8/12" in result.stdout  # a plain progress line: stdout is not a terminal
    recs = records(root, "iso")
    failed = {t: r for t, r in recs.items() if r.state == "FAILED"}
    assert set(failed) == {f"no-poison-seed{s}" for s in range(4)}
    for r in failed.values():
        assert r.attempts == 2 and all("broke its process" in e.error for e in r.errors)
    completed = [r for r in recs.values() if r.state == "COMPLETED"]
    assert len(completed) == 8, {t: r.errors for t, r in recs.items() if r.state != "COMPLETED"}
    assert not any("broken by an earlier trial" in e.error for r in recs.values() for e in r.errors)
    poisoned = {r.pid for r in failed.values()}
    assert not poisoned & {r.pid for r in completed}  # a failed worker never ran another trial
    assert len({r.pid for r in completed}) < len(completed)  # healthy workers are reused
    assert (root / "studies" / "iso" / "report.md").exists()


# ---------------------------------------------------------------- timeouts


def test_hung_and_stalled_trials_are_stopped_and_counted(tmp_path, ray_address):
    # limits with room for a healthy trial on a loaded 2-core machine (its own attempt takes < 1 s, but its
    # first report took over 4 s beside other test workers); the timeout is 4x the stall limit, so that an
    # attempt slow to make its first report (seen at load 13) still stalls well before it could time out
    root = project(tmp_path, "hang", {"endless": "endless", "stall": "stall"}, seeds=[0],
                   fault_tolerance={"max_failures": 1, "trial_timeout": 40, "stall_timeout": 10})
    result = ablator(root, "launch", "study.yaml", timeout=300, address=ray_address)
    assert result.returncode == 1, result.stdout + result.stderr
    recs = records(root, "hang")
    assert recs["baseline-seed0"].state == "COMPLETED"
    hang, stall = recs["no-endless-seed0"], recs["no-stall-seed0"]
    assert hang.state == stall.state == "FAILED"
    assert [e.error for e in hang.errors] == ["timed out after 40 s"] * 2
    assert [e.error for e in stall.errors] == ["stalled: no report for 10 s"] * 2


def test_a_trial_stuck_holding_the_gil_is_killed_by_the_driver(tmp_path, ray_address):
    root = project(tmp_path, "gil", {"gil": "gil"}, seeds=[0],
                   fault_tolerance={"max_failures": 0, "trial_timeout": 20})  # a healthy trial took 8 s loaded
    result = ablator(root, "launch", "study.yaml", timeout=300, address=ray_address)
    assert result.returncode == 1, result.stdout + result.stderr
    recs = records(root, "gil")
    assert recs["baseline-seed0"].state == "COMPLETED"
    stuck = recs["no-gil-seed0"]
    assert stuck.state == "FAILED" and stuck.errors[0].error.startswith("timed out after 20 s")


def test_a_trial_killed_by_rays_memory_monitor_counts_toward_max_failures(tmp_path, memory_alone):
    """Ray's memory monitor set just above what the machine uses now; one trial grows past it."""
    mem = psutil.virtual_memory()
    threshold = (mem.total - mem.available + 2.5 * 2**30) / mem.total
    root = project(tmp_path, "oom", {"hog": "hog"}, seeds=[0], resources={"max_concurrent": 1},
                   fault_tolerance={"max_failures": 1})
    result = ablator(root, "launch", "study.yaml", timeout=300, RAY_memory_usage_threshold=f"{threshold:.3f}",
                     RAY_memory_monitor_refresh_ms="100")
    assert result.returncode == 1, result.stdout + result.stderr
    hog = records(root, "oom")["no-hog-seed0"]
    assert hog.state == "FAILED" and hog.attempts == 2, hog.errors
    for e in hog.errors:  # its own memory: charged, counted
        assert e.counted and e.error.startswith(f"killed: out of memory on {hog.host} (this trial used "), e


# ---------------------------------------------------------------- infeasible requests


@pytest.mark.parametrize("resources, field, asked", [
    ({"gpus_per_trial": 1}, "resources.gpus_per_trial", "1 GPU"),
    ({"cpus_per_trial": 1000}, "resources.cpus_per_trial", "1000 CPU"),
])
def test_infeasible_request_exits_2_naming_the_field(tmp_path, ray_address, resources, field, asked):
    root = project(tmp_path, "big", {"a": "ok"}, resources=resources)
    result = ablator(root, "launch", "study.yaml", timeout=120, address=ray_address)
    assert result.returncode == 2, result.stdout + result.stderr
    assert field in result.stderr and asked in result.stderr and "biggest node" in result.stderr
    assert "Traceback" not in result.stderr
    assert not any(r.attempts for r in records(root, "big").values())


# ---------------------------------------------------------------- preemption


def test_sigterm_leaves_running_trials_pending_then_resume_reruns_nothing_finished(tmp_path):
    root = project(tmp_path, "preempt", {"a": "ok", "b": "ok"}, seeds=[0, 1, 2],
                   baseline={"mode": "ok", "epochs": 6, "sleep": 0.5, "hp": 1.0})
    study = Study(root / "studies" / "preempt")
    driver = subprocess.Popen([ABLATOR, "launch", "study.yaml", "--no-dashboard", "--ray-temp-dir",
                               short_tmp("rt_")], cwd=root, env=env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    children: list[psutil.Process] = []
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            states = [r.state for r in study.records()] if study.exists() else []
            if states.count("COMPLETED") >= 2 and "RUNNING" in states:
                break
            assert driver.poll() is None, driver.communicate()
            time.sleep(0.2)
        else:
            raise AssertionError("no trial completed in time")
        status = subprocess.run([ABLATOR, "status", str(study.path)], cwd=root, env=env(), capture_output=True,
                                text=True, timeout=120, check=False)
        assert status.returncode == 0 and "Running trials" in status.stdout, status.stdout + status.stderr
        assert "s ago" in status.stdout  # each running trial: node, GPU, attempt, age, last report
        children = psutil.Process(driver.pid).children(recursive=True)
        driver.send_signal(signal.SIGTERM)
        out, err = driver.communicate(timeout=120)  # a liveness bound, not a speed claim
    finally:
        if driver.poll() is None:
            driver.kill()
        _, alive = psutil.wait_procs(children, timeout=20)
        for child in alive:  # ours only, by PID
            child.kill()
    assert driver.returncode == 143, out + err
    assert f"ablator resume {study.path}" in out + err
    assert "SIGABRT" not in err and "Aborted" not in err and "core dumped" not in err
    before = {r.trial_id: r for r in study.records()}
    assert not [r for r in before.values() if r.state in ("RUNNING", "FAILED")]
    finished = {t: r for t, r in before.items() if r.state == "COMPLETED"}
    interrupted = [r for r in before.values() if r.attempts and r.state == "PENDING"]
    assert finished and interrupted and all(not r.errors for r in interrupted)

    resumed = ablator(root, "resume", str(study.path))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = {r.trial_id: r for r in study.records()}
    assert all(r.state == "COMPLETED" for r in after.values())
    for tid, rec in finished.items():
        assert after[tid].ended_at == rec.ended_at and after[tid].attempts == rec.attempts
    for rec in interrupted:  # every step once: none lost, duplicated or shifted by the kill
        assert [row["step"] for row in study.history(rec.trial_id)] == list(range(6))


# ---------------------------------------------------------------- a two-node Ray cluster


@pytest.fixture
def two_nodes():
    """A head (1 CPU, dashboard for the state API) and a worker node (1 CPU), each `ray start --block`."""
    common = ["--block", "--node-ip-address=127.0.0.1", "--num-cpus=1"]
    # the nodes have the orchestrator installed (here: this repository), not the project
    with ray_head("--num-cpus=1", env=env()) as head:
        # its own temp dir: two nodes on one machine must not share (and clean up) runtime envs
        worker = subprocess.Popen([str(BIN / "ray"), "start", f"--address={head['address']}",
                                   f"--temp-dir={short_tmp('rw_')}", *common],
                                  env=head["env"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield head["address"], head["dashboard"]
        finally:
            worker.terminate()
            worker.wait(60)


def test_two_node_cluster_runs_user_code_ablation_and_tuning_in_one_command(tmp_path, two_nodes):
    from ray.util.state import list_tasks
    from ray.util.state.exception import RayStateApiException

    address, dashboard = two_nodes
    root = project(tmp_path, "two", {"a": "ok", "b": "ok"}, seeds=[0, 1, 2],
                   baseline={"mode": "ok", "epochs": 2, "sleep": 1.0, "hp": 1.0},
                   tuning={"n_trials": 2, "confirm_seeds": [0],
                           "search_space": {"hp": {"value_range": [0.5, 2.0], "value_type": "float"}}})
    (root / "data").mkdir()
    (root / "data" / "big.bin").write_bytes(os.urandom(21 * 2**20))  # large data: left behind
    driver = subprocess.Popen([ABLATOR, "launch", "study.yaml", "--address", address], cwd=root, env=env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pending = 0
    while driver.poll() is None:  # more trials in flight than the cluster fits: demand the autoscaler sees
        try:
            tasks = list_tasks(address=dashboard, filters=[("state", "=", "PENDING_NODE_ASSIGNMENT")],
                               limit=1000, raise_on_missing_output=False)
            waiting = [t for t in tasks if t.func_or_class_name == "run_attempt"]
            pending = max(pending, len(waiting))
        except RayStateApiException:  # the state API can be briefly busy; the next poll asks again
            time.sleep(0.5)
            continue
        time.sleep(0.5)
    out = driver.stdout.read()
    assert driver.returncode == 0, out
    assert "Not uploaded (large files): data/big.bin" in out
    recs = Study(root / "studies" / "two").records()
    ablation = [r for r in recs if r.purpose == "variant"]
    assert len(ablation) == 9 and all(r.state == "COMPLETED" for r in recs)
    assert len({r.node_id for r in ablation}) == 2, "the trials did not run on both nodes"
    info = Study(root / "studies" / "two").info
    assert info["stages"]["tuning"]["state"] == "completed"  # tuning ran before the command returned
    assert [r for r in recs if r.stage == "tuning"]
    assert pending >= 1, "no trial was ever queued beyond what the cluster fits"
