"""Both example studies, shortened by overrides, end to end through `launch` on real Ray."""

from __future__ import annotations

import copy
import json
import math

import pytest
from rich.console import Console

from orchestrator.config import load_config
from orchestrator.session import launch
from tests.conftest import REPO, write_study

#: every test here starts Ray or a subprocess: not in the quick loop (`pytest -m "not slow"`)
pytestmark = pytest.mark.slow

QUIET = Console(quiet=True)


def _shortened(name: str, tmp_path, **baseline_changes):
    config = load_config(REPO / "configs" / f"{name}.yaml")
    baseline = copy.deepcopy(config.baseline)
    for section, values in baseline_changes.items():
        baseline[section].update(values)
    return write_study(tmp_path, REPO / "configs" / f"{name}.yaml", baseline=baseline, seeds=[0, 1],
                       tracking={"wandb": {"mode": "disabled"}}, tuning={"enabled": False})


def test_chord_heads_inference_only_ablations_train_nothing(ray_cluster, tmp_path):
    path = _shortened("chord_heads", tmp_path, data={"n_train": 32, "n_eval": 8, "n_frames": 32},
                      model={"hidden": 16}, train={"epochs": 1})
    study = launch(path, console=QUIET)
    records = {r.trial_id: r for r in study.records()}
    assert len(records) == 8 * 2 and all(r.state == "COMPLETED" for r in records.values())
    inference = {tid: r for tid, r in records.items() if r.inference_only}
    # smoothing, temperature and beam_search are inference components: 3 variants x 2 seeds
    assert {r.variant for r in inference.values()} == {"no-smoothing", "no-temperature", "no-beam_search"}
    for tid, rec in inference.items():
        assert rec.source_trial == f"baseline-seed{rec.seed}"
        assert rec.saved_s > 0
        assert not (study.trial(tid).path / "checkpoint.pt").exists()  # nothing was trained
        assert len(study.history(tid)) == 1  # one evaluation, no epochs
        assert 0 <= rec.final["mirex"] <= 1
    trained = [r for r in records.values() if not r.inference_only]
    assert len(trained) == 10
    for rec in trained:
        assert (study.trial(rec.trial_id).path / "checkpoint.pt").exists()
        assert rec.final["malformed_samples"] >= 0
    report = (study.path / "report.md").read_text()
    verdicts = json.loads((study.path / "verdicts.json").read_text())
    saved_h = sum(r.saved_s for r in inference.values()) / 3600
    duration_h = sum(r.duration_s for r in records.values()) / 3600
    assert "mirex" in report and f"| ablation | 16 | {duration_h:.3g} | 0 | 0 | {saved_h:.3g} |" in report
    assert set(verdicts["components"]) == set(load_config(path).components)


def test_digits_cnn_end_to_end(ray_cluster, tmp_path):
    path = _shortened("digits_cnn", tmp_path, data={"n_train": 200, "n_test": 100},
                      model={"channels": 8}, train={"epochs": 2})
    study = launch(path, console=QUIET)
    records = study.records()
    assert len(records) == 7 * 2 and all(r.state == "COMPLETED" for r in records)
    assert all(0 <= r.final["val_acc"] <= 1 for r in records)
    assert (study.path / "plots").is_dir() and any((study.path / "plots").glob("*.png"))


@pytest.mark.slow
def test_digits_cnn_trains_data_parallel_on_two_cpu_workers(ray_cluster, tmp_path):
    """The digits example with resources.workers_per_trial: 2 (DDP over gloo, each rank half of every batch)."""
    config = load_config(REPO / "configs" / "digits_cnn.yaml")
    baseline = copy.deepcopy(config.baseline)
    baseline["data"].update(n_train=300, n_test=100)
    baseline["model"]["channels"] = 8
    baseline["train"].update(epochs=3, lr=0.02)
    path = write_study(tmp_path, REPO / "configs" / "digits_cnn.yaml", baseline=baseline, seeds=[0, 1],
                       components={"batch_norm": config.components["batch_norm"].model_dump(exclude_defaults=True)},
                       design={"type": "one_at_a_time"}, tracking={"wandb": {"mode": "disabled"}},
                       tuning={"enabled": False}, resources={"workers_per_trial": 2, "cpus_per_trial": 0.5})
    study = launch(path, console=QUIET)
    records = study.records()
    assert len(records) == 2 * 2 and all(r.state == "COMPLETED" for r in records), [r.errors for r in records]
    for rec in records:
        assert [r["rank"] for r in rec.ranks] == [0, 1] and len({r["pid"] for r in rec.ranks}) == 2
        assert [row["step"] for row in study.history(rec.trial_id)] == [0, 1, 2]  # rank 0's reports only
        assert 0 <= rec.final["val_acc"] <= 1 and math.isfinite(rec.final["train_loss"])
        if rec.variant == "baseline":  # it learned (chance is 0.1; one worker reaches 0.36-0.49 here)
            assert rec.final["val_acc"] > 0.2, rec.final
