"""SIGTERM in the first seconds of `ablator launch` / `resume`, from a user's project directory.

The `ablator` script is signalled at moments of its start-up that the test observes (never a
delay): the instant its own SIGTERM handler is in place (Python still loading the command),
while `ray.init` starts the embedded Ray (its session directory exists), each time: exit 143,
the resume hint, no traceback; then a resume completes the study.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.ledger import Study
from tests.conftest import BIN, short_tmp
from tests.test_cluster_exec import TRAINABLE, env

pytestmark = pytest.mark.slow


def _catches_sigterm(pid: int) -> bool:
    """Whether the process has a SIGTERM handler of its own (SigCgt in /proc/PID/status)."""
    try:
        line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("SigCgt"))
    except (OSError, StopIteration):
        return False
    return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)


def _sigterm_at(root: Path, moment: str, *args: str) -> subprocess.CompletedProcess:
    """Run `ablator ARGS` in `root`; SIGTERM it at `moment` ('entry': its handler is in place;
    'ray': the embedded Ray's session directory exists); return how it ended."""
    temp = short_tmp("rt_")
    proc = subprocess.Popen([str(BIN / "ablator"), *args, "--no-dashboard", "--ray-temp-dir", temp], cwd=root,
                            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180  # a liveness bound, not a speed claim
        while proc.poll() is None and time.time() < deadline:
            if _catches_sigterm(proc.pid) if moment == "entry" else any(Path(temp).glob("session_*")):
                break
            time.sleep(0.002)
        assert proc.poll() is None, f"`ablator {args[0]}` ended before {moment}: {proc.communicate()}"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_sigterm_at_each_moment_of_start_up_exits_143_with_the_resume_hint(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    (root / "mytrain.py").write_text(TRAINABLE)
    (root / "study.yaml").write_text(yaml.safe_dump({
        "name": "early", "trainable": "mytrain:run", "metrics": {"primary": {"name": "score", "mode": "max"}},
        "baseline": {"mode": "ok", "epochs": 2, "sleep": 0.0, "hp": 1.0},
        "components": {"a": {"kind": "training", "description": "a", "removal": {"hp": 2.0}}},
        "seeds": [0], "tracking": {"wandb": {"mode": "disabled"}}, "tuning": {"enabled": False}}))
    study = Study(root / "studies" / "early")
    for moment, args in [("entry", ("launch", "study.yaml")), ("ray", ("launch", "study.yaml")),
                         ("entry", ("resume", str(study.path))), ("ray", ("resume", str(study.path)))]:
        ended = _sigterm_at(root, moment, *args)
        said = ended.stdout + ended.stderr
        assert ended.returncode == 143, (moment, args, said)
        assert "interrupted by SIGTERM" in ended.stderr and "Traceback" not in said, said
        hint = "`ablator resume DIR`" if moment == "entry" else f"`ablator resume {study.path}`"
        assert hint in said, (moment, args, said)
    assert not any(r.attempts for r in study.records())  # stopped before any trial began
    resumed = subprocess.run([str(BIN / "ablator"), "resume", str(study.path), "--no-dashboard", "--ray-temp-dir",
                              short_tmp("rt_")], cwd=root, env=env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert [r.state for r in study.records()] == ["COMPLETED"] * 2


def test_sigterm_while_the_trainable_module_imports_is_an_interruption_not_a_config_error(tmp_path):
    """The study file's check imports the trainable: a stop signal then is the user's, not the module's failure."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "slowtrain.py").write_text(f"from pathlib import Path\nimport time\n\nPath({str(root / 'importing')!r})"
                                       ".touch()\ntime.sleep(120)\n\n\ndef run(ctx):\n    pass\n")
    (root / "study.yaml").write_text(yaml.safe_dump({
        "name": "slow", "trainable": "slowtrain:run", "metrics": {"primary": {"name": "score", "mode": "max"}},
        "baseline": {"hp": 1.0}, "components": {"a": {"kind": "training", "description": "a", "removal": {"hp": 2.0}}},
        "seeds": [0], "tracking": {"wandb": {"mode": "disabled"}}, "tuning": {"enabled": False}}))
    proc = subprocess.Popen([str(BIN / "ablator"), "launch", "study.yaml", "--dry-run"], cwd=root, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120  # a liveness bound, not a speed claim
        while not (root / "importing").exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, out + err
    assert "interrupted by SIGTERM" in err and "cannot import" not in err and "Traceback" not in out + err, out + err
