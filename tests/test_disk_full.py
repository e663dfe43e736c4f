"""A disk that fills up in the middle of a real study: the study stops and says where, no
trial is failed for it, nothing finished is lost, and `ablator resume` finishes the study
once there is room. The disk is a real 8 MB tmpfs; the test fills it for real."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml

from orchestrator.ledger import COMPLETED, FAILED, Study
from tests.conftest import on_cluster, tmpfs
from tests.test_cluster_exec import ABLATOR, env

#: every test here starts Ray or a subprocess: not in the quick loop (`pytest -m "not slow"`)
pytestmark = pytest.mark.slow

TRAINABLE = '''
import time

import torch


def run(ctx):
    cfg = ctx.config
    state = ctx.restore()
    for epoch in range(0 if state is None else state["epoch"] + 1, cfg["epochs"]):
        time.sleep(cfg["sleep"])
        weights = torch.full((cfg["floats"],), float(epoch))  # a checkpoint of a few hundred KB
        ctx.report({"score": 1.0 + 0.1 * ctx.seed + 0.01 * epoch}, checkpoint={"epoch": epoch, "w": weights})
'''

EPOCHS = 5


def project(root, disk) -> None:
    (root / "mytrain.py").write_text(TRAINABLE)
    config = {
        "name": "full",
        "trainable": "mytrain:run",
        "metrics": {"primary": {"name": "score", "mode": "max"}},
        "baseline": {"epochs": EPOCHS, "sleep": 0.3, "floats": 50_000, "extra": 1},
        "components": {"extra": {"kind": "training", "description": "x", "removal": {"extra": 0}}},
        "seeds": [0, 1, 2, 3],
        "resources": {"max_concurrent": 1},
        "storage": {"root": str(disk)},
        "tracking": {"wandb": {"mode": "disabled"}},
        "tuning": {"enabled": False},
    }
    (root / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def fill(disk) -> None:
    """Write a file until the disk has no room left."""
    with open(disk / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass


@pytest.fixture
def small_disk(tmp_path):
    with tmpfs(tmp_path / "disk", "8m") as disk:
        yield disk


def test_a_disk_filling_up_mid_study_stops_it_cleanly_and_resume_finishes_it(tmp_path, small_disk, ray_address):
    root = tmp_path / "project"
    root.mkdir()
    project(root, small_disk)
    local = on_cluster(ray_address)
    driver = subprocess.Popen([ABLATOR, "launch", "study.yaml", *local], cwd=root, env=env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    study = Study(small_disk / "full")
    deadline = time.time() + 300
    while sum(s == COMPLETED for s in (study.states() if study.index.exists() else {}).values()) < 2:
        assert driver.poll() is None and time.time() < deadline, driver.communicate()[0]
        time.sleep(0.2)
    fill(small_disk)  # the disk is full while the third trial trains
    out = driver.communicate(timeout=300)[0]

    assert driver.returncode == 2, out
    assert "No space left on device" in out and str(small_disk) in out, out  # says what and where
    assert f"ablator resume {study.path}" in out, out
    assert "Traceback" not in out, out
    records = {r.trial_id: r for r in study.records()}
    assert not [r.trial_id for r in records.values() if r.state == FAILED]  # a full disk fails no trial
    finished = {tid for tid, r in records.items() if r.state == COMPLETED}
    assert 2 <= len(finished) < 8
    kept = {tid: (study.trial(tid).record_path.read_bytes(), study.trial(tid).metrics_path.read_bytes())
            for tid in finished}

    (small_disk / "filler").unlink()  # room again
    resumed = subprocess.run([ABLATOR, "resume", str(study.path), *local], cwd=root, env=env(),
                             capture_output=True, text=True, timeout=600, check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = Study(study.path)
    records = after.records()
    assert len(records) == 8 and all(r.state == COMPLETED for r in records)
    for tid in finished:  # finished before the disk filled: not run again, not touched
        trial = after.trial(tid)
        assert (trial.record_path.read_bytes(), trial.metrics_path.read_bytes()) == kept[tid]
    for r in records:  # valid JSON Lines; every step once in the view, none lost or shifted by the stop
        trial = after.trial(r.trial_id)
        steps = {json.loads(line)["step"] for line in trial.metrics_path.read_text().splitlines()}
        assert steps == set(range(EPOCHS)) and [row["step"] for row in trial.history()] == list(range(EPOCHS))
    assert (after.path / "report.md").exists()
