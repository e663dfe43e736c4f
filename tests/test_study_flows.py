"""Study flows beyond one plain ablation: synthetic-first tiers, noise sweeps, adaptive seeds."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from orchestrator.session import launch
from tests.conftest import write_study
from tests.support.simulated import simulated_config

#: every test here starts Ray or a subprocess: not in the quick loop (`pytest -m "not slow"`)
pytestmark = pytest.mark.slow

QUIET = Console(quiet=True)


def _tiers(real_effect: float) -> dict:
    """The synthetic tier sets every effect of `a` to `real_effect`; the real tier to 3.0."""
    return {"order": [{"name": "synthetic", "overrides": {"effects.a": real_effect, "sim.epochs": 1}},
                       {"name": "real", "overrides": {"effects.a": 3.0}}],
            "min_decided": 1}


def test_real_tier_runs_only_when_the_synthetic_tier_separates_variants(ray_cluster, tmp_path):
    blind = simulated_config({"a": 0.0, "b": 0.0}, noise=0.3, seeds=3, name="blind", tiers=_tiers(0.0))
    study = launch(write_study(tmp_path, blind), console=QUIET)
    groups = {r.group for r in study.records()}
    assert groups == {"synthetic"}, "the real tier ran although the synthetic tier decided nothing"
    stage = study.info["stages"]["ablation"]
    assert stage["state"] == "stopped" and "synthetic" in stage["reason"]

    sharp = simulated_config({"a": 0.0, "b": 0.0}, noise=0.3, seeds=3, name="sharp", tiers=_tiers(3.0))
    study = launch(write_study(tmp_path, sharp), console=QUIET)
    records = study.records()
    assert {r.group for r in records} == {"synthetic", "real"}
    assert len(records) == 2 * 3 * 3
    verdicts = json.loads((study.path / "verdicts.json").read_text())
    assert verdicts["components"]["a"]["verdict"] == "essential"
    assert study.info["stages"]["ablation"]["state"] == "completed"


def test_noise_sweep_runs_the_same_ablation_at_each_value(ray_cluster, tmp_path):
    config = simulated_config({"a": 2.0, "b": 0.0}, noise=0.2, seeds=3, name="sweep",
                              sweep={"path": "sim.noise", "values": [0.1, 3.0]})
    study = launch(write_study(tmp_path, config), console=QUIET)
    records = study.records()
    assert {r.group for r in records} == {"noise=0.1", "noise=3.0"}
    assert len(records) == 2 * 3 * 3
    assert {r.overrides["sim.noise"] for r in records} == {0.1, 3.0}
    verdicts = json.loads((study.path / "verdicts.json").read_text())
    assert set(verdicts["groups"]) == {"noise=0.1", "noise=3.0"}
    assert verdicts["groups"]["noise=0.1"]["components"]["a"]["verdict"] == "essential"
    plots = {p.name for p in (study.path / "plots").glob("*.png")}
    assert any("sweep" in name for name in plots), plots


def test_adaptive_seeds_add_seeds_only_where_undecided(ray_cluster, tmp_path):
    # a: a huge effect (decided at the first look, 4 seeds); b: a medium one that needs more seeds
    config = simulated_config({"a": 20.0, "b": 1.0}, noise=0.5, name="adaptive", adaptive=(3, 6),
                              min_effect=0.3)
    study = launch(write_study(tmp_path, config), console=QUIET)
    seeds = {}
    for rec in study.records():
        assert rec.state == "COMPLETED"
        seeds.setdefault(rec.variant, set()).add(rec.seed)
    assert seeds["no-a"] == {0, 1, 2, 3}, "a decided component got more seeds"
    assert len(seeds["baseline"]) > 4 and len(seeds["baseline"]) <= 6
    assert seeds["no-b"] == seeds["baseline"], "the comparison must stay paired"
