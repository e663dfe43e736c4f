"""The ledger never lies: torn lines, damaged files, the study index, the record model.

No Ray here: studies are built through the ledger's own writer (benchmarks.scale.build),
and every command runs as a real `ablator` subprocess, so a traceback would show.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.scale import build
from orchestrator.errors import LedgerDamaged, StudyError
from orchestrator.ledger import COMPLETED, PENDING, AttemptError, Study, TrialRecord, TrialStore, write_json
from orchestrator.ledger.files import cut_torn_tail
from tests.conftest import REPO, tmpfs


def ablator(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-c", "from orchestrator.cli import app; app()", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture
def study(tmp_path) -> Study:
    """A finished study of 3 components x 2 seeds, written as driver and workers would."""
    return Study(build(tmp_path, 8, components=3))


# ------------------------------------------------------------ metrics.jsonl


def test_torn_tail_is_cut_before_the_next_attempt_appends_and_kept_beside(tmp_path):
    store = TrialStore(tmp_path / "t")
    store.path.mkdir()
    store.metrics_path.write_text('{"step": 0, "attempt": 1, "loss": 1.0}\n{"step": 1, "attem')
    again = TrialStore(store.path)  # the next attempt's store
    again.append_metrics({"step": 1, "attempt": 2, "loss": 0.5})
    lines = store.metrics_path.read_text().splitlines()
    assert [json.loads(ln)["step"] for ln in lines] == [0, 1]  # every line parses, no glued row
    assert '{"step": 1, "attem' in (store.path / "metrics.jsonl.torn").read_text()
    assert cut_torn_tail(store.metrics_path) == b""  # nothing left to cut


def test_reader_names_an_unreadable_line_and_reads_every_line_after_it(tmp_path, caplog):
    store = TrialStore(tmp_path / "t")
    store.path.mkdir()
    rows = [{"step": 0, "attempt": 1}, {"step": 1, "attempt": 1}, {"step": 2, "attempt": 1}]
    text = [json.dumps(r) for r in rows]
    text.insert(2, '{"step": 2, "attempt": 1{"step": 9')  # a glued row from an older version
    store.metrics_path.write_text("\n".join(text) + "\n" + '{"step": 3, "attempt": 2}\n')
    got, problems = store.read_metrics()
    assert [r["step"] for r in got] == [0, 1, 2, 3]
    assert problems == [(f"{store.metrics_path}:3: unreadable line skipped "
                         "(column 25: Expecting ',' delimiter)")]
    assert [r["step"] for r in store.history()] == [0, 1, 2, 3]
    assert f"{store.metrics_path}:3" in caplog.text


def test_one_row_per_step_the_latest_attempt_wins(tmp_path):
    store = TrialStore(tmp_path / "t")
    for step, attempt, loss in [(0, 1, 1.0), (1, 1, 0.9), (1, 2, 0.8), (2, 2, 0.7)]:
        store.path.mkdir(exist_ok=True)
        store.append_metrics({"step": step, "attempt": attempt, "loss": loss})
    assert [(r["step"], r["attempt"], r["loss"]) for r in store.history()] == [
        (0, 1, 1.0), (1, 2, 0.8), (2, 2, 0.7)]


# ------------------------------------------------------------ atomic writes, full disk


def test_a_failed_write_leaves_no_temp_file_and_the_old_content(tmp_path):
    class Unprintable:
        def __str__(self):
            raise RuntimeError("cannot print")

    path = tmp_path / "x.json"
    write_json(path, {"a": 1})
    with pytest.raises(RuntimeError):
        write_json(path, {"a": Unprintable()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


@pytest.fixture
def small_disk(tmp_path):
    with tmpfs(tmp_path / "disk", "1m") as disk:
        yield disk


def test_disk_full_names_the_path_cleans_up_and_works_again_once_there_is_room(small_disk):
    store = TrialStore(small_disk / "trials" / "t")
    store.write(TrialRecord(trial_id="t", state=PENDING))
    filler = small_disk / "filler"
    with pytest.raises(OSError), open(filler, "wb") as fh:  # fill the disk for real
        while True:
            fh.write(b"x" * 65536)
            fh.flush()
    with pytest.raises(StudyError) as info:
        store.write(TrialRecord(trial_id="t", state=COMPLETED, final={"x": "y" * 100_000}))
    assert str(store.record_path) in str(info.value) and "No space left" in str(info.value)
    assert info.value.retryable
    assert sorted(p.name for p in store.path.iterdir()) == ["record.json"]  # no temp file left
    assert store.read().state == PENDING  # the old record stands
    filler.unlink()  # room again
    store.write(TrialRecord(trial_id="t", state=COMPLETED, final={"x": "y" * 100_000}))
    assert store.read().state == COMPLETED


# ------------------------------------------------------------ the study index


def test_index_replays_every_write_and_reads_only_new_bytes(study):
    recs = {r.trial_id: r for r in study.records()}
    assert len(recs) == 8 and all(r.state == COMPLETED for r in recs.values())
    lines = study.index.path.read_text().splitlines()
    assert len(lines) == 3 * 8  # PENDING, RUNNING, COMPLETED of each trial
    assert "variant" not in json.loads(lines[1])  # later lines hold only what changed
    before = study.index._offset
    study.trial("baseline-seed0").update(state=PENDING)
    assert study.records()[0].state == PENDING  # sorted: baseline-seed0 first
    assert study.index._offset > before
    with open(study.index.path, "a") as fh:
        fh.write('{"trial_id": "baseline-seed0", "state": "COMPLE')  # a write in progress
    assert {r.trial_id: r for r in study.records()}["baseline-seed0"].state == PENDING


def test_a_record_written_afresh_replaces_the_indexed_one(study):
    """A record set aside and written anew (as resume does) is a fresh record in the index:
    the fields it leaves at their defaults do not keep the old record's values."""
    store = study.trial("no-c0-seed1")
    store.read()
    store.set_aside()
    store.write(TrialRecord(trial_id="no-c0-seed1", variant="no-c0", removed=["c0"], seed=1))
    first = json.loads(study.index.path.read_text().splitlines()[0])
    assert "state" not in first and "attempts" not in first  # a trial's first line: only non-defaults
    for reader in (Study(study.path), study):  # a full replay and an incremental one
        rec = {r.trial_id: r for r in reader.records()}["no-c0-seed1"]
        assert (rec.state, rec.attempts, rec.final) == (PENDING, 0, None)
        assert reader.states()["no-c0-seed1"] == PENDING


