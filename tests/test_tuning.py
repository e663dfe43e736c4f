"""The TPE tuning stage on a real local Ray cluster with real Optuna storage.

Finished ablations are written straight into the ledger (records from the simulated
trainable's own formula, verdicts.json by hand), so each test starts at the tuning stage.
The simulated trainable has a known tuning optimum: hp = hp_opt gives the full score.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from optuna.trial import TrialState
from rich.console import Console
from typer.testing import CliRunner

from orchestrator import session as study_session
from orchestrator.cli import app
from orchestrator.config import SearchSpace, parse_config
from orchestrator.ledger import COMPLETED, Study, TrialRecord, TuningInfo, read_json, write_json
from orchestrator.ledger.tuning_results import read_results
from orchestrator.ledger.verdicts_json import Comparison, Verdicts, read_verdicts, write_verdicts
from orchestrator.tuning import (
    journal_path,
    open_optuna_study,
    open_storage,
    run_tuning,
    to_distribution,
    tuning_plan,
)
from orchestrator.tuning.search import clear_stale_lock, make_sampler, repair_journal
from tests.conftest import REPO, on_cluster, short_tmp
from tests.support.simulated import clean_metrics, records_for, simulated_config

QUIET = Console(quiet=True)
ABLATOR = str(Path(sys.executable).parent / "ablator")  # the console script beside this Python
VERDICTS = {"a": "essential", "b": "harmful", "c": "inconclusive", "d": "essential"}
OPTIMUM = 10.0 + 2.0 + 0.5  # base + effects of a and d (b removed, c has none)


def sim_config(name: str, tuning: dict | None = None, **sim) -> dict:
    """Four simulated components: a, d survive (a tunes hp.x), b is harmful, c shows nothing."""
    cfg = simulated_config({"a": 2.0, "b": -1.0, "c": 0.0, "d": 0.5}, noise=0.3, seeds=[0, 1], name=name)
    cfg["baseline"]["sim"].update(sim)
    cfg["baseline"]["hp"] = {"x": 0.3, "y": 2.0, "z": 0.5, "w": 0.1}
    cfg["baseline"]["hp_opt"] = {"x": 0.7, "y": 1.0}
    comps = cfg["components"]
    comps["a"]["tune"] = {"hp.x": {"value_range": [0.0, 1.0], "value_type": "float"}}
    comps["b"]["tune"] = {"hp.z": {"value_range": [0.0, 1.0], "value_type": "float"}}
    comps["c"]["tune"] = {"hp.w": {"value_range": [0.0, 1.0], "value_type": "float"}}
    cfg["tuning"] = {"enabled": True, "n_trials": 8, "confirm_seeds": [0, 1], "trial_seed": 0,
                     "search_space": {"hp.y": {"value_range": [0.0, 3.0], "value_type": "float"}},
                     **(tuning or {})}
    cfg["tracking"] = {"wandb": {"mode": "disabled"}}
    cfg["fault_tolerance"] = {"max_failures": 0}
    return cfg


def finished_ablation(tmp_path: Path, cfg: dict, verdicts: dict | None = None, complete: bool = True,
                      state: str = "completed") -> tuple[Study, object]:
    """A study directory whose ablation stage is over: ledger records, verdicts.json, stage state."""
    cfg = {**cfg, "storage": {"root": str(tmp_path / "studies")}}
    config = parse_config(cfg)
    study = Study.create(tmp_path / "studies" / cfg["name"], yaml.safe_dump(cfg, sort_keys=False), cfg["name"])
    for rec in records_for(config):
        study.trial(rec.trial_id).write(rec)
    doc = judged(VERDICTS if verdicts is None else verdicts)
    doc.complete = complete
    write_verdicts(study.path / "verdicts.json", doc)
    study.set_stage("ablation", state)
    return study, config


def tuning_records(study: Study) -> dict[str, TrialRecord]:
    return {r.trial_id: r for r in study.records() if r.purpose == "search"}


def regret(params: dict) -> float:
    """How far the clean score of these hp values is below the known optimum."""
    cfg = {"hp": {"x": params["hp.x"], "y": params["hp.y"]}, "hp_opt": {"x": 0.7, "y": 1.0}}
    return -clean_metrics(cfg)[0] + 10.0


def test_the_tuning_benchmarks_study_is_one_the_stage_reads(tmp_path):
    """benchmarks/tuning.py builds its study by hand: it must stay one the tuning stage can read."""
    from benchmarks.tuning import ablated_study

    study, config = ablated_study(tmp_path, "bench", 4, None)
    plan = tuning_plan(config, read_verdicts(study.path / "verdicts.json"))
    assert set(plan.params) == {"hp.x", "hp.y"} and plan.params["hp.x"].verdicts == ["essential"]


# ---------------------------------------------------------------- the search space


def judged(verdicts: dict[str, str]) -> Verdicts:
    """Ablation verdicts with only the components' verdicts set (what the tuning plan reads)."""
    return Verdicts(study="sim", primary={"name": "score", "mode": "max"}, alpha=0.05, min_effect=0.0,
                    design="one_at_a_time", components={n: Comparison(method="paired", verdict=v)
                                                        for n, v in verdicts.items()})


