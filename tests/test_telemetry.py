"""The study in Ray's metrics export and Jobs view, on a real Ray head with a metrics port."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from orchestrator.execution.telemetry import EXPORTED, failure_kind
from orchestrator.ledger import Study
from tests.conftest import REPO, free_port, ray_head, write_study

BOARD = REPO / "launch/monitoring/grafana-ablator.json"


def test_grafana_board_uses_only_metrics_the_code_emits_and_all_of_them():
    board = json.loads(BOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    used = {re.sub(r"_(bucket|sum|count)$", "", name) for e in exprs for name in re.findall(r"ray_ablator_\w+", e)}
    assert used == set(EXPORTED.values())
    assert board["uid"] and {v["name"] for v in board["templating"]["list"]} == {"datasource", "study"}


@pytest.mark.parametrize("error, kind", [
    ("RuntimeError: injected failure", "exception"),
    ("the worker running this attempt died (process killed, out of memory or node lost)", "worker_died"),
    ("timed out after 30 s", "timeout"),
    ("stalled: no report for 60 s", "timeout"),
    ("killed: out of memory on node-3", "oom"),
])
def test_failure_kinds(error, kind):
    assert failure_kind(error) == kind


def _scrape(port: int) -> dict[tuple, float]:
    """The study's series on a node's metrics port: (name, sorted labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    keep = ("study", "stage", "state", "kind", "variant", "seed")
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("ray_ablator_") and s.labels.get("study") == "telemetry":
                out[s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k in keep))] = s.value
    return out


def _value(series: dict, name: str, **labels) -> float:
    return sum(v for (n, ls), v in series.items()
               if n == name and all(dict(ls).get(k) == want for k, want in labels.items()))


@pytest.fixture
def metrics_head():
    """A Ray head with a metrics export port, exporting every second."""
    port = free_port()
    with ray_head("--num-cpus=2", f"--metrics-export-port={port}",
                  env={"RAY_metrics_report_interval_ms": "1000"}) as head:
        yield {**head, "metrics": port}


@pytest.mark.slow
def test_study_metrics_and_job_metadata_reach_the_cluster(metrics_head, tmp_path):
    """Ablation, then tuning and its confirmation: every stage's trials reach progress, W&B (offline runs)
    and telemetry through the session's one trial-update hook; report.md and report.html agree."""
    faulty = yaml.safe_load((REPO / "tests/faulty.yaml").read_text())
    path = write_study(tmp_path, faulty, name="telemetry",  # a trial that restarts, one whose worker dies
                       baseline={**faulty["baseline"], "train": {"epochs": 4, "sleep": 0.5}},
                       components={k: v for k, v in faulty["components"].items() if k != "broken"},
                       tracking={"wandb": {"mode": "offline"}},
                       tuning={"enabled": True, "n_trials": 2, "confirm_seeds": [0], "trial_seed": 0,
                               "search_space": {"fault.epoch": {"value_range": [2, 3], "value_type": "int"}}})
    driver = subprocess.Popen(
        [sys.executable, "-c", "from orchestrator.cli import app; app()", "launch", str(path),
         "--address", metrics_head["address"]],
        cwd=REPO, env=metrics_head["env"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen_while_running: dict = {}
    while driver.poll() is None:
        try:
            # each series' last value seen: on a loaded machine one scrape may miss a gauge the driver
            # still refreshes (it is re-set every half export interval), the next one has it again
            seen_while_running.update(_scrape(metrics_head["metrics"]))
        except OSError:
            pass
        time.sleep(1)
    output = driver.stdout.read()
    assert driver.returncode == 0, output[-3000:]
    # the last scrape while the driver lived (it waits one export interval before it exits), with one
    # taken just after: gauges of a driver that is gone age out of Ray's metrics agent, counters stay
    last = {**seen_while_running, **_scrape(metrics_head["metrics"])}
    study = Study(tmp_path / "studies/telemetry")
    records = study.records()
    # the tuning stage's trials went through the same hook: telemetry, progress, W&B
    tuned = sorted(r.trial_id for r in records if r.purpose == "search")
    confirmed = sorted(r.trial_id for r in records if r.purpose == "confirmation")
    assert tuned == ["tune-0000", "tune-0001"] and len(confirmed) == 1, (tuned, confirmed)
    assert all(r.state == "COMPLETED" for r in records)
    for stage, n in (("ablation", 6), ("tuning", 3)):  # finished trials by stage (tuning: 2 search, 1 confirmation)
        assert _value(last, "ray_ablator_trial_duration_seconds_count", stage=stage) == n, stage
    best = json.loads((study.path / "tuning" / "results.json").read_text())["best"]
    assert "[tuning] done 2/2" in output and "[confirmation] done 1/1" in output, output[-3000:]
    from orchestrator.tracking.offline import read_runs

    run_trials = {run.config.get("trial_id") for runs in read_runs(study.path / "wandb").values() for run in runs}
    assert {r.trial_id for r in records} <= run_trials, sorted(run_trials - {None})
    # one writer: report.md has the tuning section once, after the verdicts; report.html renders that text
    md, page = (study.path / "report.md").read_text(), (study.path / "report.html").read_text()
    assert md.count("## Tuning") == 1 and md.index("## Verdicts") < md.index("## Tuning")
    assert f"Best trial `{best['trial_id']}`" in md
    assert page.count("<h2>Tuning</h2>") == 1 and f"Best trial <code>{best['trial_id']}</code>" in page
    for component in ("flaky", "crash"):
        row = next(ln for ln in md.splitlines() if ln.startswith(f"| {component} |"))
        verdict = row.rstrip(" |").rsplit("|", 1)[1].strip()
        cells = rf"<td>{component}</td>(?:(?!</tr>).)*<td class=\"v-{verdict}\">{verdict}</td>"
        assert re.search(cells, page, re.S), row
    ablation = [r for r in records if r.stage == "ablation"]
    assert _value(last, "ray_ablator_trial_restarts_total", stage="ablation") == \
        sum(r.attempts - 1 for r in ablation) == 4
    assert _value(last, "ray_ablator_trial_failures_total", kind="exception", stage="ablation") == 2
    assert _value(last, "ray_ablator_trial_failures_total", kind="worker_died", stage="ablation") == 2
    from ray.job_submission import JobSubmissionClient

    jobs = JobSubmissionClient(metrics_head["dashboard"]).list_jobs()
    meta = next(j.metadata for j in jobs if (j.metadata or {}).get("ablator_study") == "telemetry")
    study = Study(tmp_path / "studies/telemetry")
    assert meta["ablator_study_id"] == study.study_id
    assert meta["ablator_dir"] == str(study.path.resolve())
    from ray.util.state import list_tasks

    names = {t.name for t in list_tasks(address=metrics_head["dashboard"], limit=10000, raise_on_missing_output=False)}
    assert {"telemetry/ablation/baseline/seed0/attempt1", "telemetry/ablation/no-flaky/seed1/attempt2",
            "telemetry/ablation/no-crash/seed0/attempt2"} <= names, sorted(names)
    # gauges last (counters and histograms above): the trial counts and each ablation trial's metric
    assert _value(last, "ray_ablator_trials", state="COMPLETED", stage="ablation") == 6
    assert _value(last, "ray_ablator_trials", state="FAILED") == 0
    for r in ablation:
        assert _value(last, "ray_ablator_primary_metric", variant=r.variant, seed=str(r.seed)) == \
            pytest.approx(r.final["score"])
