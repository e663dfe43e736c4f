"""The ablation stage end to end on a real local Ray cluster: plan, restarts, ledger, reruns."""

from __future__ import annotations

import os

import pytest
from rich.console import Console

from orchestrator.config import load_config
from orchestrator.errors import StudyLocked
from orchestrator.execution.runner import TrialExecutor, prepare
from orchestrator.ledger import FAILED, Study
from orchestrator.plan import TrialSpec
from orchestrator.session import launch
from tests.conftest import REPO, write_study

#: every test here starts Ray or a subprocess: not in the quick loop (`pytest -m "not slow"`)
pytestmark = pytest.mark.slow

QUIET = Console(quiet=True)


@pytest.fixture(scope="module")
def faulty_study(ray_cluster, tmp_path_factory):
    """The faulty study run once: baseline plus three variants that fail in different ways."""
    tmp = tmp_path_factory.mktemp("faulty")
    path = write_study(tmp, REPO / "tests/faulty.yaml")
    study = launch(path, console=QUIET)
    return study, {r.trial_id: r for r in study.records()}


def test_raise_at_epoch_2_resumes_from_epoch_1_checkpoint(faulty_study):
    study, records = faulty_study
    for seed in (0, 1):
        rec = records[f"no-flaky-seed{seed}"]
        assert rec.state == "COMPLETED"
        assert rec.attempts == 2
        assert "injected failure at epoch 2" in rec.errors[0].error
        assert "RuntimeError" in rec.errors[0].traceback
        history = study.history(rec.trial_id)
        assert [row["step"] for row in history] == [0, 1, 2, 3]
        # epochs 0-1 come from attempt 1; the restart began at epoch 2, not 0
        assert [row["attempt"] for row in history] == [1, 1, 2, 2]
        assert history[-1]["started_at_epoch"] == 2


def test_always_failing_trial_is_failed_after_max_failures_and_others_complete(faulty_study):
    _, records = faulty_study
    for seed in (0, 1):
        rec = records[f"no-broken-seed{seed}"]
        assert rec.state == "FAILED"
        assert rec.attempts == 3  # first attempt + max_failures (2) restarts
        assert len(rec.errors) == 3
        assert all("injected failure" in e.error for e in rec.errors)
    others = [r for tid, r in records.items() if "broken" not in tid]
    assert len(others) == 6 and all(r.state == "COMPLETED" for r in others)
    assert all(r.final["score"] > 0 for r in others)


def test_worker_killed_with_sigkill_restarts_from_checkpoint(faulty_study):
    study, records = faulty_study
    for seed in (0, 1):
        rec = records[f"no-crash-seed{seed}"]
        assert rec.state == "COMPLETED"
        assert rec.attempts == 2
        assert "worker" in rec.errors[0].error and "died" in rec.errors[0].error
        history = study.history(rec.trial_id)
        assert [row["step"] for row in history] == [0, 1, 2, 3]
        assert history[-1]["started_at_epoch"] == 2


def test_a_worker_ended_by_sigterm_has_died_and_its_trial_restarts_from_checkpoint(ray_cluster, tmp_path):
    path = write_study(tmp_path, REPO / "tests/faulty.yaml", name="drained", seeds=[0], components={
        "term": {"kind": "training", "description": "its worker gets SIGTERM at epoch 2 on the first attempt",
                 "removal": {"fault.mode": "sigterm_once"}}})
    study = launch(path, console=QUIET)
    rec = {r.trial_id: r for r in study.records()}["no-term-seed0"]
    assert rec.state == "COMPLETED" and rec.attempts == 2
    # Ray ends its worker by raising SystemExit in the trial: the worker died, the trial did not fail
    assert rec.errors[0].error.startswith("the worker running this attempt died"), rec.errors
    assert study.history(rec.trial_id)[-1]["started_at_epoch"] == 2


def test_ledger_holds_plan_provenance_and_every_trial(faulty_study):
    study, records = faulty_study
    plan = study.read_plan()
    assert len(plan["trials"]) == 8 == len(records)
    prov = study.read_provenance()
    assert prov["python"] and prov["packages"]["torch"] and prov["host"] and prov["cpu"]["count"] >= 1
    assert "commit" in prov["git"]
    baseline = records["baseline-seed0"]
    assert baseline.final == {"score": pytest.approx(1.3), "started_at_epoch": 0.0}
    assert baseline.data_fingerprints["train"]["n"] == 2
    assert study.info["stages"]["ablation"]["state"] == "completed"