def test_space_is_survivors_plus_global_and_removals_follow_verdicts():
    config = parse_config(sim_config("space"))
    plan = tuning_plan(config, judged(VERDICTS))
    assert set(plan.params) == {"hp.x", "hp.y"}  # a's tune space + the global one; d has none
    assert plan.params["hp.x"].sources == ["a"] and plan.params["hp.x"].verdicts == ["essential"]
    assert plan.params["hp.y"].sources == ["tuning.search_space"]
    assert plan.removed == ["b"] and plan.kept == ["a", "c", "d"]
    skipped = {p: why for p, _, why in plan.skipped}
    assert skipped == {"hp.z": "component removed", "hp.w": "verdict 'inconclusive': only survivors are tuned"}
    assert plan.overrides(config, {"hp.x": 0.5}) == {"parts.b": 0.0, "hp.x": 0.5}

    cfg = sim_config("space2", tuning={"inconclusive": "remove",
                                       "search_space": {"parts.b": {"value_range": [0, 1], "value_type": "float"}}})
    plan = tuning_plan(parse_config(cfg), judged(VERDICTS))
    assert plan.removed == ["b", "c"]
    assert set(plan.params) == {"hp.x"}  # parts.b is pinned by b's removal contract: not tuned
    assert ("parts.b", "tuning.search_space", "pinned by the removal contract of 'b'") in plan.skipped


def test_search_space_language_maps_to_optuna():
    d = to_distribution(SearchSpace(value_range=(1e-4, 1e-1), value_type="float", log=True))
    assert isinstance(d, optuna.distributions.FloatDistribution) and d.log
    d = to_distribution(SearchSpace(value_range=(0, 1), value_type="float", n_bins=5))
    assert d.step == pytest.approx(0.25)
    d = to_distribution(SearchSpace(value_range=(2, 10), value_type="int", n_bins=5))
    assert isinstance(d, optuna.distributions.IntDistribution) and d.step == 2
    d = to_distribution(SearchSpace(value_range=(1, 1000), value_type="int", log=True, n_bins=4))
    assert list(d.choices) == [1, 10, 100, 1000]
    d = to_distribution(SearchSpace(categorical_values=["relu", [1, 2]]))
    assert d.choices == ("relu", "json:[1, 2]")


# ---------------------------------------------------------------- TPE beats random search


