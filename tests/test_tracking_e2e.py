"""A real study on Ray with W&B offline: the written run files agree with the ledger."""

from __future__ import annotations

import pytest
from rich.console import Console

from orchestrator.session import launch
from orchestrator.tracking.offline import read_runs
from tests.conftest import REPO, write_study


def test_offline_runs_match_the_ledger_and_a_restarted_trial_is_one_run(ray_cluster, tmp_path):
    config = write_study(tmp_path, REPO / "tests/faulty.yaml", name="tracked",
                         tracking={"wandb": {"mode": "offline", "project": "tracked-test"}})
    study = launch(config, console=Console(quiet=True))
    records = {r["trial_id"]: r for r in study.records()}
    runs = read_runs(study.path / "wandb")
    by_name = {}
    for run_id, pieces in runs.items():
        for piece in pieces:
            by_name.setdefault(piece.name, set()).add(run_id)
    # one run per trial (restarted ones included), plus the study's analysis run
    for tid, rec in records.items():
        assert len(by_name[f"{rec['variant']}-seed{rec['seed']}"]) == 1, tid
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
        ledger_steps = [row["step"] for row in study.history(rec["trial_id"])]
        assert sorted(set(steps)) == ledger_steps and len(steps) == len(set(steps))
        if rec["state"] == "COMPLETED":
            assert run.summary["final/score"] == pytest.approx(rec["final"]["score"])
        assert run.summary["attempts"] == rec["attempts"]
        assert any(tag == f"removed:{c}" for c in rec["removed"] for tag in run.tags) or not rec["removed"]
