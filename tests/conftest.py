"""Shared fixtures: one real local Ray cluster per test session (per xdist worker), private to it."""

from __future__ import annotations

import compileall
import contextlib
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

# Ray 2.5x turns token auth on for clusters that ray.init() starts; tests run their own
# private clusters, so they switch it off rather than touch ~/.ray/auth_token.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Ray starts a worker per CPU when the first driver connects, before anything asks for one: the tests' clusters
# (a private one per test that starts Ray, most of them short-lived) start workers when a task needs them.
os.environ.setdefault("RAY_prestart_worker_first_driver", "0")
# Ray exports metrics every 10 s by default, and a driver on a cluster waits one interval at its end
# so that the last counts are exported (telemetry.close): 1 s keeps that wait real but short.
os.environ.setdefault("RAY_metrics_report_interval_ms", "1000")
# Every process the tests start (the `ablator` commands, Ray's workers) does small numeric work; on a
# shared 2-core machine BLAS/OpenMP threads split it and wait on each other (a 240 x 20 SVD: 78 ms on
# two threads, 2 ms on one), so the suite's processes keep to one BLAS/OpenMP thread each.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # this environment's `ray` and `ablator` scripts


def short_tmp(prefix: str) -> str:
    """A short temp dir: Ray's socket paths must stay under ~107 characters."""
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp")


# About how many seconds each long module takes in three xdist workers (main's suite in `pytest -n 3 --dist loadscope
# --durations=40` on a quiet 2-core machine; modules with tests below that list: twice their time alone). `--dist
# loadscope` runs a module on one worker, so the longest start first and the short ones fill the end (longest
# processing time first); a module not listed keeps its place after these. Rough figures do: only the order counts.
# test_schedule.py mostly waits for its schedules' times: it is listed lower than its time, so that it does not start
# beside the other modules that begin by waiting.
MODULE_SECONDS = {
    "test_cluster_exec.py": 370, "test_integrations.py": 290, "test_groups.py": 255, "test_factors_sim.py": 230,
    "test_tuning.py": 200, "test_node_lost.py": 185, "test_schedule.py": 180, "test_launch.py": 175,
    "test_project_dir.py": 165, "test_budget.py": 150, "test_wheel.py": 125, "test_tracking_e2e.py": 120,
    "test_verdicts_simulated.py": 120, "test_compare_e2e.py": 100, "test_tracking.py": 100, "test_telemetry.py": 85,
    "test_ledger_launch.py": 85, "test_ray_job.py": 75, "test_driver_crash.py": 70, "test_compare_ci.py": 70,
    "test_ledger.py": 70, "test_startup_signals.py": 60, "test_sequential_e2e.py": 60, "test_searchspace_cli.py": 50,
    "test_disk_full.py": 45, "test_examples_e2e.py": 45, "test_commands_anywhere.py": 40, "test_study_flows.py": 35,
    "test_seed_order.py": 35,
}


def pytest_configure(config):
    """Under `--dist loadscope`, xdist takes the modules in collection order (the order below), not by test count.

    The package's and the tests' modules are compiled once: every `ablator` command and Ray worker the suite starts
    imports them, and where PYTHONDONTWRITEBYTECODE is set (as on the machines here) each process would compile
    them again from source (0.02-0.15 CPU-s per process). Files already compiled are skipped."""
    if getattr(config.option, "dist", "no") == "loadscope":
        config.option.loadscopereorder = False
    for package in ("orchestrator", "tests"):
        compileall.compile_dir(REPO / package, quiet=1)


#: tests that spend most of their time waiting out a timeout (a hung trial's trial_timeout): each runs last in its
#: module, so that they do not all wait at once at the start of the run while the CPUs idle
WAITING = {"test_hung_and_stalled_trials_are_stopped_and_counted",
           "test_script_study_verdicts_restart_exit_code_and_hang"}


