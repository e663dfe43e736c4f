"""A study's budget, end to end through `ablator launch` from a temporary project directory (no PYTHONPATH).

Real Ray (the session's shared head), a tiny trainable written into the project. A budget reached stops the
study with its report and exit 3; `resume --budget` raises it; a driver SIGKILLed mid-batch does not make a
resumed study overshoot; bad budgets exit 2 naming the field and the line. The cost per verdict is checked in
the same studies (verdicts.json, report.md, `ablator status`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator.config import load_config, parse_config
from orchestrator.ledger import COMPLETED, Study, TrialRecord
from orchestrator.session.budget import BudgetGate
from tests.conftest import BIN, on_cluster

TRAINABLE = '''
import random
import time


def run(ctx):
    time.sleep(ctx.config["sleep"])
    y = 1.0 + ctx.config["gain"] + 0.5 * ctx.config["bias"] + random.Random(ctx.seed).gauss(0, 0.01)
    ctx.report({"score": y})
'''

STUDY = """\
name: budgeted
trainable: mytrain:run
metrics:
  primary: {{name: score, mode: max}}
baseline: {{gain: 1.0, bias: 1.0, sleep: {sleep}}}
components:
  gain: {{kind: training, description: the gain term, removal: {{gain: 0.0}}}}
  bias: {{kind: training, description: the bias term, removal: {{bias: 0.0}}}}