def test_tpe_beats_random_search_on_the_simulated_objective():
    """Same budget, same seeds: TPE's best point is nearer the known optimum than random search's."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opt = {"x": 0.7, "y": 1.0, "u": 2.2, "v": 0.4}

    def objective(trial):
        hp = {k: trial.suggest_float(k, 0.0, 3.0) for k in opt}
        return clean_metrics({"hp": hp, "hp_opt": opt})[0]

    def best_regret(sampler) -> float:
        s = optuna.create_study(direction="maximize", sampler=sampler)
        s.optimize(objective, n_trials=30)
        return 10.0 - s.best_value

    seeds = range(6)
    tpe = [best_regret(make_sampler(seed, budget=30)) for seed in seeds]
    rnd = [best_regret(optuna.samplers.RandomSampler(seed=seed)) for seed in seeds]
    assert np.mean(tpe) < 0.5 * np.mean(rnd), (tpe, rnd)
    assert sum(t < r for t, r in zip(tpe, rnd)) >= 5


# ---------------------------------------------------------------- the stage on Ray


@pytest.fixture(scope="module")
def tuned(ray_cluster, tmp_path_factory):
    """One tuning stage run to its end: 12 trials, confirmation over seeds 0, 1 and 7."""
    tmp = tmp_path_factory.mktemp("tuned")
    study, config = finished_ablation(tmp, sim_config("tuned", tuning={"n_trials": 12, "confirm_seeds": [0, 1, 7]}))
    summary = run_tuning(study, config, console=QUIET)
    return study, config, summary


@pytest.mark.slow
def test_ray_path_tunes_only_survivors_and_finds_a_good_value(tuned):
    study, _config, summary = tuned
    records = tuning_records(study)
    assert sorted(records) == [f"tune-{i:04d}" for i in range(12)]
    for rec in records.values():
        assert rec.state == COMPLETED and rec.seed == 0 and rec.removed == ["b"]
        assert set(rec.tuning.params) == {"hp.x", "hp.y"}
        assert rec.overrides["parts.b"] == 0.0
    best = summary["best"]
    assert regret(best.params) < 0.5  # 200 of 200 sampler seeds get there in 12 trials
    assert best.value == max(r.final["score"] for r in records.values())
    ablation = [r for r in study.records() if r.purpose == "variant"]
    assert len(ablation) == 10 and all(r.attempts == 1 for r in ablation)  # untouched


@pytest.mark.slow
def test_optuna_storage_opens_with_load_study(tuned):
    study, config, summary = tuned
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(study.path / "tuning" / "optuna.log")))
    ostudy = optuna.load_study(study_name=config.name, storage=storage)
    assert len(ostudy.get_trials(states=(TrialState.COMPLETE,))) == 12
    assert ostudy.best_trial.user_attrs["trial_id"] == summary["best"].trial_id
    assert ostudy.direction == optuna.study.StudyDirection.MAXIMIZE
    assert open_optuna_study(study.path).best_value == summary["best"].value


@pytest.mark.slow
def test_confirmation_reuses_ablation_baselines_and_reports(tuned):
    study, _config, summary = tuned
    conf = summary["confirmation"]
    best = summary["best"].trial_id
    assert conf.baseline_trials == {"0": "baseline-seed0", "1": "baseline-seed1", "7": "confirm-baseline-seed7"}
    assert conf.tuned_trials == {s: f"confirm-{best}-seed{s}" for s in ("0", "1", "7")}
    confirm = {r.trial_id: r for r in study.records() if r.purpose == "confirmation"}
    assert set(confirm) == {f"confirm-{best}-seed{s}" for s in (0, 1, 7)} | {"confirm-baseline-seed7"}
    assert confirm[f"confirm-{best}-seed7"].removed == ["b"]
    # removing b (+1) and tuning hp toward the optimum (+~1) beat the baseline beyond noise
    assert conf.n == 3 and conf.effect > 1.0 and conf.outcome == "helped"
    results = json.loads((study.path / "tuning" / "results.json").read_text())  # the typed results, dumped
    assert json.dumps(results["confirmation"], sort_keys=True) == json.dumps(conf.model_dump(), sort_keys=True)
    assert results["best"] == summary["best"].model_dump()
    assert read_results(study.path)["confirmation"].model_dump_json() == conf.model_dump_json()

    info = study.info["stages"]["tuning"]
    assert info["state"] == "completed" and info["best"]["trial_id"] == best and info["confirmation"] == "helped"
    report = (study.path / "tuning" / "report.md").read_text()
    for needle in ("`hp.x` | float in [0, 1] | component `a` | essential",
                   "`hp.y` | float in [0, 3] | global `tuning.search_space`",
                   "| b | structural | harmful | removed (harmful: removal helps) |",
                   "| c | structural | inconclusive | kept as in the baseline, not tuned |",
                   "`hp.w` (from `c`)", "history.png", "importances.png", "optuna.load_study"):
        assert needle in report, needle
    for png in ("history.png", "importances.png"):
        assert (study.path / "tuning" / png).read_bytes()[:4] == b"\x89PNG"
    assert not (study.path / "report.md").exists()  # the study's report is the session's to write


@pytest.mark.slow
def test_best_config_is_a_launchable_study(tuned):
    study, config, summary = tuned
    best = parse_config(yaml.safe_load((study.path / "best_config.yaml").read_text()))
    assert best.name == "tuned-tuned"
    assert set(best.components) == {"a", "c", "d"}
    assert best.baseline["parts"]["b"] == 0.0
    assert best.baseline["hp"]["x"] == summary["best"].params["hp.x"]
    assert best.baseline["hp"]["y"] == summary["best"].params["hp.y"]
    assert best.tuning.search_space.keys() == config.tuning.search_space.keys()


@pytest.mark.slow
def test_more_trials_are_added_later_and_the_report_section_follows(tuned):
    study, config, _ = tuned
    run_tuning(study, config, console=QUIET)  # budget reached: nothing added
    assert len(tuning_records(study)) == 12
    summary = run_tuning(study, config, console=QUIET, n_trials=14)
    assert sorted(tuning_records(study)) == [f"tune-{i:04d}" for i in range(14)]
    assert len(open_optuna_study(study.path).get_trials(states=(TrialState.COMPLETE,))) == 14
    assert summary["n_trials"] == 14
    study_session.write_report(study.path, QUIET)
    text = (study.path / "report.md").read_text()
    assert text.count("## Tuning") == 1 and "over 14 TPE trials" in text


@pytest.mark.slow
def test_interrupted_trials_resume_from_their_checkpoint_and_finished_ones_are_told(ray_cluster, tmp_path):
    """A driver died after asking Optuna for three trials: one finished, one was mid-run, one never started."""
    study, config = finished_ablation(tmp_path, sim_config("resume", tuning={"n_trials": 4}, epochs=3))
    from orchestrator.execution.runner import new_record
    from orchestrator.plan import TrialSpec
    from orchestrator.tuning.search import create_optuna_study

    plan = tuning_plan(config, read_verdicts(study.path / "verdicts.json"))
    ostudy = create_optuna_study(study, config, plan)
    asked = [ostudy.ask(plan.distributions()) for _ in range(3)]
    for trial in asked[:2]:  # their records, as a dead driver left them
        values = plan.decode(trial.params)
        spec = TrialSpec(f"tune-{trial.number:04d}", "tuning", "tuned", ["b"], 0,
                         overrides=plan.overrides(config, values), purpose="search")
        rec = new_record(spec)
        rec.tuning = TuningInfo(number=trial.number, params=values)
        store = study.trial(spec.trial_id)
        store.write(rec)
        store.append_metrics({"step": 0, "attempt": 1, "time": time.time(), "score": 1.0})
        store.save_checkpoint({"epoch": 0})
        if trial.number == 0:
            store.update(state=COMPLETED, attempts=1, final={"score": 11.5})
        else:
            store.update(state="RUNNING", attempts=1, attempt_started=time.time())
    run_tuning(study, config, console=QUIET)
    ostudy = open_optuna_study(study.path)
    states = {t.number: t.state for t in ostudy.trials}
    assert states == {i: TrialState.COMPLETE for i in range(4)}
    assert ostudy.trials[0].value == 11.5  # told from the ledger, not re-run
    records = tuning_records(study)
    assert records["tune-0000"].attempts == 1
    mid = records["tune-0001"]
    assert mid.attempts == 2 and "died" in mid.errors[0].error
    assert [row["attempt"] for row in study.history("tune-0001")] == [1, 2, 2]  # epoch 0 kept, 1-2 resumed
    assert records["tune-0002"].tuning.params == plan.decode(asked[2].params)


@pytest.mark.slow
def test_failed_tuning_trials_are_told_fail(ray_cluster, tmp_path):
    # fail_at_epoch 0 fails every attempt (max_failures: 0); 9 is past the last epoch: no failure
    cfg = sim_config("faults", tuning={
        "n_trials": 6, "confirm_seeds": [0, 1],
        "search_space": {"hp.y": {"value_range": [0.0, 3.0], "value_type": "float"},
                         "sim.fail_at_epoch": {"categorical_values": [None, 9, 0]}}}, fail_at_epoch=None)
    study, config = finished_ablation(tmp_path, cfg)
    summary = run_tuning(study, config, console=QUIET)
    ostudy = open_optuna_study(study.path)
    records = tuning_records(study)
    assert len(ostudy.trials) == 6 and all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in ostudy.trials)
    failed = [t.number for t in ostudy.trials if t.state == TrialState.FAIL]
    assert failed, "no trial drew fail_at_epoch=0"
    for t in ostudy.trials:
        rec = records[f"tune-{t.number:04d}"]
        assert (rec.state == "FAILED") == (t.number in failed) == (rec.tuning.params["sim.fail_at_epoch"] == 0)
    assert summary["best"].params["sim.fail_at_epoch"] in (None, 9)
    assert summary["counts"]["FAIL"] == len(failed)


@pytest.mark.slow
def test_pruning_stops_tuning_trials_only(ray_cluster, tmp_path):
    # one trial at a time: each is judged against the ones before it, whatever the machine's load
    cfg = sim_config("prune", tuning={"n_trials": 10, "pruner": "median", "confirm_seeds": [0, 1], "max_concurrent": 1},
                     epochs=4)
    study, config = finished_ablation(tmp_path, cfg)
    run_tuning(study, config, console=QUIET)
    ostudy = open_optuna_study(study.path)
    records = tuning_records(study)
    pruned = [t.number for t in ostudy.trials if t.state == TrialState.PRUNED]
    assert pruned, "the median pruner stopped nothing"
    for t in ostudy.trials:
        rec = records[f"tune-{t.number:04d}"]
        assert rec.state == COMPLETED and rec.stopped_early == (t.number in pruned)
        assert len(study.history(rec.trial_id)) == (len(t.intermediate_values) if t.number in pruned else 4)
    assert any(len(study.history(f"tune-{n:04d}")) < 4 for n in pruned)
    # confirmation trials are never pruned
    confirm = [r for r in study.records() if r.purpose == "confirmation"]
    assert confirm and all(not r.stopped_early and len(study.history(r.trial_id)) == 4 for r in confirm)


# ---------------------------------------------------------------- killing the driver


@pytest.mark.slow
def test_killed_tuning_driver_resumes_without_duplicating_trials(tmp_path, ray_address):
    study, _ = finished_ablation(tmp_path, sim_config("killed", tuning={"n_trials": 10}, sleep=0.4))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_AUTH_MODE"] = "disabled"
    temp = short_tmp("rt_kill")
    cmd = [ABLATOR, "tune", str(study.path)]
    try:
        proc = subprocess.Popen(cmd + ["--no-dashboard", "--ray-temp-dir", temp], cwd=REPO, env=env,
                                start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 120
            while sum(r.state == COMPLETED for r in tuning_records(study).values()) < 3:
                assert proc.poll() is None, "the tuning driver ended before it was killed"
                assert time.time() < deadline
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            _end_group(proc)
        before = {tid: r for tid, r in tuning_records(study).items() if r.state == COMPLETED}
        assert 3 <= len(before) < 10
        assert study.info["stages"]["tuning"]["state"] == "running"

        # the killed driver's local Ray ended with its process group; the next driver joins the shared head
        done = subprocess.run(cmd + on_cluster(ray_address), check=False, cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=240)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    ostudy = open_optuna_study(study.path)
    assert [t.number for t in ostudy.trials] == list(range(10))
    assert all(t.state == TrialState.COMPLETE for t in ostudy.trials)
    after = tuning_records(study)
    assert sorted(after) == [f"tune-{i:04d}" for i in range(10)]
    for tid, rec in before.items():  # finished before the kill: kept, not run again
        assert after[tid].ended_at == rec.ended_at and after[tid].attempts == 1
    assert study.info["stages"]["tuning"]["state"] == "completed"
    assert (study.path / "best_config.yaml").exists()


def _end_group(proc: subprocess.Popen) -> None:
    """Ray processes the killed driver started (its own session) that outlived it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def test_torn_journal_line_and_stale_lock_of_a_killed_writer_are_cleared(tmp_path):
    storage = open_storage(tmp_path)
    optuna.create_study(study_name="s", storage=storage).optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    path = journal_path(tmp_path)
    good = path.read_bytes()
    path.write_bytes(good + b'{"op_code": 5, "worker_id": "x", "tri')
    assert repair_journal(path) and path.read_bytes() == good
    assert len(open_optuna_study(tmp_path).trials) == 2
    lock = Path(str(path) + ".lock")
    os.symlink(path, lock)  # what JournalFileSymlinkLock leaves when its holder is SIGKILLed
    assert clear_stale_lock(path, wait_s=0.2) and not os.path.lexists(lock)
    assert not clear_stale_lock(path, wait_s=0.2)