def pytest_collection_modifyitems(config, items):
    """The longest modules first (a stable sort: a module's own tests keep their order, but for the waiting ones,
    which go last). Tests marked `gpu` run only where torch sees a CUDA device."""
    items.sort(key=lambda item: (-MODULE_SECONDS.get(item.path.name, 0), str(item.path), item.name in WAITING))
    if not any("gpu" in item.keywords for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# Each pytest process (an xdist worker gwN, or the only one) takes ports from a block of its own, between Ray's
# worker ports (10002-19999) and Linux's ephemeral ports (32768 up, where Ray's unnamed ports come from), so
# two workers never pick the same port; it starts at a random place in its block (another test session on the
# machine starts elsewhere), and a port that anything has bound is skipped.
_BLOCK = 20000 + 1000 * int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:])
_START = random.randrange(1000)
_PORTS = iter([*range(_BLOCK + _START, _BLOCK + 1000), *range(_BLOCK, _BLOCK + _START)])


def free_port() -> int:
    for port in _PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port left in this pytest process's block")


@contextlib.contextmanager
def ray_head(*args: str, env: dict | None = None, dashboard: bool = True):
    """A Ray head of our own: `ray start --head --block` on loopback with its own temp dir and
    (unless `dashboard` is False) a dashboard, ended by its PID (`ray start --block` stops what it
    started when it ends).

    Yields {"address": "127.0.0.1:PORT", "dashboard": "http://127.0.0.1:PORT" or None, "env": ...}.
    """
    port, dash, agent, client = (free_port() for _ in range(4))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PATH": f"{BIN}:{os.environ['PATH']}", **(env or {})}
    temp = short_tmp("rh_")
    with open(Path(temp) / "start.out", "w") as out:  # `ray start` says when its node is up
        head = subprocess.Popen(
            [str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
             f"--include-dashboard={str(dashboard).lower()}", f"--dashboard-port={dash}",
             f"--dashboard-agent-listen-port={agent}", f"--ray-client-server-port={client}", f"--temp-dir={temp}",
             *args], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        from ray.job_submission import JobSubmissionClient

        deadline = time.time() + 120
        while True:
            try:
                if dashboard:
                    JobSubmissionClient(f"http://127.0.0.1:{dash}").list_jobs()
                    break
                if "Ray runtime started" in (Path(temp) / "start.out").read_text():
                    break
            except (ConnectionError, RuntimeError, OSError):
                pass
            assert time.time() < deadline and head.poll() is None, "the Ray head did not start"
            time.sleep(1)
        yield {"address": f"127.0.0.1:{port}", "dashboard": f"http://127.0.0.1:{dash}" if dashboard else None,
               "env": env}
    finally:
        head.terminate()
        head.wait(60)


@pytest.fixture(scope="session")
def ray_address():
    """One real Ray head (2 CPUs, no dashboard) that the tests' `ablator` commands join with `--address
    ADDR --no-upload` (a second or two) instead of each starting its own local Ray (10-20 s on a loaded
    2-core machine). Each command is its own Ray job: no trial shares a worker process, an actor or a
    placement group with another command's, and Ray ends a job's workers when its driver ends. With no
    dashboard there is no Jobs API, so a command schedules as on a workstation. Tests of the embedded
    local Ray itself, or of Ray settings read at its start (the memory monitor), start their own."""
    with ray_head("--num-cpus=2", dashboard=False) as head:
        yield head["address"]


@pytest.fixture(scope="session")
def ray_cluster(ray_address):
    """This test process connected, as a Ray driver, to the same head (`ray_address`), for in-process tests:
    one Ray per xdist worker rather than two (an idle one costs ~0.04 CPU-s per second here)."""
    import ray

    from orchestrator.execution.runner import connect

    connect(ray_address)
    yield
    ray.shutdown()


@pytest.fixture
def memory_alone(tmp_path_factory):
    """Tests that set Ray's memory monitor a little above what the machine uses now run one at a time (a lock
    shared by the xdist workers of a run): another such test's growing trial would cross that threshold."""
    from filelock import FileLock

    with FileLock(tmp_path_factory.getbasetemp().parent / "memory_monitor.lock"):
        yield


def on_cluster(address: str | None) -> list[str]:
    """The `ablator` options that join `address` (the session's `ray_address`), or start a private
    embedded local Ray (no dashboard, its own temp dir) where `address` is None."""
    return ["--address", address, "--no-upload"] if address else ["--no-dashboard", "--ray-temp-dir", short_tmp("rt_")]


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


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A real small disk: a tmpfs of `size` (e.g. "1m") mounted at `path` (needs root; skips elsewhere)."""
    path.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                      capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)
