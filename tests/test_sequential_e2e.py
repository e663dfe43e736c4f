"""Adaptive seeds end to end through `ablator launch` from a temporary project directory (no PYTHONPATH):
a trainable of known effects, the driver SIGKILLed between two looks, `ablator resume`: the same looks
(none logged twice, no alpha spent twice), fewer trials than fixed seeds at max, and no wrong verdict."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from orchestrator.ledger import Study
from orchestrator.ledger.looks import LOOKS, read_looks
from tests.conftest import BIN, on_cluster

pytestmark = pytest.mark.slow

TRAINABLE = '''
import random
import time


def run(ctx):
    cfg = ctx.config
    time.sleep(cfg["sleep"])
    shared = random.Random(ctx.seed).gauss(0, 0.05)  # what a seed does to every variant
    own = random.Random(f"{ctx.seed}-{cfg['big']}-{cfg['bad']}-{cfg['idle']}-{cfg['near']}").gauss(0, 0.02)
    score = 1.0 + 0.5 * cfg["big"] - 0.5 * cfg["bad"] + 0.0 * cfg["idle"] + 0.1 * cfg["near"]
    ctx.report({"score": score + shared + own})
'''

STUDY = """\
name: seq
trainable: simtrain:run
metrics:
  primary: {name: score, mode: max}
baseline: {big: 1.0, bad: 1.0, idle: 1.0, near: 1.0, sleep: 1.0}
components:
  big: {kind: structural, description: helps by 0.5, removal: {big: 0.0}}
  bad: {kind: structural, description: hurts by 0.5, removal: {bad: 0.0}}
  idle: {kind: structural, description: does nothing, removal: {idle: 0.0}}
  near: {kind: structural, description: helps by exactly min_effect, removal: {near: 0.0}}
seeds: {initial: 3, max: 8}
analysis: {min_effect: 0.1, n_bootstrap: 100}
tracking: {wandb: {mode: disabled}}
tuning: {schedule: manual}
"""
RIGHT = {"big": {"essential"}, "bad": {"harmful"}, "idle": {"negligible"}, "near": {"inconclusive"}}


def ablator(cwd: Path, *args: str, **kw):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.Popen([str(BIN / "ablator"), *args], cwd=cwd, env={**env, "RAY_AUTH_MODE": "disabled"}, **kw)


def test_adaptive_seeds_resume_the_same_looks_after_sigkill_and_decide_with_fewer_trials(tmp_path, ray_address):
    project = tmp_path / "project"
    project.mkdir()
    (project / "simtrain.py").write_text(TRAINABLE)
    (project / "seq.yaml").write_text(STUDY)
    study = Study(project / "studies" / "seq")
    driver = ablator(project, "launch", "seq.yaml", *on_cluster(None), stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    try:  # kill between two looks: the first look logged, the next seed's trials under way
        deadline = time.time() + 300
        while time.time() < deadline:
            if (study.path / LOOKS).exists() and any(r.seed >= 3 for r in study.records()):
                break
            assert driver.poll() is None, "the driver ended before it could be killed"
            time.sleep(0.2)
        else:
            raise AssertionError("the study did not reach its second look in time")
    finally:
        children = psutil.Process(driver.pid).children(recursive=True) if driver.poll() is None else []
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(30)
        _, alive = psutil.wait_procs(children, timeout=15)
        for child in alive:
            child.kill()
    before = read_looks(study.path)
    assert before and before[0]["n"] == 3

    resumed = ablator(project, "resume", str(study.path), *on_cluster(ray_address), stdout=subprocess.PIPE,
                      stderr=subprocess.STDOUT, text=True)
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out

    looks = read_looks(study.path)
    assert looks[:len(before)] == before  # the looks before the kill, unchanged
    ns = [lk["n"] for lk in looks]
    assert ns == sorted(set(ns))  # no look logged twice: no alpha spent twice
    for lk in looks:  # each row's alpha spent is the design's for its seeds, at most alpha
        assert all(row["spent"] <= 0.05 + 1e-3 for row in lk["rows"]["default"].values())
    ablation = [r for r in study.records() if r.purpose == "variant"]
    assert len(ablation) < 5 * 8  # fewer trials than fixed seeds at max (5 variants x 8 seeds)
    verdicts = json.loads((study.path / "verdicts.json").read_text())
    got = {c: row["verdict"] for c, row in verdicts["components"].items()}
    assert all(got[c] in RIGHT[c] for c in RIGHT), got  # none wrong
    assert sum(v != "inconclusive" for v in got.values()) >= 3
    assert verdicts["adaptive"]["looks"] == list(range(4, 9))  # seeds from 3, looks from 4 (FIRST_LOOK)
    assert verdicts["adaptive"]["design"] == "lean" and verdicts["adaptive"]["futility"] == 0.35  # the default
    report = (study.path / "report.md").read_text()
    assert ("Sequential seeds, the `lean` design (final weight 1.5; no more seeds for a row whose chance of a "
            "decision by 8 seeds is below 0.35): a look after every seed from 4 to 8") in report