# ---------------------------------------------------------------- schedules and refusals


@pytest.mark.slow
def test_manual_schedule_waits_for_ablator_tune(ray_cluster, tmp_path):
    study, config = finished_ablation(tmp_path, sim_config("manual", tuning={"schedule": "manual", "n_trials": 3}))
    with study_session.StudySession(study, config, QUIET, study_session.Cluster()) as session:
        session.tuning()
    assert study.info["stages"]["tuning"]["state"] == "manual"
    assert not tuning_records(study)
    result = CliRunner().invoke(app, ["status", str(study.path)])
    assert "stage tuning: manual" in result.output
    result = CliRunner().invoke(app, ["tune", str(study.path), "--n-trials", "4"])
    assert result.exit_code == 0, result.output
    assert len(tuning_records(study)) == 4
    assert study.info["stages"]["tuning"]["state"] == "completed"


@pytest.mark.slow
def test_at_schedule_in_the_future_is_recorded_with_the_scheduler_command(ray_cluster, tmp_path):
    at = datetime.now(UTC) + timedelta(hours=3)
    study, config = finished_ablation(tmp_path, sim_config("at", tuning={"schedule": {"at": at.isoformat()},
                                                                         "n_trials": 3}))
    console = Console(record=True, width=300)
    with study_session.StudySession(study, config, console, study_session.Cluster()) as session:
        assert session.tuning() is False  # nothing waits: the command returns
    out = console.export_text()
    assert f"sbatch --begin={at.strftime('%Y-%m-%dT%H:%M:%S')}" in out and f"ablator tune {study.path}" in out
    status = CliRunner().invoke(app, ["status", str(study.path)]).output
    assert "stage tuning: scheduled" in status and not tuning_records(study)
    result = CliRunner().invoke(app, ["tune", str(study.path)])  # what the scheduler runs then
    assert result.exit_code == 0, result.output
    assert len(tuning_records(study)) == 3
    assert study.info["stages"]["tuning"]["state"] == "completed"