@pytest.mark.slow
def test_status_and_report_do_not_open_trial_directories(study):
    """With the index, a trial directory may even be gone: status and report read the index."""
    import shutil

    shutil.rmtree(study.trials_dir)
    result = ablator("status", str(study.path))
    assert result.returncode == 0, result.stderr
    assert "ablation" in result.stdout and "8" in result.stdout


def test_record_model_refuses_to_write_a_lie(tmp_path):
    store = TrialStore(tmp_path / "trials" / "t")
    record = TrialRecord(trial_id="t")
    with pytest.raises(ValueError, match="state"):
        record.state = "DONE"  # checked on assignment
    with pytest.raises(ValueError, match="state"):  # model_copy does not check: write does
        store.write(record.model_copy(update={"state": "DONE"}))
    with pytest.raises(ValueError, match="attempts"):
        store.write(record.model_copy(update={"attempts": "two"}))
    assert not store.record_path.exists()


def test_layout_version_in_study_json(study):
    assert study.info["layout"] == 2


# ------------------------------------------------------------ damaged files, per command


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(("damaged", "command"), [
    *(("study.json", c) for c in ("status", "report", "tune", "resume", "launch")),
    *(("plan.json", c) for c in ("resume", "launch")),  # the commands that need the plan
])
@pytest.mark.slow
def test_a_truncated_study_or_plan_json_is_refused_naming_it_and_the_mend(study, damaged, command):
    truncate(study.path / damaged)
    target = str(study.config_path) if command == "launch" else str(study.path)
    result = ablator(command, target)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{study.path / damaged}: not valid JSON" in result.stderr
    assert f"ablator doctor {study.path} --fix" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.slow
def test_status_names_a_damaged_plan_and_goes_on(study):
    truncate(study.path / "plan.json")
    result = ablator("status", str(study.path))
    assert result.returncode == 0, result.stderr
    out = result.stdout.replace("\n", "")
    assert "plan.json: cut short" in out and "doctor" in out and "COMPLETED" in out


@pytest.mark.slow
def test_truncated_record_json_is_named_by_doctor_and_readers(study):
    record = study.trial("no-c1-seed1").record_path
    truncate(record)
    with pytest.raises(LedgerDamaged, match=f"{record}: not valid JSON"):
        study.trial("no-c1-seed1").read()
    result = ablator("doctor", str(study.path))
    assert result.returncode == 2
    assert f"{record}: not valid JSON" in result.stdout.replace("\n", "")
    assert "--fix" in result.stderr and "Traceback" not in result.stderr
    # status and report read the index, which still holds the trial's outcome
    assert ablator("status", str(study.path)).returncode == 0
    report = ablator("report", str(study.path))
    assert report.returncode == 0, report.stderr
    assert "seed None" not in (study.path / "report.md").read_text()


@pytest.mark.slow
def test_doctor_fix_rebuilds_plan_study_json_and_index_and_sets_records_aside(study):
    plan_before = json.loads((study.path / "plan.json").read_text())
    truncate(study.path / "plan.json")
    truncate(study.path / "study.json")
    truncate(study.trial("no-c2-seed0").record_path)
    with open(study.index.path, "a") as fh:
        fh.write("garbage\n")
    (study.path / ".plan.json.123.ab12.tmp").write_text("{")
    result = ablator("doctor", str(study.path), "--fix")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((study.path / "plan.json").read_text()) == plan_before
    assert Study(study.path).info["name"] == "scale"
    fresh = Study(study.path)
    states = fresh.states()
    assert states["no-c2-seed0"] == PENDING and sum(s == COMPLETED for s in states.values()) == 7
    assert list(fresh.trial("no-c2-seed0").path.glob("record.json.damaged-*"))
    assert not list(study.path.glob(".*.tmp"))
    assert "garbage" not in study.index.path.read_text()
    assert ablator("doctor", str(study.path)).returncode == 0  # clean now