seeds: [0, 1, 2]
analysis: {{n_bootstrap: 200}}
resources: {{max_concurrent: 1}}
tuning: {{enabled: false}}
{budget}
"""


def project(tmp_path: Path, budget: str, sleep: float = 0.0) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "mytrain.py").write_text(TRAINABLE)
    (root / "study.yaml").write_text(STUDY.format(budget=budget, sleep=sleep))
    return root


def ablator(cwd: Path, *args: str, wait: bool = True):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    cmd = [str(BIN / "ablator"), *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=cwd, env={**env, "COLUMNS": "200"}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    return subprocess.run(cmd, cwd=cwd, env={**env, "COLUMNS": "200"}, capture_output=True, text=True,
                          timeout=600, check=False)


def completed(study: Path) -> int:
    return sum(r.state == COMPLETED for r in Study(study).records())


@pytest.mark.slow
def test_a_reached_budget_ends_with_the_report_and_exit_3_and_resume_budget_raises_it(tmp_path, ray_address):
    root = project(tmp_path, "budget: {max_trials: 5}")
    out = ablator(root, "launch", "study.yaml", *on_cluster(ray_address))
    assert out.returncode == 3, out.stdout + out.stderr
    assert "Budget reached" in out.stderr and "--budget max_trials=MORE" in out.stderr
    study = root / "studies" / "budgeted"
    records = Study(study).records()
    assert completed(study) == 5 and sum(r.state == "PENDING" for r in records) == 4
    assert all(r.gpus == 0 for r in records)  # a CPU study: the share of a GPU each trial got is recorded
    verdicts = json.loads((study / "verdicts.json").read_text())
    assert verdicts["adaptive"] is not None  # an interim look: the p-values carry the peeking adjustment
    cost = verdicts["cost"]
    assert cost["budget"] == {"kind": "max_trials", "limit": 5.0, "used": 5.0, "reached": True, "not_started": 4}
    assert cost["unit"] == "worker-hours" and cost["trials"] == 5
    assert abs(sum(r["trials"] for r in cost["rows"]) - 5) < 1e-6  # every trial shared among the rows
    report = (study / "report.md").read_text()
    assert "stopped by its budget" in report and "## Cost per verdict" in report
    undecided = [r for r in cost["rows"] if not r["decided"]]
    assert all(f"| {r['row']} | {r['verdict']} |" in report for r in undecided)
    assert all("budget:" in line for line in report.splitlines() if line.startswith("| default |")
               and "inconclusive" in line)
    dry = ablator(root, "launch", "study.yaml", "--dry-run")  # the estimate now has measured trial times
    assert dry.returncode == 0 and "Estimate: 9 trials" in dry.stdout, dry.stdout + dry.stderr
    assert "from 5 measured trials" in dry.stdout and "on 5 finished trials" in dry.stdout
    status = ablator(root, "status", str(study))
    assert status.returncode == 0 and "cost per verdict" in status.stdout and "reached" in status.stdout

    again = ablator(root, "resume", str(study), *on_cluster(ray_address))  # spent: nothing starts
    assert again.returncode == 3 and completed(study) == 5, again.stdout + again.stderr
    low = ablator(root, "resume", str(study), "--budget", "max_trials=4", *on_cluster(ray_address))
    assert low.returncode == 2 and "used 5 already" in low.stderr and "Traceback" not in low.stderr
    raised = ablator(root, "resume", str(study), "--budget", "max_trials=20", *on_cluster(ray_address))
    assert raised.returncode == 0, raised.stdout + raised.stderr
    assert completed(study) == 9
    verdicts = json.loads((study / "verdicts.json").read_text())
    assert verdicts["cost"]["budget"]["reached"] is False and verdicts["cost"]["budget"]["limit"] == 20
    assert verdicts["adaptive"] is None  # every planned seed ran: the final look of fixed seeds


@pytest.mark.slow
def test_a_budget_reached_mid_batch_is_not_overshot_after_the_driver_is_sigkilled(tmp_path, ray_address):
    root = project(tmp_path, "budget: {max_trials: 6}", sleep=1.5)
    study = root / "studies" / "budgeted"
    driver = ablator(root, "launch", "study.yaml", *on_cluster(ray_address), wait=False)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and driver.poll() is None:
            if study.exists() and completed(study) >= 3:
                break
            time.sleep(0.2)
        assert driver.poll() is None, "the driver ended before it could be killed"
        os.kill(driver.pid, signal.SIGKILL)  # a real SIGKILL: no handler runs, a trial may be left RUNNING
        driver.wait(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
    done_before = completed(study)
    assert 3 <= done_before < 6
    resumed = ablator(root, "resume", str(study), *on_cluster(ray_address))
    assert resumed.returncode == 3, resumed.stdout + resumed.stderr
    assert completed(study) == 6  # the budget counts what the killed driver finished: not overshot
    assert json.loads((study / "verdicts.json").read_text())["cost"]["budget"]["reached"] is True


@pytest.mark.slow
def test_a_trial_hours_budget_is_overshot_by_at_most_the_trial_running_when_it_is_reached(tmp_path, ray_address):
    root = project(tmp_path, "budget: {trial_hours: 0.0006}", sleep=1.0)  # 2.16 worker-seconds: a few trials
    out = ablator(root, "launch", "study.yaml", *on_cluster(ray_address))
    assert out.returncode == 3, out.stdout + out.stderr
    study = root / "studies" / "budgeted"
    records = Study(study).records()
    finished = [r for r in records if r.finished]
    assert 1 <= len(finished) < 9
    cost = json.loads((study / "verdicts.json").read_text())["cost"]
    spent = sum(r.duration_s for r in records) / 3600
    assert cost["budget"]["used"] == pytest.approx(spent) and cost["hours"] == pytest.approx(spent)
    # max_concurrent 1: when it was reached one trial ran at most, and nothing started after it
    assert spent - max(r.duration_s for r in finished) / 3600 < 0.0006
    tiny = ablator(root, "resume", str(study), "--budget", "trial_hours=0.00001", *on_cluster(ray_address))
    assert tiny.returncode == 2 and "smaller than one trial" in tiny.stderr and "Traceback" not in tiny.stderr


@pytest.mark.slow
@pytest.mark.parametrize(("budget", "field", "line"), [
    ("budget: {gpu_hours: 2}", "budget.gpu_hours", 13),
    ("budget: {max_trials: 0}", "budget.max_trials", 13),
    ("budget: {trial_hours: 0}", "budget.trial_hours", 13),
    ("budget: {}", "budget", 13),
])
def test_a_bad_budget_exits_2_naming_the_field_and_the_line(tmp_path, budget, field, line):
    root = project(tmp_path, budget)
    out = ablator(root, "launch", "study.yaml", "--dry-run")
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"study.yaml:{line}" in out.stderr and field in out.stderr and "Traceback" not in out.stderr


def test_the_gate_stops_at_the_trial_hours_spent_plus_the_running_ones(tmp_path):
    """The gate without Ray: finished trials' hours, a killed driver's partial attempt counted once."""
    config = parse_config({
        "name": "g", "trainable": "tests.support.simulated:run",
        "metrics": {"primary": {"name": "score", "mode": "max"}},
        "baseline": {"a": 1}, "components": {"a": {"kind": "training", "description": "a", "removal": {"a": 0}}},
        "budget": {"trial_hours": 1.0}})
    study = Study.create(tmp_path / "g", "name: g\n", "g")
    study.trial("t1").write(TrialRecord(trial_id="t1", state=COMPLETED, duration_s=1800))
    study.trial("t2").write(TrialRecord(trial_id="t2", duration_s=900))  # a killed attempt: PENDING again
    gate = BudgetGate(study, config, config.budget)
    assert gate.used() == pytest.approx(0.75)

    class Spec:
        trial_id = "t2"

    assert gate.may_start(Spec())
    gate.update(TrialRecord(trial_id="t2", state=COMPLETED, duration_s=1200))  # 900 s before + 300 s now
    assert gate.used() == pytest.approx((1800 + 1200) / 3600)  # the partial attempt is not counted twice
    Spec.trial_id = "t3"
    assert gate.may_start(Spec())  # 0.8333 < 1
    assert gate.used() < 1.0
    gate.update(TrialRecord(trial_id="t3", state=COMPLETED, duration_s=700))
    assert gate.used() == pytest.approx((1800 + 1200 + 700) / 3600)  # overshot by the trial running at most
    Spec.trial_id = "t4"
    assert not gate.may_start(Spec()) and gate.reached


def test_dry_run_prints_trials_and_trial_hours_as_bounds(tmp_path):
    root = project(tmp_path, "fault_tolerance: {trial_timeout: 360}")
    text = (root / "study.yaml").read_text().replace("seeds: [0, 1, 2]", "seeds: {initial: 3, max: 8}")
    (root / "study.yaml").write_text(text)
    out = ablator(root, "launch", "study.yaml", "--dry-run")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Estimate: 9..24 trials" in out.stdout  # 3 variants x 3 initial seeds .. x 8 max seeds
    assert "worker-hours: at most 2.4 " in out.stdout  # 24 trials x 0.1 h (trial_timeout), a CPU study
    assert not (root / "studies").exists()


def test_a_budget_smaller_than_one_measured_trial_exits_2_naming_the_field_and_the_line(tmp_path):
    from orchestrator.errors import ConfigError
    from orchestrator.session.budget import check_fits

    root = project(tmp_path, "budget: {trial_hours: 0.01}")
    study = Study.create(tmp_path / "s", (root / "study.yaml").read_text(), "budgeted")
    config = load_config(study.config_path, import_trainable=False)
    check_fits(study, config, config.budget)  # nothing measured yet: nothing to compare with
    study.trial("t1").write(TrialRecord(trial_id="t1", state=COMPLETED, duration_s=60))  # 0.0167 h
    with pytest.raises(ConfigError) as err:
        check_fits(study, config, config.budget)
    assert f"{study.config_path}:13  budget.trial_hours: 0.01 worker-hours is smaller than one trial" in str(err.value)