@pytest.mark.parametrize("case, message", [
    ("unfinished", "ablation stage of"),
    ("incomplete", "provisional"),
    ("no_verdicts", "verdicts.json is missing"),
    ("nothing_survived", "no component survived"),
    ("old_layout", "layout 1, this ablator reads layout 2"),
])
def test_tune_refuses_with_a_clear_message(tmp_path, case, message):
    verdicts = {"a": "inconclusive", "b": "harmful", "c": "inconclusive", "d": "inconclusive"} \
        if case == "nothing_survived" else None
    tuning = {"search_space": {}} if case == "nothing_survived" else None
    study, _ = finished_ablation(tmp_path, sim_config("refuse", tuning=tuning), verdicts=verdicts,
                                 complete=case != "incomplete",
                                 state="running" if case == "unfinished" else "completed")
    if case == "no_verdicts":
        (study.path / "verdicts.json").unlink()
    if case == "old_layout":  # an older ablator's verdicts.json: named, with how to rewrite it
        write_json(study.path / "verdicts.json", {"components": {n: {"verdict": v} for n, v in VERDICTS.items()}})
    result = CliRunner().invoke(app, ["tune", str(study.path)])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not journal_path(study.path).exists()


def test_launcher_skips_tuning_with_a_reason_when_nothing_survived(tmp_path):
    verdicts = {n: "inconclusive" for n in VERDICTS}
    study, config = finished_ablation(tmp_path, sim_config("skip", tuning={"search_space": {}}), verdicts=verdicts)
    assert run_tuning(study, config, console=QUIET) is None
    stage = study.info["stages"]["tuning"]
    assert stage["state"] == "skipped" and "no component survived" in stage["reason"]


