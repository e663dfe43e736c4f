"""A trial SIGKILLed mid-run and restarted ends bit-identical to an uninterrupted one (CPU).

Real Ray, real SIGKILLs: one at the start of an epoch, one while a checkpoint is being
written (after that epoch's metrics line). The variants differ from the baseline only in
where their worker dies, so every metric of every step must equal the baseline's exactly.
The same study runs with ``reproducibility.deterministic`` and ``analysis.check_determinism``.
"""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from orchestrator.session import launch
from tests.conftest import write_study

#: every test here starts Ray or a subprocess: not in the quick loop (`pytest -m "not slow"`)
pytestmark = pytest.mark.slow

STUDY = {
    "name": "restart",
    "trainable": "tests.plain_trainable:run",
    "metrics": {"primary": {"name": "loss", "mode": "min"}},
    "baseline": {"train": {"epochs": 4}, "model": {"dropout": 0.3},
                 "fault": {"kill_at_epoch": -1, "kill_in_checkpoint": -1}},
    "components": {
        "killed": {"kind": "training", "description": "its worker is SIGKILLed at the start of epoch 2",
                   "removal": {"fault.kill_at_epoch": 2}},
        "torn": {"kind": "training", "description": "its worker is SIGKILLed while writing epoch 1's checkpoint",
                 "removal": {"fault.kill_in_checkpoint": 1}},
    },
    "seeds": [0, 1],
    "fault_tolerance": {"max_failures": 2},
    "resources": {"cpus_per_trial": 1},
    "reproducibility": {"deterministic": True},
    "analysis": {"check_determinism": True},
    "tracking": {"wandb": {"mode": "disabled"}},
    "tuning": {"enabled": False},
}


@pytest.fixture(scope="module")
def restarted(ray_cluster, tmp_path_factory):
    path = write_study(tmp_path_factory.mktemp("restart"), STUDY)
    study = launch(path, console=Console(quiet=True))
    return study, {r.trial_id: r for r in study.records()}


def _steps(study, trial_id):
    return [(row["step"], row["loss"], row["noise"]) for row in study.history(trial_id)]


def test_killed_trials_end_bit_identical(restarted):
    study, records = restarted
    for seed in (0, 1):
        base = _steps(study, f"baseline-seed{seed}")
        assert [s for s, _, _ in base] == [0, 1, 2, 3]
        for variant in ("no-killed", "no-torn"):
            rec = records[f"{variant}-seed{seed}"]
            assert rec.state == "COMPLETED" and rec.attempts == 2, rec
            assert "died" in rec.errors[0].error
            assert _steps(study, rec.trial_id) == base  # every step, exactly once, every bit
            assert rec.final == records[f"baseline-seed{seed}"].final
    # the torn checkpoint: epoch 1's metrics line was written by attempt 1, then re-reported by attempt 2
    rows = [json.loads(line) for line in (study.path / "trials/no-torn-seed0/metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["attempt"]) for r in rows] == [(0, 1), (1, 1), (1, 2), (2, 2), (3, 2)]
    # different seeds really differ (the comparison above is not vacuous)
    assert _steps(study, "baseline-seed0") != _steps(study, "baseline-seed1")


def test_deterministic_mode_and_determinism_check_are_reported(restarted):
    study, records = restarted
    assert all(r.reproducibility["deterministic"] for r in records.values())
    assert all(r.reproducibility["cublas_workspace_config"] == ":4096:8" for r in records.values())
    repeat = records["baseline-seed0-repeat"]
    assert (repeat.stage, repeat.purpose) == ("ablation", "determinism")
    assert study.read_provenance()["reproducibility"] == {"deterministic": True}
    verdicts = json.loads((study.path / "verdicts.json").read_text())
    assert verdicts["reproducibility"]["deterministic"] is True
    assert verdicts["reproducibility"]["check"]["identical"] is True
    assert not [f for f in verdicts["flags"] if f["kind"] == "determinism"]
    md = (study.path / "report.md").read_text()
    assert "deterministic algorithms on" in md and "run twice, bit-identical" in md
    # identical results: exact zero differences, never an effect
    assert all(c["verdict"] == "inconclusive" and c["p"] == 1.0 for c in verdicts["components"].values())
