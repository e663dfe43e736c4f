"""A real study on Ray with W&B offline: the written run files agree with the ledger."""

from __future__ import annotations

import subprocess

import pytest
from rich.console import Console

from orchestrator.session import launch
from orchestrator.tracking.offline import read_runs
from tests.conftest import REPO, on_cluster, write_study

#: every test here starts Ray or a subprocess: not in the quick loop (`pytest -m "not slow"`)
pytestmark = pytest.mark.slow


def test_offline_runs_match_the_ledger_and_a_restarted_trial_is_one_run(ray_cluster, tmp_path):
    config = write_study(tmp_path, REPO / "tests/faulty.yaml", name="tracked",
                         tracking={"wandb": {"mode": "offline", "project": "tracked-test"}})
    study = launch(config, console=Console(quiet=True))
    records = {r.trial_id: r for r in study.records()}
    runs = read_runs(study.path / "wandb")
    by_name = {}
    for run_id, pieces in runs.items():
        for piece in pieces:
            by_name.setdefault(piece.name, set()).add(run_id)
    # one run per trial (restarted ones included), plus the study's analysis run
    for tid, rec in records.items():
        assert len(by_name[f"{rec.variant}-seed{rec.seed}"]) == 1, tid
    assert len(runs) == len(records) + 1
    for pieces in runs.values():
        run = pieces[-1]
        assert run.project == "tracked-test" and run.group == study.study_id
        if run.job_type == "analysis":
            continue
        assert run.job_type == "ablation"
        rec = records[f"{run.config['variant']}-seed{run.config['seed']}"]
        assert run.config["git_commit"] == study.read_provenance()["git"]["commit"]
        steps = [s for p in pieces for s in p.steps]
        ledger_steps = [row["step"] for row in study.history(rec.trial_id)]
        assert sorted(set(steps)) == ledger_steps and len(steps) == len(set(steps))
        if rec.state == "COMPLETED":
            assert run.summary["final/score"] == pytest.approx(rec.final["score"])
        assert run.summary["attempts"] == rec.attempts
        assert any(tag == f"removed:{c}" for c in rec.removed for tag in run.tags) or not rec.removed


def test_driver_sigkill_then_resume_gives_one_run_per_trial_with_no_step_twice(tmp_path, ray_address):
    """A real driver with W&B offline is SIGKILLed mid-study (its wandb-core with it), then
    `ablator resume`: every trial has one run id, its whole history, and no step twice."""
    from orchestrator.ledger import Study
    from orchestrator.tracking import payload as P
    from orchestrator.tracking.offline import absolute_links
    from tests.test_driver_crash import ABLATOR, _env, launch_then_kill

    config = write_study(tmp_path, REPO / "tests/faulty.yaml", name="tracked-crash",
                         baseline={"train": {"epochs": 6, "sleep": 0.4}, "fault": {"mode": "none", "epoch": 99}},
                         seeds=[0, 1, 2], tracking={"wandb": {"mode": "offline"}},
                         resources={"max_concurrent": 2})  # the same on any core count
    study = Study(tmp_path / "studies" / "tracked-crash")

    def ready(records) -> bool:  # a trial still running has its W&B run open: the resume must continue it
        open_ids = {P.run_id(study.study_id, r.trial_id, r.started_at) for r in records
                    if r.state == "RUNNING" and r.started_at}
        dirs = [d.name for d in (study.path / "wandb").glob("offline-run-*")] if study.exists() else []
        done = sum(r.state == "COMPLETED" for r in records)
        return done >= 3 and any(f"-{i}-" in f"{d}-" for d in dirs for i in open_ids)

    launch_then_kill(config, study, ready)
    assert not (study.path / "wandb_pending.json").exists()  # killed: no list, the ledger says it

    resumed = subprocess.run([*ABLATOR, "resume", str(study.path), *on_cluster(ray_address)], cwd=REPO, env=_env(),
                             capture_output=True, text=True, timeout=400, check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    records = {r.trial_id: r for r in study.records()}
    assert len(records) == 12 and all(r.state == "COMPLETED" for r in records.values())
    runs = read_runs(study.path / "wandb")
    expected = {P.run_id(study.study_id, tid, r.started_at): tid for tid, r in records.items()}
    assert set(runs) == set(expected) | {P.analysis_run_id(study.study_id)}  # one run per trial
    resumed_runs = 0
    for run_id, tid in expected.items():
        segments = runs[run_id]
        steps = [s for seg in segments for s in seg.steps]
        assert steps == [row["step"] for row in study.history(tid)] == list(range(6)), (tid, steps)
        assert segments[-1].summary["state"] == "COMPLETED" and segments[-1].exit_code == 0
        assert segments[-1].summary["attempts"] == records[tid].attempts
        resumed_runs += len(segments) > 1
    assert resumed_runs >= 1  # some run was continued by the second driver
    assert absolute_links(study.path) == []
    assert not (study.path / "wandb_pending.json").exists()