# ---------------------------------------------------------------- the whole flow


@pytest.mark.slow
def test_launch_runs_ablation_then_tunes_the_survivors(ray_cluster, tmp_path):
    cfg = sim_config("flow", tuning={"n_trials": 4, "confirm_seeds": [0, 1, 2]})
    cfg["seeds"] = [0, 1, 2]
    cfg["baseline"]["sim"].update(noise=0.05, seed_noise=0.05)
    cfg["design"] = {"type": "one_at_a_time"}
    cfg["storage"] = {"root": str(tmp_path / "studies")}
    path = tmp_path / "flow.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    study = study_session.launch(path, console=QUIET)
    verdicts = read_json(study.path / "verdicts.json")
    assert {n: v["verdict"] for n, v in verdicts["components"].items()} == VERDICTS
    summary = read_json(study.path / "tuning" / "results.json")
    assert [p["path"] for p in summary["tuned"]] == ["hp.x", "hp.y"]
    assert summary["removed"] == {"b": "harmful"}
    assert len(tuning_records(study)) == 4
    assert json.loads((study.path / "study.json").read_text())["stages"]["tuning"]["state"] == "completed"


def test_negligible_components_are_removed_and_inconclusive_ones_kept():
    verdicts = {"a": "essential", "b": "negligible", "c": "inconclusive", "d": "essential"}
    plan = tuning_plan(parse_config(sim_config("space3")), judged(verdicts))
    assert plan.removed == ["b"] and plan.kept == ["a", "c", "d"]
    assert plan.fate("b") == "removed (negligible: shown not to matter)"
    assert plan.fate("c") == "kept as in the baseline, not tuned"


def test_best_config_drops_alternatives_the_tuned_baseline_already_is():
    from orchestrator.tuning.report import drop_redundant_alternatives

    data = {"baseline": {"model": {"norm": "rms", "act": "relu", "eps": 1e-5}},
            "components": {"norm": {"removal": {"model.norm": "none"},
                                    "alternatives": {"rms": {"model.norm": "rms"}, "batch": {"model.norm": "batch"}}},
                           "act": {"removal": {"model.act": "id"}, "alternatives": {"relu": {"model.act": "relu"}}},
                           "eps": {"removal": {"model.eps": 0.0},
                                   "alternatives": {"half": {"model.eps": 1e-5, "model.missing": 1}}}}}
    drop_redundant_alternatives(data)
    assert data["components"]["norm"]["alternatives"] == {"batch": {"model.norm": "batch"}}
    assert "alternatives" not in data["components"]["act"]  # none left: the key goes
    assert set(data["components"]["eps"]["alternatives"]) == {"half"}  # a path the baseline lacks differs
