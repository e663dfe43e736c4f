"""What each verdict cost, in every place a user looks: verdicts.json, report.md, `ablator status` and the W&B
summary agree, every trial's hours are shared among the rows by the stated rule, and adaptive seeds report
their saving against fixed seeds at max. No Ray: the records of a simulated adaptive study (the session's
own adaptive loop, trials from the formula, 60 s each)."""

from __future__ import annotations

import io
import json
import subprocess

import pytest
import yaml
from rich.console import Console

from orchestrator.analysis.stats import DECIDED
from orchestrator.config import parse_config
from orchestrator.ledger import Study
from orchestrator.session.report import write_report
from orchestrator.tracking.payload import verdicts_summary
from tests.conftest import BIN
from tests.support.simulated import run_adaptive, simulated_config


def test_cost_per_decided_row_and_the_saving_against_fixed_seeds(tmp_path):
    cfgd = simulated_config({"a": 2.0, "b": 0.0, "c": 0.3}, 0.5, 3, min_effect=0.5)
    cfgd["seeds"] = {"initial": 3, "max": 8}
    cfgd["analysis"]["n_bootstrap"] = 200
    records = run_adaptive(parse_config(cfgd))
    study = Study.create(tmp_path / "s", yaml.safe_dump(cfgd, sort_keys=False), cfgd["name"])
    for r in records:
        study.trial(r.trial_id).write(r)
    verdicts = write_report(study.path, Console(file=io.StringIO()))
    cost = verdicts.cost
    hours = sum(r.duration_s for r in records) / 3600
    assert cost.unit == "worker-hours" and cost.hours == pytest.approx(hours) and cost.trials == len(records)
    decided = [c for c, r in verdicts.components.items() if r.verdict in DECIDED]
    assert 0 < cost.decided == len(decided) < cost.rows_total == 3  # c (0.3, within min_effect 0.5) stays open
    assert cost.hours_per_decided == pytest.approx(hours / len(decided))
    assert sum(r.hours for r in cost.rows) == pytest.approx(hours)  # the baseline's hours shared, none lost
    assert sum(r.trials for r in cost.rows) == pytest.approx(len(records))
    # fixed seeds at max: 4 variants x 8 seeds x 60 s
    assert cost.fixed_hours == pytest.approx(4 * 8 * 60 / 3600) and len(records) < 4 * 8
    assert cost.saving == pytest.approx(1 - hours / cost.fixed_hours) and cost.saving > 0
    open_rows = [r for r in cost.rows if not r.decided]
    assert all(r.more_seeds == r.seeds_needed - r.n for r in open_rows if r.seeds_needed)
    assert cost.budget is None

    doc = json.loads((study.path / "verdicts.json").read_text())
    assert doc["cost"]["hours_per_decided"] == pytest.approx(cost.hours_per_decided)
    md = (study.path / "report.md").read_text()
    assert f"**{cost.hours_per_decided:.3g} worker-hours per decided row**" in md
    assert f"adaptive seeds saved **{cost.saving:.0%}**" in md
    summary = verdicts_summary(verdicts)
    assert summary["cost/hours_per_decided"] == cost.hours_per_decided
    assert summary["cost/saving_vs_fixed"] == cost.saving and summary["cost/budget_reached"] is None
    status = subprocess.run([str(BIN / "ablator"), "status", str(study.path), "--json"], capture_output=True,
                            text=True, check=False)
    assert status.returncode == 0, status.stderr
    line = json.loads(status.stdout)["cost"]
    assert f"{cost.hours_per_decided:.3g} worker-hours per decided row" in line and f"{cost.saving:.0%} saved" in line