@pytest.mark.slow
def test_an_older_study_without_index_still_reads_and_doctor_adds_the_index(study):
    study.index.path.unlink()
    assert len(Study(study.path).records()) == 8  # from the trial directories
    assert ablator("doctor", str(study.path), "--fix").returncode == 0
    assert len(Study(study.path).index.records()) == 8


def test_status_cache_parses_only_new_lines_and_follows_a_rebuilt_index(study):
    from orchestrator.doctor import rebuild_index
    from orchestrator.ledger import FAILED

    cache = study.path / "index.jsonl.status"
    cache.unlink(missing_ok=True)
    assert Study(study.path).statuses()["baseline-seed0"].state == COMPLETED
    assert not cache.exists()  # reading writes nothing
    study.keep_status_cache()
    assert json.loads(cache.read_text())["offset"] == study.index.path.stat().st_size
    study.trial("baseline-seed0").update(state=FAILED, errors=[AttemptError(attempt=1, error="boom")])
    got = Study(study.path).statuses()["baseline-seed0"]  # the cache plus the line appended since
    assert got.state == FAILED and got.last_error == "boom" and got.attempts == 1
    assert json.loads(cache.read_text())["offset"] < study.index.path.stat().st_size
    Study(study.path).keep_status_cache()
    assert json.loads(cache.read_text())["offset"] == study.index.path.stat().st_size
    assert Study(study.path).statuses() == {r.trial_id: r.status for r in study.records()}
    record = study.trial("baseline-seed0")
    write_json(record.record_path, {**record.read().to_json(), "state": PENDING})  # behind the index's back
    assert Study(study.path).statuses()["baseline-seed0"].state == FAILED
    rebuild_index(study, [study.trial(d.name).read() for d in study.trial_dirs()])
    assert Study(study.path).statuses()["baseline-seed0"].state == PENDING


def test_records_of_the_former_layout_read_with_their_stage_and_purpose(study):
    """Before `purpose`, `stage` held confirmation/determinism: such records (on disk and in the index)
    read with the stage they ran in and their purpose, under the same trial ids."""
    from orchestrator.config import load_config
    from orchestrator.plan import ablation_trials

    ids_before = set(study.statuses())
    old = {"confirm-baseline-seed7": "confirmation", "baseline-seed0-repeat": "determinism"}
    for tid, stage in old.items():
        study.trial(tid).path.mkdir(parents=True)
        former = {"trial_id": tid, "stage": stage, "variant": "baseline", "seed": 0, "state": COMPLETED}
        write_json(study.trial(tid).record_path, former)
        with open(study.index.path, "a") as fh:
            fh.write(json.dumps({**former, "fresh_record": True}) + "\n")
    base = study.trial("baseline-seed1")
    write_json(base.record_path, {k: v for k, v in base.read().to_json().items() if k != "purpose"})
    expect = {"confirm-baseline-seed7": ("tuning", "confirmation"),
              "baseline-seed0-repeat": ("ablation", "determinism")}
    for records in (Study(study.path).records(), Study(study.path).records_on_disk(warn=False)):
        got = {r.trial_id: (r.stage, r.purpose) for r in records}
        assert {tid: got[tid] for tid in old} == expect
        assert got["baseline-seed1"] == ("ablation", "variant")
        assert {tid for tid, (_, p) in got.items() if p == "variant"} == ids_before
    statuses = Study(study.path).statuses()
    assert statuses["confirm-baseline-seed7"].stage == "tuning"
    assert statuses["baseline-seed0-repeat"].stage == "ablation"
    assert set(statuses) == ids_before | set(old)
    config = load_config(study.config_path, import_trainable=False)
    assert {s.trial_id for s in ablation_trials(config)} == ids_before  # resume finds every trial by its id
    # a torn record mended from a plan entry of the former layout keeps its purpose
    from rich.console import Console

    from orchestrator.session.mending import mend_records

    study.write_plan({"trials": [{"trial_id": "baseline-seed0-repeat", "stage": "determinism",
                                  "variant": "baseline", "removed": [], "seed": 0}]})
    study.trial("baseline-seed0-repeat").record_path.write_text('{"trial_id": "baseline-seed0-re')
    assert mend_records(Study(study.path), Console(quiet=True)) == ["baseline-seed0-repeat"]
    mended = Study(study.path).trial("baseline-seed0-repeat").read()
    assert (mended.stage, mended.purpose, mended.state) == ("ablation", "determinism", PENDING)
