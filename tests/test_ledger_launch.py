"""The ledger under real faults on a real local Ray: a torn metrics line, a damaged record
mended by resume, and two first launches racing for one study directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from rich.console import Console

from orchestrator.ledger import COMPLETED, Study
from orchestrator.session import launch, resume
from tests.conftest import REPO, on_cluster, write_study

#: every test here starts Ray or a subprocess: not in the quick loop (`pytest -m "not slow"`)
pytestmark = pytest.mark.slow

QUIET = Console(quiet=True)

TORN = {
    "name": "torn",
    "trainable": "tests.ledger_trainables:torn_once",
    "metrics": {"primary": {"name": "score", "mode": "max"}},
    "baseline": {"train": {"epochs": 5, "sleep": 0.0, "tear_at": 3}, "extra": {"on": 1}},
    "components": {"extra": {"kind": "training", "description": "nothing really",
                             "removal": {"extra.on": 0}}},
    "seeds": [0, 1],
    "fault_tolerance": {"max_failures": 2},
    "tracking": {"wandb": {"mode": "disabled"}},
    "tuning": {"enabled": False},
}


def metric_lines(study: Study) -> dict[str, list[str]]:
    return {d.name: (d / "metrics.jsonl").read_text().splitlines() for d in study.trial_dirs()}


@pytest.fixture(scope="module")
def torn_study(ray_cluster, tmp_path_factory):
    path = write_study(tmp_path_factory.mktemp("torn"), TORN)
    return launch(path, console=QUIET)


def test_a_row_torn_by_a_dying_writer_is_cut_and_every_step_is_there_once(torn_study):
    records = {r.trial_id: r for r in torn_study.records()}
    assert len(records) == 4 and all(r.state == COMPLETED and r.attempts == 2 for r in records.values())
    for tid, lines in metric_lines(torn_study).items():
        rows = [json.loads(line) for line in lines]  # every line parses: valid JSON Lines
        assert [r["step"] for r in rows] == [0, 1, 2, 3, 4], tid  # each step once, none shifted
        assert [r["attempt"] for r in rows] == [1, 1, 1, 2, 2]
        assert [r["step"] for r in torn_study.history(tid)] == [0, 1, 2, 3, 4]
        torn = (torn_study.trial(tid).path / "metrics.jsonl.torn").read_text()
        assert '{"step": 3, "attempt": 1, "sco' in torn  # the cut bytes, kept for audit


def test_resume_reruns_only_the_trial_whose_record_is_unreadable(ray_cluster, tmp_path):
    study = launch(write_study(tmp_path, {**TORN, "name": "mend"}), console=QUIET)
    lines_before = metric_lines(study)
    records_before = {d.name: (d / "record.json").read_bytes() for d in study.trial_dirs()}
    damaged = study.trial("no-extra-seed1").record_path
    damaged.write_bytes(records_before["no-extra-seed1"][:40])  # a truncated copy
    resume(study.path, console=QUIET)
    after = {r.trial_id: r for r in Study(study.path).records()}
    assert all(r.state == COMPLETED for r in after.values())
    assert study.trial("no-extra-seed1").read().attempts == 1  # run again, from its record's start
    assert list(damaged.parent.glob("record.json.damaged-*"))
    for tid, raw in records_before.items():
        if tid != "no-extra-seed1":  # finished trials untouched
            assert study.trial(tid).record_path.read_bytes() == raw
    # no trial trained again: the re-run one resumed from its last checkpoint, past the end
    assert metric_lines(study) == lines_before


def test_two_first_launches_at_once_exactly_one_runs(tmp_path, ray_address):
    config = write_study(tmp_path, {**TORN, "name": "race", "seeds": [0],
                                    "baseline": {**TORN["baseline"],
                                                 "train": {"epochs": 3, "sleep": 2.0, "tear_at": -1}}})
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", "from orchestrator.cli import app; app()", "launch",
                               str(config), *on_cluster(ray_address)],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    loser = outs[[p.returncode for p in procs].index(2)]
    assert "is already being run by pid" in loser[1] and "Traceback" not in loser[1]
    study = Study(tmp_path / "studies" / "race")
    records = study.records()
    assert len(records) == 2 and all(r.state == COMPLETED and r.attempts == 1 for r in records)
    assert all(len(lines) == 3 for lines in metric_lines(study).values())  # each trial ran once
