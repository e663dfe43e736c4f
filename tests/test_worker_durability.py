"""What a trial's worker writes without fsync stays safe: the study index's worker lines and the
metrics lines a checkpoint carries.

The attempts run through the worker's own `run_attempt`, in this process or in a child that a real
SIGKILL ends (no Ray: Ray only carries the call). A power loss cannot be caused in a test: where
one is meant, the test cuts a file back to what was fsynced, which is what a power loss may leave.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.execution.runner import prepare
from orchestrator.execution.worker import WORKER_DIED, Attempt, run_attempt
from orchestrator.ledger import COMPLETED, PENDING, RUNNING, Study, TrialStore
from orchestrator.ledger.records import index_view
from orchestrator.plan import TrialSpec
from orchestrator.trial import CARRIED_ROWS, TrialContext

TRAINABLE = '''
import time

def run(ctx):
    study = ctx.trial_dir.parents[1]
    with open(study / "runs.txt", "a") as fh:
        fh.write(f"{ctx.trial_id} {ctx.attempt}\\n")
    state = ctx.restore()
    for epoch in range(0 if state is None else state["epoch"] + 1, ctx.config["epochs"]):
        ctx.report({"score": float(epoch)}, checkpoint={"epoch": epoch})
        if ctx.attempt == 1 and epoch == ctx.config.get("hang_at"):
            (study / "hanging").touch()
            time.sleep(600)
'''


@pytest.fixture
def project(tmp_path) -> tuple[Path, Study]:
    """A project with the trainable and a study of 3 PENDING trials (written by the driver's code)."""
    (tmp_path / "trainable_w.py").write_text(TRAINABLE)
    study = Study.create(tmp_path / "studies" / "s", yaml.safe_dump({"name": "s"}), "s")
    specs = [TrialSpec(trial_id=f"t{i}", stage="ablation", variant="baseline", removed=(), seed=i) for i in range(3)]
    assert prepare(study, specs) == specs
    return tmp_path, study


def attempt(project: Path, study: Study, trial_id: str, number: int = 1, **config) -> Attempt:
    spec = {"trial_id": trial_id, "variant": "baseline", "seed": int(trial_id[1:]), "removed": [],
            "stage": "ablation", "purpose": "variant"}
    return Attempt(str(study.path), spec, {"epochs": 3, **config}, "trainable_w:run", str(project), 1, number)


def runs(study: Study) -> list[str]:
    path = study.path / "runs.txt"
    return path.read_text().splitlines() if path.exists() else []


def agrees(study: Study) -> None:
    """The index, replayed afresh, holds every trial as its record.json does (what doctor checks)."""
    fresh = Study(study.path)
    replayed = fresh.index.records()
    assert fresh.index.problems == []
    for path in study.trial_dirs():
        on_disk = study.trial(path.name).read()
        assert index_view(replayed[path.name].to_json()) == index_view(on_disk.to_json()), path.name


def test_a_trial_whose_index_lines_a_power_loss_took_is_not_run_again(project):
    root, study = project
    synced = study.index.path.stat().st_size  # the driver's PENDING lines: fsynced
    done = run_attempt(attempt(root, study, "t0"))
    assert done.state == COMPLETED and runs(study) == ["t0 1"]
    lines = study.index.path.read_bytes()[synced:].splitlines()
    assert [json.loads(ln).get("fresh_record") for ln in lines] == [True, True]  # whole records, not changes
    os.truncate(study.index.path, synced)  # the worker's unsynced lines lost (as a power loss may)
    assert Study(study.path).states()["t0"] == PENDING
    todo = prepare(Study(study.path), [TrialSpec(trial_id="t0", stage="ablation", variant="baseline", removed=(),
                                                 seed=0)])
    assert [s.trial_id for s in todo] == ["t0"]  # the index says unfinished: resume dispatches it
    again = run_attempt(attempt(root, study, "t0", number=2))
    assert runs(study) == ["t0 1"]  # record.json said COMPLETED: the trainable did not run again
    assert (again.state, again.attempts, again.final) == (COMPLETED, 1, done.final)
    assert Study(study.path).states()["t0"] == COMPLETED
    agrees(study)


def test_a_torn_index_line_is_cut_by_the_next_writer_and_kept_beside(project):
    root, study = project
    run_attempt(attempt(root, study, "t0"))
    size = study.index.path.stat().st_size
    os.truncate(study.index.path, size - 20)  # the worker's last line torn (a crash mid-write)
    torn = study.index.path.read_bytes()[-30:]
    run_attempt(attempt(root, study, "t1"))  # the next attempt's first line cuts it
    text = study.index.path.read_text()
    assert all(json.loads(ln) for ln in text.splitlines())  # every line parses: nothing glued to the tear
    assert torn in (study.path / "index.jsonl.torn").read_bytes()
    states = Study(study.path).states()
    assert states["t1"] == COMPLETED and states["t0"] == RUNNING  # t0's end was the torn line: it runs again
    run_attempt(attempt(root, study, "t0", number=2))
    assert runs(study) == ["t0 1", "t1 1"]  # ... and is returned as it ended, not re-run
    agrees(study)


@pytest.mark.slow
def test_a_killed_worker_then_a_power_loss_loses_no_step(project):
    """A real SIGKILL of the process running an attempt (after two reports with checkpoints);
    then metrics.jsonl loses both lines, which were never fsynced (as a power loss may leave
    it). The next attempt records the death, appends the lines the checkpoint carried, and
    completes; the index agrees with record.json."""
    root, study = project
    code = ("import sys; sys.path.insert(0, sys.argv[1]);"
            "from tests.test_worker_durability import attempt; from orchestrator.ledger import Study;"
            "from orchestrator.execution.worker import run_attempt; from pathlib import Path;"
            "run_attempt(attempt(Path(sys.argv[2]), Study(sys.argv[3]), 't2', hang_at=1))")
    repo = str(Path(__file__).resolve().parent.parent)
    proc = subprocess.Popen([sys.executable, "-c", code, repo, str(root), str(study.path)], cwd=root)
    try:
        deadline = time.monotonic() + 120
        while not (study.path / "hanging").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the attempt did not start"
            time.sleep(0.1)
        assert Study(study.path).states()["t2"] == RUNNING
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    store = study.trial("t2")
    assert [r["step"] for r in store.history()] == [0, 1]
    os.truncate(store.metrics_path, 0)
    record = run_attempt(attempt(root, study, "t2", number=2))
    assert record.state == COMPLETED and record.attempts == 2 and record.errors[-1].error == WORKER_DIED
    assert [(r["step"], r["attempt"]) for r in store.history()] == [(0, 1), (1, 1), (2, 2)]
    assert runs(study) == ["t2 1", "t2 2"]
    agrees(study)


def test_a_checkpoint_carries_the_metrics_lines_not_yet_fsynced(tmp_path):
    store = TrialStore(tmp_path / "t")
    store.path.mkdir()
    ctx = TrialContext({}, 0, store)
    ctx.report({"loss": 1.0}, checkpoint={"epoch": 0})
    ctx.report({"loss": 0.9}, checkpoint={"epoch": 1})
    assert [r["step"] for r in store.load_checkpoint()["rows"]] == [0, 1]
    ctx.report({"loss": 0.8})  # no checkpoint: this line is fsynced, and every line before it
    ctx.report({"loss": 0.7}, checkpoint={"epoch": 3})
    assert [r["step"] for r in store.load_checkpoint()["rows"]] == [3]
    for epoch in range(4, 4 + CARRIED_ROWS + 5):
        ctx.report({"loss": 0.1}, checkpoint={"epoch": epoch})
        assert len(store.load_checkpoint()["rows"]) <= CARRIED_ROWS
    restarted = TrialContext({}, 0, TrialStore(store.path), attempt=2)
    os.truncate(store.metrics_path, 0)  # every line lost (as a power loss may leave the file)
    assert restarted.restore() == {"epoch": 4 + CARRIED_ROWS + 4}
    # step 3 + CARRIED_ROWS found the checkpoint full and fsynced the file: the lines after it come back
    assert [r["step"] for r in store.history()] == list(range(4 + CARRIED_ROWS, 4 + CARRIED_ROWS + 5))