def test_variants_rerun_only_those_and_reuse_the_rest(faulty_study, tmp_path):
    study, before = faulty_study
    config_path = study.path / "config.yaml"
    launch(config_path, variants=["no-flaky"], console=QUIET)
    after = {r.trial_id: r for r in study.records()}
    for tid, rec in after.items():
        if tid.startswith("no-flaky-"):
            assert rec.ended_at > before[tid].ended_at
            assert rec.state == "COMPLETED"
        elif rec.state == "COMPLETED":
            assert rec.ended_at == before[tid].ended_at, f"{tid} was re-run"
    # FAILED trials stay FAILED unless asked (`ablator resume --retry-failed`)
    assert after["no-broken-seed0"].attempts == 3


def test_second_driver_on_the_same_study_is_refused(faulty_study):
    study, _ = faulty_study
    with study.lock(), pytest.raises(StudyLocked, match="already being run"):
        launch(study.path / "config.yaml", console=QUIET)


def test_quickstart_end_to_end(ray_cluster, tmp_path):
    path = write_study(tmp_path, REPO / "configs/quickstart.yaml",
                       tracking={"wandb": {"mode": "disabled"}}, tuning={"enabled": False})
    study = launch(path, console=QUIET)
    records = Study(study.path).records()
    assert len(records) == 18
    for rec in records:
        assert rec.state == "COMPLETED" and rec.attempts == 1
        assert 0 <= rec.final["val_acc"] <= 1
        assert len(study.history(rec.trial_id)) == 30
    acc = {r.trial_id: r.final["val_acc"] for r in records}
    # the hidden layers are what make the spirals separable
    assert all(acc[f"no-hidden_layers-seed{s}"] < acc[f"baseline-seed{s}"] - 0.1 for s in range(3))
    assert (study.path / "report.md").exists() and (study.path / "verdicts.json").exists()


def test_a_trainable_that_cannot_load_on_the_workers_fails_at_once_without_restarts(ray_cluster, tmp_path):
    path = write_study(tmp_path, REPO / "tests/faulty.yaml", name="unloadable", trainable="tests.driver_only:run",
                       components={"flaky": {"kind": "training", "description": "x",
                                             "removal": {"fault.mode": "raise_once"}}})
    study = launch(path, console=QUIET)
    records = study.records()
    assert len(records) == 4 and all(r.state == "FAILED" for r in records)
    for r in records:  # a user mistake found late: one attempt, not 1 + max_failures (2)
        full = study.trial(r.trial_id).read()
        assert full.attempts == 1 and len(full.errors) == 1
        error = full.errors[0].error
        assert "cannot be loaded on" in error and "only_on_the_driver" in error
        assert full.errors[0].retryable is False


class _EndsItsProcessWhenUnpickled:
    """A config value whose unpickling ends the process: the worker dies before its attempt begins."""

    def __reduce__(self):
        return (os._exit, (1,))


def test_attempts_whose_worker_died_before_they_began_are_each_recorded(ray_cluster, tmp_path):
    """Each attempt's worker dies (for real) while receiving its task, before it could record its
    start: every attempt is counted and named, none folded into the one before (max_failures 2)."""
    path = write_study(tmp_path, REPO / "tests/faulty.yaml", name="unborn")
    config = load_config(path)
    study = Study.create(tmp_path / "studies" / "unborn", path.read_text(), "unborn")
    spec = TrialSpec(trial_id="baseline-seed0", stage="ablation", variant="baseline", removed=[], seed=0)
    assert prepare(study, [spec]) == [spec]
    executor = TrialExecutor(study, config)
    executor.submit(spec, {**config.resolved([]), "poison": _EndsItsProcessWhenUnpickled()})
    done = []
    while not done:
        done = executor.wait(1.0)
    record = study.trial(spec.trial_id).read()
    assert record.state == FAILED and record.attempts == 3, record.errors
    assert [e.attempt for e in record.errors] == [1, 2, 3]
    assert all(e.counted and "WorkerCrashedError" in e.error for e in record.errors), record.errors
