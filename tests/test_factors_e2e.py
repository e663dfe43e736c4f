"""A study with alternatives and factors through a real launch: Ray, the report, W&B offline, tuning."""

from __future__ import annotations

import json

import pytest
import yaml
from rich.console import Console

from orchestrator.session import launch
from orchestrator.tracking.offline import read_runs
from tests.conftest import write_study
from tests.support.simulated_factors import TRUTH, study

#: every test here starts Ray or a subprocess: not in the quick loop (`pytest -m "not slow"`)
pytestmark = pytest.mark.slow


def test_alternatives_and_factors_end_to_end(ray_cluster, tmp_path):
    config = study({"type": "one_at_a_time"}, [0, 1, 2, 3], {**TRUTH, "noise": 0.15}, min_effect=0.3)
    config["factors"].pop("model.depth")
    config["tracking"] = {"wandb": {"mode": "offline", "project": "factors-test"}}
    config["tuning"] = {"n_trials": 3, "confirm_seeds": [100, 101]}
    path = write_study(tmp_path, config)
    s = launch(path, console=Console(quiet=True))

    records = [r for r in s.records() if r.purpose == "variant"]
    assert {r.variant for r in records} == {
        "baseline", "no-norm", "no-gate", "norm=batch", "norm=rms", "norm=group",
        "width=8", "width=16", "width=64", "width=128", "act=gelu", "act=tanh"}
    assert all(r.state == "COMPLETED" for r in records) and len(records) == 12 * 4

    verdicts = json.loads((s.path / "verdicts.json").read_text())
    alts = verdicts["components"]["norm"]["alternatives"]
    assert (alts["batch"]["verdict"], alts["rms"]["verdict"]) == ("essential", "harmful")
    assert alts["rms"]["effect"] < 0 < alts["batch"]["effect"] and alts["rms"]["kind"] == "structural"
    width, act = verdicts["factors"]["model.width"], verdicts["factors"]["model.act"]
    assert width["unit"] == "per doubling" and width["ci"][0] <= 0.5 <= width["ci"][1]
    assert set(act["levels"]) == {"gelu", "tanh"} and act["levels"]["gelu"]["effect"] > 0
    assert {width["rank"], act["rank"]} == {1, 2} and width["importance"] > 0

    report = (s.path / "report.md").read_text()
    assert "### Alternatives" in report and "### Factors (ranked by importance)" in report
    plots = {p.name for p in (s.path / "plots").glob("factor_*.png")}
    assert plots == {"factor_model.width.png", "factor_model.act.png"}

    # tuning: the winning alternative is carried; the significant width factor seeds the search
    summary = json.loads((s.path / "tuning" / "results.json").read_text())
    assert "model.width" in json.dumps(summary)
    best = yaml.safe_load((s.path / "best_config.yaml").read_text())
    assert best["baseline"]["model"]["norm"] == "rms"
    assert "rms" not in best["components"]["norm"].get("alternatives", {})  # the tuned baseline is rms already
    tuned = [r for r in s.records() if r.variant == "tuned"]
    assert tuned and all(r.overrides["model.norm"] == "rms" for r in tuned)

    # W&B: the analysis run has the alternatives and factors tables; level variants are tagged
    runs = read_runs(s.path / "wandb")
    rows = [row for pieces in runs.values() for x in pieces if x.job_type == "analysis" for row in x.history]
    assert rows, {k: [x.job_type for x in p] for k, p in runs.items()}
    assert all(row["alternatives_table/nrows"] == 3 and row["factors_table/nrows"] == 2 for row in rows)
    tags = {t for p in runs.values() if p[-1].job_type == "ablation" for t in p[-1].tags}
    assert {"alt:norm=rms", "factor:model.width=64", "baseline"} <= tags
