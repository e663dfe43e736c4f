"""W&B tracking against a study dir built by hand, as the workers would write it.

Real wandb, offline (no network here). The tracker is driven exactly as the driver
does: trial_update on record changes, poll each loop turn, log_analysis, close.
What it wrote is read back from the `.wandb` transaction logs and checked
against the ledger.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.config import parse_config
from orchestrator.ledger import COMPLETED, FAILED, PENDING, RUNNING, Study, TrialRecord
from orchestrator.ledger.verdicts_json import Comparison, Flag, Verdicts, write_verdicts
from orchestrator.tracking import NullTracker, make_tracker, pending, resolve_mode
from orchestrator.tracking import payload as P
from orchestrator.tracking.offline import read_runs

REPO = Path(__file__).resolve().parents[1]
FAKE_WANDB_KEY = "wandbfakekey0123456789abcdef0123456789ab"  # 40 chars, like a real key
FAKE_AWS_SECRET = "AwsFakeSecret/abcDEF0123456789xyz"
FAKE_HF_TOKEN = "hf_FakeTokenInTheConfig0123456789"

CONFIG = {
    "name": "toy",
    "trainable": "json:dumps",
    "metrics": {"primary": {"name": "acc", "mode": "max"}, "secondary": [{"name": "val_loss", "mode": "min"}]},
    "baseline": {
        "model": {"head": "ctc", "dropout": 0.1},
        "train": {"epochs": 5, "lr": 0.001},
        "data": {"noise_sigma": 0.5, "hf_token": FAKE_HF_TOKEN},
    },
    "components": {
        "ctc_head": {"kind": "structural", "description": "the CTC head", "removal": {"model.head": "none"}},
        "dropout": {"kind": "training", "description": "dropout", "removal": {"model.dropout": 0.0}},
    },
    "tracking": {"wandb": {"mode": "offline"}},
}

PROVENANCE = {
    "git": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": True},
    "python": "3.11.7",
    "packages": {"torch": "2.13.0", "wandb": "0.31.0"},
    "packages_hash": "feedfacecafebeef",
    "host": "driver-host",
    "platform": "Linux-x86_64",
    "cpu": {"model": "Test CPU @ 3GHz", "count": 2},
    "gpu": {"count": 1, "models": ["NVIDIA H100"], "cuda": "12.4", "torch": "2.13.0"},
    # a secret on the command line must not travel to W&B either
    "argv": ["ablator", "launch", "cfg.yaml", f"--token={FAKE_AWS_SECRET}"],
}


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def wandb_env(tmp_path_factory):
    """wandb's own dirs in a tmp dir, fake secrets in the environment, no inherited mode."""
    home = tmp_path_factory.mktemp("wandb-home")
    with pytest.MonkeyPatch.context() as mp:
        for var in ("WANDB_MODE", "WANDB_BASE_URL", "WANDB_DISABLED", "WANDB_IDENTITY_TOKEN_FILE"):
            mp.delenv(var, raising=False)
        mp.setenv("WANDB_SILENT", "true")
        for var, sub in (("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data"),
                         ("WANDB_CONFIG_DIR", "config"), ("WANDB_ARTIFACT_DIR", "artifacts"),
                         ("WANDB_DIR", "wandb-dir")):
            mp.setenv(var, str(home / sub))
        mp.setenv("NETRC", str(home / "netrc"))
        mp.setenv("WANDB_API_KEY", FAKE_WANDB_KEY)
        mp.setenv("AWS_SECRET_ACCESS_KEY", FAKE_AWS_SECRET)
        yield home


def new_study(root: Path, config: dict = CONFIG) -> tuple:
    cfg = parse_config(config)
    text = yaml.safe_dump({**config, "baseline": {**config["baseline"], "data": {"noise_sigma": 0.5}}})
    return cfg, Study.create(root / cfg.name, text, cfg.name)


def record(trial_id, variant, removed, seed=0, stage="ablation", group=None, **extra) -> TrialRecord:
    """A PENDING record, as the driver writes it before a trial starts."""
    return TrialRecord(trial_id=trial_id, stage=stage, variant=variant, removed=removed, seed=seed, group=group,
                       **extra)


class Driver:
    """What the driver does around a tracker, with the worker's ledger writes simulated."""

    def __init__(self, study: Study, tracker):
        self.study, self.tracker = study, tracker

    def update(self, rec: TrialRecord) -> TrialRecord:
        self.study.trial(rec.trial_id).write(rec)
        self.tracker.trial_update(rec)
        return rec

    def start(self, rec: TrialRecord, host="worker-1") -> TrialRecord:
        return self.update(rec.model_copy(update={"state": RUNNING, "attempts": rec.attempts + 1, "host": host,
                                                  "started_at": rec.started_at or time.time()}))

    def report(self, rec: TrialRecord, step: int, **metrics) -> None:
        self.study.trial(rec.trial_id).append_metrics(
            {"step": step, "attempt": rec.attempts, "time": time.time(), **metrics})

    def finish(self, rec: TrialRecord, state=COMPLETED, error=None) -> TrialRecord:
        hist = self.study.trial(rec.trial_id).history()
        final = {k: v for k, v in hist[-1].items() if k not in ("step", "attempt", "time")} if hist else None
        done = rec.model_copy(update={"state": state, "final": final if state == COMPLETED else None,
                                      "ended_at": 2000.0, "duration_s": 4.5,
                                      "data_fingerprints": {"train": {"hash": "d1f0", "n": 512},
                                                            "val": {"hash": "aa42", "n": 128}}})
        if error:
            done.add_error(error, traceback="tb")
        return self.update(done)


def metrics_at(step: int, offset: float = 0.0) -> dict:
    return {"acc": round(0.5 + 0.05 * step + offset, 4), "val_loss": round(1.0 - 0.1 * step - offset, 4)}


def runs_by_trial(wandb_dir: Path) -> dict[str, list]:
    out: dict[str, list] = {}
    for runs in read_runs(wandb_dir).values():
        for run in runs:
            if run.path.parent.name.startswith("offline-run-"):
                out.setdefault(run.config.get("trial_id") or run.job_type, []).append(run)
    return out


@pytest.fixture(scope="module")
def tracked(wandb_env, tmp_path_factory):
    """One study, one tracker: six trials as two concurrent workers would write them."""
    cfg, study = new_study(tmp_path_factory.mktemp("studies"))
    # a trial that ended while no driver was tracking: the tracker must pick it up on its own
    late = record("dropout-seed1", "dropout", ["dropout"], seed=1)
    d0 = Driver(study, NullTracker())
    late = d0.start(late)
    for s in range(3):
        d0.report(late, s, **metrics_at(s))
    late = d0.finish(late)

    notices: list[str] = []
    tracker = make_tracker(cfg, study, PROVENANCE, echo=notices.append)
    assert tracker.mode == "offline"
    drv = Driver(study, tracker)
    trials = {
        "baseline-seed0": record("baseline-seed0", "baseline", []),
        "synthetic.ctc_head-seed0": record("synthetic.ctc_head-seed0", "ctc_head", ["ctc_head"],
                                           group="synthetic"),
        "dropout-seed0": record("dropout-seed0", "dropout", ["dropout"]),
        "tuning-0003": record("tuning-0003", "tuned", [], stage="tuning", overrides={"model.dropout": 0.3},
                              tuning={"number": 3, "params": {"model.dropout": 0.3}}),
        "fast-seed0": record("fast-seed0", "baseline", [], seed=7),
        "never-seed9": record("never-seed9", "baseline", [], seed=9),
    }
    for rec in trials.values():
        drv.update(rec)  # PENDING, as the driver writes them

    # two workers at a time, 5 reports each; the driver polls between reports
    pairs = [("baseline-seed0", "synthetic.ctc_head-seed0"), ("dropout-seed0", "tuning-0003")]
    for pair in pairs:
        live = {tid: drv.start(trials[tid]) for tid in pair}
        for step in range(5):
            for tid, rec in live.items():
                if tid == "dropout-seed0" and step == 2:
                    continue
                if tid == "dropout-seed0" and step > 2:
                    continue
                drv.report(rec, step, **metrics_at(step, offset=0.01 * len(tid)))
            tracker.poll()
            time.sleep(0.05)
        if "dropout-seed0" in live:  # data fingerprint reported mid-run
            live["dropout-seed0"] = drv.update(live["dropout-seed0"].model_copy(
                update={"data_fingerprints": {"train": {"hash": "d1f0", "n": 512}}}))
        for tid, rec in live.items():
            trials[tid] = drv.finish(rec, FAILED, "RuntimeError: CUDA out of memory") if tid == "dropout-seed0" \
                else drv.finish(rec)
    # a trial the same driver restarts (Ray retried it): step 2 comes again from attempt 2
    rec = drv.start(record("baseline-seed1", "baseline", [], seed=1))
    for s in range(3):
        drv.report(rec, s, **metrics_at(s))
        tracker.poll()
    time.sleep(0.1)
    rec.add_error("worker died")  # attempt 1
    rec = drv.start(rec)
    for s in (2, 3, 4):
        drv.report(rec, s, **metrics_at(s, offset=0.3))
        tracker.poll()
    trials["baseline-seed1"] = drv.finish(rec)
    # a trial the tracker first sees finished (started and ended between two polls)
    fast = trials["fast-seed0"]
    fast = fast.model_copy(update={"state": RUNNING, "attempts": 1, "started_at": 5.0, "host": "worker-2"})
    study.trial("fast-seed0").write(fast)
    for s in range(2):
        drv.report(fast, s, **metrics_at(s))
    trials["fast-seed0"] = drv.finish(fast)

    report_files(study.path)
    tracker.log_analysis(study.path)
    tracker.close()
    trials["dropout-seed1"] = late
    yield {"cfg": cfg, "study": study, "tracker": tracker, "trials": trials, "notices": notices,
           "driver": drv, "runs": runs_by_trial(study.path / "wandb"),
           "home": wandb_env}


def report_files(study_dir: Path) -> None:
    """What the report and the tuning stage leave in the study dir."""
    from PIL import Image

    (study_dir / "results.csv").write_text(
        "group,variant,removed,metric,n,mean,std,sem,min,max,seeds,failed,pending,nonfinite,absent\n"
        ",baseline,,acc,2,0.8,0.01,0.007,0.79,0.81,0 1,,,,\n"
        ",ctc_head,ctc_head,acc,1,0.7,,,0.7,0.7,0,1,,,\n")
    (study_dir / "plots").mkdir(exist_ok=True)
    Image.new("RGB", (32, 16), (200, 30, 30)).save(study_dir / "plots" / "effects.png")
    Image.new("RGB", (16, 16), (30, 30, 200)).save(study_dir / "plots" / "distributions.png")
    write_verdicts(study_dir / "verdicts.json", Verdicts(
        study="toy", primary={"name": "acc", "mode": "max"}, alpha=0.05, min_effect=0.0, design="one_at_a_time",
        components={"ctc_head": Comparison(method="paired", verdict="essential", effect=0.1, ci=[0.05, 0.15]),
                    "dropout": Comparison(method="paired", verdict="inconclusive", effect=0.01, ci=[-0.02, 0.04])},
        flags=[Flag(kind="seed_variance", severity="warning", message="noise > effect")]))
    (study_dir / "best_config.yaml").write_text("model:\n  dropout: 0.2\n")
    (study_dir / "tuning").mkdir(exist_ok=True)
    (study_dir / "tuning" / "results.json").write_text(json.dumps({"best_value": 0.83, "n_trials": 20}))
    Image.new("RGB", (16, 16), (30, 200, 30)).save(study_dir / "tuning" / "history.png")
    (study_dir / "report.html").write_text("<!DOCTYPE html><html><body><h1>toy</h1></body></html>\n")


# ---------------------------------------------------------------- payload (no wandb)


def test_run_ids_are_a_function_of_the_ledger():
    a = P.run_id("toy-1a2b3c4d", "ctc_head-seed0", 1000.5)
    assert a == P.run_id("toy-1a2b3c4d", "ctc_head-seed0", 1000.5)  # a later driver finds it again
    assert a != P.run_id("toy-1a2b3c4d", "ctc_head-seed0", 2000.0)  # a re-run from scratch: new run
    assert a != P.run_id("toy-ffffffff", "ctc_head-seed0", 1000.5)
    long = P.run_id("s" * 80, "synthetic/noise_sigma=0.5.ctc_head+dropout-seed12", 1.0)
    assert len(long) <= 64 and all(c.isalnum() or c in "-_." for c in long)
    assert long != P.run_id("s" * 80, "synthetic/noise_sigma=0.5.ctc_head+dropout-seed13", 1.0)


def test_names_tags_project():
    cfg = parse_config(CONFIG)
    assert P.project_name(cfg) == "toy-ablations"
    rec = record("g.ctc_head-seed2", "ctc_head", ["ctc_head", "dropout"], seed=2, group="synthetic")
    assert P.run_name(rec) == "synthetic-ctc_head-seed2"
    assert P.run_tags(cfg, rec) == ["removed:ctc_head", "removed:dropout", "kind:structural", "kind:training"]
    assert P.run_tags(cfg, record("b", "baseline", [])) == ["baseline"]
    repeat = record("baseline-seed0-repeat", "baseline", []).model_copy(update={"purpose": "determinism"})
    assert P.run_name(repeat) == "baseline-seed0-determinism"  # not the ablation's own baseline-seed0
    assert P.run_tags(cfg, repeat) == ["baseline", "purpose:determinism"]
    custom = parse_config({**CONFIG, "tracking": {"wandb": {"mode": "offline", "project": "p", "entity": "e"}}})
    assert P.project_name(custom) == "p"


def test_scrub_redacts_secret_keys_and_env_values(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-0123456789")
    secrets = P.env_secrets()
    out = P.scrub({"hf_token": "abc", "max_tokens": 128, "num_token": 3, "api_key": "k",
                   "note": "run with tok-0123456789 please", "nested": [{"password": "pw"}]}, secrets)
    assert out == {"hf_token": "***", "max_tokens": 128, "num_token": 3, "api_key": "***",
                   "note": "run with *** please", "nested": [{"password": "***"}]}


@pytest.mark.slow
def test_disabled_is_a_noop_that_never_imports_wandb():
    code = textwrap.dedent(f"""
        import sys, yaml
        from orchestrator.config import parse_config
        from orchestrator.ledger import Study, TrialRecord
        from orchestrator.tracking import make_tracker, NullTracker
        cfg = parse_config(yaml.safe_load({yaml.safe_dump({**CONFIG, "tracking": {"wandb": {"mode": "disabled"}}})!r}))
        t = make_tracker(cfg, Study(sys.argv[1]), {{}})
        t.trial_update(TrialRecord(trial_id="x", state="RUNNING")); t.poll(); t.log_analysis(sys.argv[1]); t.close()
        assert isinstance(t, NullTracker) and t.mode == "disabled"
        assert "wandb" not in sys.modules, "disabled tracking imported wandb"
    """)
    subprocess.run([sys.executable, "-c", code, "/nonexistent"], cwd=REPO, check=True, timeout=60)


def test_resolve_mode(wandb_env, monkeypatch):
    assert resolve_mode("disabled") == ("disabled", None)
    assert resolve_mode("offline") == ("offline", None)
    assert resolve_mode("auto") == ("online", None)  # WANDB_API_KEY is set (a fake one)
    monkeypatch.delenv("WANDB_API_KEY")
    assert resolve_mode("auto") == ("offline", "no W&B API key configured")
    assert resolve_mode("online") == ("offline", "no W&B API key configured")
    monkeypatch.setenv("WANDB_API_KEY", FAKE_WANDB_KEY)
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert resolve_mode("auto")[0] == "offline"
    assert resolve_mode("online")[0] == "online"  # an explicit setting wins over the environment


# ---------------------------------------------------------------- one study, tracked offline


@pytest.mark.slow
def test_every_started_trial_is_one_run(tracked):
    runs = tracked["runs"]
    started = {tid for tid, rec in tracked["trials"].items() if rec.state != PENDING}
    assert set(runs) == started | {"analysis"}
    for tid in started:
        assert len(runs[tid]) == 1, tid
        rec = tracked["trials"][tid]
        assert runs[tid][0].run_id == P.run_id(tracked["study"].study_id, tid, rec.started_at)
    assert "never-seed9" not in runs  # never started: no run


@pytest.mark.slow
def test_grouping_job_type_name_tags(tracked):
    study_id = tracked["study"].study_id
    for tid, (run,) in ((t, r) for t, r in tracked["runs"].items() if t != "analysis"):
        rec = tracked["trials"][tid]
        assert run.project == "toy-ablations"
        assert run.group == study_id
        assert run.job_type == rec.stage
    runs = {t: r[0] for t, r in tracked["runs"].items()}
    assert runs["baseline-seed0"].name == "baseline-seed0"
    assert runs["synthetic.ctc_head-seed0"].name == "synthetic-ctc_head-seed0"
    assert runs["tuning-0003"].name == "tuned-seed0-t3"
    assert runs["synthetic.ctc_head-seed0"].tags == ["removed:ctc_head", "kind:structural"]
    assert runs["dropout-seed0"].tags == ["removed:dropout", "kind:training"]
    assert runs["baseline-seed0"].tags == ["baseline"]


@pytest.mark.slow
def test_run_config_is_auditable(tracked):
    cfg = tracked["cfg"]
    for tid, (run,) in ((t, r) for t, r in tracked["runs"].items() if t != "analysis"):
        rec = tracked["trials"][tid]
        c = run.config
        expected = cfg.resolved(rec.removed, rec.overrides)
        expected["data"]["hf_token"] = "***"  # a secret-looking key never reaches W&B
        assert c["config"] == expected
        assert (c["variant"], c["removed"], c["seed"], c["stage"], c["trial_id"]) == (
            rec.variant, rec.removed, rec.seed, rec.stage, tid)
        assert c["git_commit"] == PROVENANCE["git"]["commit"] and c["git_dirty"] is True
        assert c["packages_hash"] == "feedfacecafebeef" and c["packages"]["torch"] == "2.13.0"
        assert c["host"] == rec.host and c["driver_host"] == "driver-host"
        assert (c["cpu_model"], c["cpu_count"]) == ("Test CPU @ 3GHz", 2)
        assert (c["gpu_model"], c["gpu_count"], c["cuda"], c["torch"]) == ("NVIDIA H100", 1, "12.4", "2.13.0")
        assert c["data_fingerprints"] == rec.data_fingerprints  # learned while it ran
        assert c["study_id"] == tracked["study"].study_id
    runs = {t: r[0] for t, r in tracked["runs"].items()}
    assert runs["synthetic.ctc_head-seed0"].config["config"]["model"]["head"] == "none"
    assert runs["synthetic.ctc_head-seed0"].config["removed_kinds"] == {"ctc_head": "structural"}
    assert runs["tuning-0003"].config["tuning"] == {"number": 3, "params": {"model.dropout": 0.3}}
    assert runs["tuning-0003"].config["config"]["model"]["dropout"] == 0.3


@pytest.mark.slow
def test_history_matches_the_ledger(tracked):
    study = tracked["study"]
    for tid, (run,) in ((t, r) for t, r in tracked["runs"].items() if t != "analysis"):
        ledger = study.history(tid)
        assert run.steps == [row["step"] for row in ledger], tid
        for logged, row in zip(run.history, ledger):
            if tid == "baseline-seed1" and row["step"] == 2:
                continue  # reported twice: see the next test
            assert logged["acc"] == row["acc"] and logged["val_loss"] == row["val_loss"]
            assert logged["attempt"] == row["attempt"]


@pytest.mark.slow
def test_a_trial_restarted_by_the_same_driver_stays_one_run(tracked):
    (run,) = tracked["runs"]["baseline-seed1"]  # one run, though two attempts
    assert run.steps == [0, 1, 2, 3, 4]  # step 2 once: W&B steps only grow
    assert [r["attempt"] for r in run.history] == [1, 1, 1, 2, 2]
    assert run.history[2]["acc"] == metrics_at(2)["acc"]  # its first value; the ledger keeps the last
    assert tracked["study"].history("baseline-seed1")[2]["acc"] == metrics_at(2, 0.3)["acc"]
    assert run.summary["attempts"] == 2 and run.summary["n_errors"] == 1
    assert run.summary["final/acc"] == pytest.approx(tracked["trials"]["baseline-seed1"].final["acc"])


@pytest.mark.slow
def test_summary_holds_final_state_attempts(tracked):
    for tid, (run,) in ((t, r) for t, r in tracked["runs"].items() if t != "analysis"):
        rec = tracked["trials"][tid]
        s = run.summary
        assert s["state"] == rec.state and s["attempts"] == rec.attempts
        for metric, value in (rec.final or {}).items():
            assert s[f"final/{metric}"] == pytest.approx(value)
        assert run.exit_code == (0 if rec.state == COMPLETED else 1)
    failed = tracked["runs"]["dropout-seed0"][0].summary
    assert failed["state"] == FAILED and "out of memory" in failed["error"]
    assert not any(k.startswith("final/") for k in failed)


@pytest.mark.slow
def test_state_files_and_ledger_untouched(tracked):
    study = tracked["study"]
    for tid, rec in tracked["trials"].items():
        state = json.loads((study.trial(tid).path / "wandb.json").read_text()) if rec.state != PENDING else None
        if state is None:
            assert not (study.trial(tid).path / "wandb.json").exists()
            continue
        assert state["finished"] is True and state["state"] == rec.state
        assert state["last_step"] == study.history(tid)[-1]["step"]
        assert study.trial(tid).read() == rec  # the tracker never writes a record


@pytest.mark.slow
def test_analysis_run(tracked):
    (run,) = tracked["runs"]["analysis"]
    assert run.group == tracked["study"].study_id and run.job_type == "analysis"
    assert run.config["study_config"]["name"] == "toy"
    assert run.config["study_config"]["baseline"]["data"]["hf_token"] == "***"
    row = run.history[0]
    assert row["results/_type"] == "table-file" and row["results/nrows"] == 2 and row["results/ncols"] == 15
    assert row["plots/effects/_type"] == "image-file" and row["plots/distributions/_type"] == "image-file"
    assert row["tuning/history/_type"] == "image-file"
    assert row["verdict_table/nrows"] == 2
    s = run.summary
    assert s["verdicts"]["components"]["ctc_head"]["verdict"] == "essential"
    assert (s["verdict/ctc_head"], s["verdict/dropout"]) == ("essential", "inconclusive")
    assert s["best_config"] == {"model": {"dropout": 0.2}}
    assert s["tuning"] == {"best_value": 0.83, "n_trials": 20}
    assert s["trials/ablation/completed"] == 5 and s["trials/ablation/failed"] == 1
    files = run.path.parent / "files"
    for name in ("results.csv", "verdicts.json", "best_config.yaml", "tuning/results.json", "report.html",
                 "requirements.txt"):
        assert name in run.files and (files / name).exists()
    assert ("report", ["report.html"]) in [(a["type"], a["files"]) for a in run.artifacts]
    assert "wandb==" in (files / "requirements.txt").read_text()  # the driver's packages
    table = json.loads((files / row["results/path"]).read_text())
    assert table["columns"][:6] == ["group", "variant", "removed", "metric", "n", "mean"]
    assert table["data"][1][:7] == [None, "ctc_head", "ctc_head", "acc", 1, 0.7, None]


@pytest.mark.slow
def test_driver_calls_are_quiet(tracked):
    # one line: where the offline runs are and how to upload them (speed: benchmarks/tracking.py)
    assert len(tracked["notices"]) == 1 and "wandb sync" in tracked["notices"][0], tracked["notices"]
    assert tracked["tracker"].errors == []


def assert_no_secrets(*roots: Path) -> int:
    needles = [s.encode() for s in (FAKE_WANDB_KEY, FAKE_AWS_SECRET, FAKE_HF_TOKEN)]
    checked = 0
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                checked += 1
                for needle in needles:
                    assert needle not in data, f"a secret leaked into {path}"
    return checked


@pytest.mark.slow
def test_no_secret_anywhere(tracked):
    """No API key or environment secret in the study dir, the offline runs or wandb's own dirs."""
    assert assert_no_secrets(tracked["study"].path, tracked["home"]) > 20
    for line in tracked["notices"]:
        assert FAKE_WANDB_KEY not in line and FAKE_AWS_SECRET not in line


# ---------------------------------------------------------------- restart: a killed driver, a new one

FIRST_DRIVER = textwrap.dedent("""
    import json, os, signal, sys, time
    from orchestrator.config import parse_config
    from orchestrator.ledger import Study
    from orchestrator.tracking import make_tracker
    from orchestrator.tracking import payload as P
    from orchestrator.tracking.offline import last_step
    study, config, prov, tid = Study(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
    tracker = make_tracker(parse_config(config), study, prov, echo=lambda line: None)
    record = study.trial(tid).read()
    tracker.trial_update(record)
    run_id = P.run_id(study.study_id, tid, record.started_at)
    deadline = time.time() + 60
    while time.time() < deadline:
        tracker.poll()
        time.sleep(0.05)
        if last_step(study.path / "wandb", run_id) == 2:  # wandb-core wrote step 2 to its log
            break
    os.kill(os.getpid(), signal.SIGKILL)  # the driver dies: no close(), no finish()
""")


@pytest.mark.slow
def test_restarted_trial_keeps_one_run(wandb_env, tmp_path):
    cfg, study = new_study(tmp_path)
    tid = "ctc_head-seed1"
    drv = Driver(study, NullTracker())
    rec = drv.start(record(tid, "ctc_head", ["ctc_head"], seed=1))
    for s in range(3):
        drv.report(rec, s, **metrics_at(s))
    proc = subprocess.run([sys.executable, "-c", FIRST_DRIVER, str(study.path), json.dumps(CONFIG),
                           json.dumps(PROVENANCE), tid], cwd=REPO, timeout=90, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert not (study.trial(tid).path / "wandb.json").exists()  # written when a run is finished
    assert P.run_id(study.study_id, tid, rec.started_at) in read_runs(study.path / "wandb")

    # `ablator resume`: a new driver, a new tracker; the worker restarts the trial from its
    # epoch-1 checkpoint, so step 2 is reported again (a new value), then 3 and 4
    tracker = make_tracker(cfg, study, PROVENANCE, echo=lambda line: None)
    drv.tracker = tracker
    drv.update(rec)  # the driver first replays every record it finds
    rec.add_error("worker died")  # attempt 1
    rec = drv.start(rec)
    assert rec.attempts == 2
    for s in (2, 3, 4):
        drv.report(rec, s, **metrics_at(s, offset=0.5))
        tracker.poll()
        time.sleep(0.05)
    rec = drv.finish(rec)
    tracker.close()

    runs = read_runs(study.path / "wandb")
    assert list(runs) == [P.run_id(study.study_id, tid, rec.started_at)]  # ONE run id
    segments = runs[next(iter(runs))]
    assert len(segments) == 2  # one log per driver; `wandb sync` uploads them as one resumed run
    first, second = segments
    assert first.exit_code is None and second.exit_code == 0  # killed: no exit record
    steps = first.steps + second.steps
    # nothing logged twice, nothing lost; how much of the killed driver's last rows reached its
    # log is up to timing, and the new driver logs from there (it trusts the log, not wandb.json)
    assert steps == [0, 1, 2, 3, 4] and second.steps[-2:] == [3, 4]
    assert [r["acc"] for r in second.history][-2:] == [metrics_at(s, 0.5)["acc"] for s in (3, 4)]
    assert second.summary["attempts"] == 2 and second.summary["state"] == COMPLETED
    assert second.summary["final/acc"] == pytest.approx(rec.final["acc"])
    assert rec.final["acc"] == study.history(tid)[-1]["acc"]  # the ledger's last line per step wins
    state = json.loads((study.trial(tid).path / "wandb.json").read_text())
    assert state["finished"] and state["last_step"] == 4 and state["attempts"] == 2

    # a third driver that only replays the finished record logs nothing more
    tracker = make_tracker(cfg, study, PROVENANCE, echo=lambda line: None)
    tracker.trial_update(rec)
    tracker.close()
    assert len(read_runs(study.path / "wandb")[first.run_id]) == 2


@pytest.mark.slow
def test_a_new_driver_trusts_the_run_logs_not_the_state_file(wandb_env, tmp_path):
    """A driver killed right after handing rows to wandb: they may never have reached the log."""
    cfg, study = new_study(tmp_path)
    drv = Driver(study, NullTracker())
    rec = drv.start(record("baseline-seed0", "baseline", []))
    for s in range(5):
        drv.report(rec, s, **metrics_at(s))
    run_id = P.run_id(study.study_id, rec.trial_id, rec.started_at)
    (study.trial(rec.trial_id).path / "wandb.json").write_text(
        json.dumps({"run_id": run_id, "last_step": 4, "finished": False}))
    drv.tracker = make_tracker(cfg, study, PROVENANCE, echo=lambda line: None)
    drv.update(rec)
    rec = drv.finish(rec)
    drv.tracker.close()
    (run,) = runs_by_trial(study.path / "wandb")[rec.trial_id]
    assert run.run_id == run_id and run.steps == [0, 1, 2, 3, 4] and run.exit_code == 0


@pytest.mark.slow
def test_a_lost_state_file_only_makes_the_next_driver_write_the_trial_again(wandb_env, tmp_path):
    """wandb.json is not fsynced: a power cut may take it (the test deletes it, as that would;
    a power cut cannot be caused here). The next driver finds the trial unwritten and finishes
    its run again: every step once, the final state in its summary."""
    cfg, study = new_study(tmp_path)
    tracker = make_tracker(cfg, study, PROVENANCE, echo=lambda line: None)
    drv = Driver(study, tracker)
    rec = drv.start(record("baseline-seed0", "baseline", []))
    for s in range(3):
        drv.report(rec, s, **metrics_at(s))
    rec = drv.finish(rec)
    tracker.close()
    state = study.trial(rec.trial_id).path / "wandb.json"
    assert json.loads(state.read_text())["finished"]
    state.unlink()
    assert pending.unwritten(study) == [rec.trial_id]
    tracker = make_tracker(cfg, study, PROVENANCE, echo=lambda line: None)
    tracker.close()
    assert pending.unwritten(study) == [] and json.loads(state.read_text())["last_step"] == 2
    segments = runs_by_trial(study.path / "wandb")[rec.trial_id]
    assert len({run.run_id for run in segments}) == 1
    assert sum((run.steps for run in segments), []) == [0, 1, 2]  # no step logged twice
    assert segments[-1].exit_code == 0 and segments[-1].summary["state"] == COMPLETED


# ---------------------------------------------------------------- failures


@pytest.mark.slow
def test_wandb_failure_warns_once_and_the_study_completes(wandb_env, tmp_path, monkeypatch):
    """Online with an unreachable server: one warning line, then everything lands offline."""
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    config = {**CONFIG, "tracking": {"wandb": {"mode": "online"}}}
    cfg, study = new_study(tmp_path, config)
    notices: list[str] = []
    tracker = make_tracker(cfg, study, PROVENANCE, echo=notices.append, init_timeout=2.0)
    assert tracker.mode == "online"
    drv = Driver(study, tracker)
    recs = [drv.start(record(f"baseline-seed{s}", "baseline", [], seed=s)) for s in range(2)]
    for step in range(3):
        for rec in recs:
            drv.report(rec, step, **metrics_at(step))
        tracker.poll()
    recs = [drv.finish(rec) for rec in recs]
    tracker.log_analysis(study.path)
    tracker.close(timeout=60)
    # one warning; on a loaded machine close() may also say how many trials it still writes (not a warning)
    warnings = [n for n in notices if "still to write" not in n]
    assert len(warnings) == 1, notices
    assert "online failed" in warnings[0] and "wandb sync" in warnings[0]
    assert FAKE_WANDB_KEY not in "".join(notices)
    assert tracker.mode == "offline"
    runs = runs_by_trial(study.path / "wandb")
    for rec in recs:
        (run,) = runs[rec.trial_id]
        assert run.steps == [0, 1, 2] and run.summary["final/acc"] == pytest.approx(rec.final["acc"])
    assert all(study.trial(r.trial_id).read().state == COMPLETED for r in recs)
    assert_no_secrets(tmp_path, wandb_env)


@pytest.mark.slow
def test_offline_failure_turns_tracking_off(wandb_env, tmp_path):
    cfg, study = new_study(tmp_path)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where wandb wants its directory")
    notices: list[str] = []
    tracker = make_tracker(cfg, study, PROVENANCE, echo=notices.append, wandb_dir=blocker)
    drv = Driver(study, tracker)
    rec = drv.start(record("baseline-seed0", "baseline", []))
    drv.report(rec, 0, **metrics_at(0))
    tracker.poll()
    rec = drv.finish(rec)
    tracker.log_analysis(study.path)
    tracker.close(timeout=30)
    assert tracker.mode == "disabled"
    # the hint, one warning, then how many trials W&B lacks and where they are listed
    assert len(notices) == 3 and "offline failed" in notices[1], notices
    assert "1 trial(s) and the analysis run not written" in notices[2] and "ablator sync" in notices[2]
    assert json.loads((study.path / "wandb_pending.json").read_text())["trials"] == ["baseline-seed0"]
    assert study.trial("baseline-seed0").read().state == COMPLETED



# ---------------------------------------------------------------- scale: open-run cap, no links


@pytest.mark.slow
def test_no_absolute_symlink_in_any_run(tracked):
    from orchestrator.tracking.offline import absolute_links

    assert (tracked["study"].path / "wandb").is_dir()
    assert absolute_links(tracked["study"].path) == []
    assert not (tracked["study"].path / "wandb_pending.json").exists()  # everything was written


@pytest.mark.slow
def test_more_running_trials_than_open_runs(wandb_env, tmp_path):
    """Six trials run at once under a cap of two open runs: runs are closed while idle and
    resumed under the same id; every step lands once."""
    cfg, study = new_study(tmp_path)
    tracker = make_tracker(cfg, study, PROVENANCE, echo=lambda line: None, writers=2, max_open_runs=2,
                           reopen_after=0.0, poll_interval=0.1)
    drv = Driver(study, tracker)
    recs = [drv.start(record(f"baseline-seed{s}", "baseline", [], seed=s)) for s in range(6)]
    for step in range(4):
        for rec in recs:
            drv.report(rec, step, **metrics_at(step))
        tracker.poll()
        time.sleep(0.4)  # the writers catch up, so runs are closed and resumed between steps
    recs = [drv.finish(rec) for rec in recs]
    tracker.close()
    assert 1 <= tracker.peak_open <= 2
    runs = read_runs(study.path / "wandb")
    assert len(runs) == 6
    for rec in recs:
        segments = runs[P.run_id(study.study_id, rec.trial_id, rec.started_at)]
        steps = [s for seg in segments for s in seg.steps]
        assert steps == [0, 1, 2, 3], (rec.trial_id, steps)
        assert segments[-1].summary["state"] == COMPLETED and segments[-1].exit_code == 0
    assert max(len(segments) for segments in runs.values()) > 1  # some run was closed and resumed


@pytest.mark.slow
def test_segments_keep_their_order_when_wandb_names_them_the_other_way(wandb_env, tmp_path, monkeypatch):
    """A run closed and resumed: its segments are numbered, read back in that order, and their
    start times (the order `wandb sync` uploads a run's files in) agree, even when wandb's
    second in the directory names says otherwise. That disagreement is forced: wandb names a
    directory from `time.time()` in wandb_init, faked here to run 30 s ahead while the first
    segment opens (a real second boundary between the two clocks cannot be hit on purpose)."""
    import wandb.sdk.wandb_init as wandb_init

    from orchestrator.tracking import offline, runs

    class AheadClock:
        def __getattr__(self, name):
            return getattr(time, name)

        @staticmethod
        def time():
            return time.time() + 30.0

    cfg, study = new_study(tmp_path)
    wb, rid = runs.WandbStudy(cfg, study, PROVENANCE, "offline"), "segment-order"
    for steps, clock in (((0, 1), AheadClock()), ((2, 3), time)):
        monkeypatch.setattr(wandb_init, "time", clock)
        run = wb.init(id=rid, name="segments", job_type="ablation")
        for step in steps:
            run.log(metrics_at(step), step=step)
        wb.finish(run)
    names = [p.parent.name for p in offline.run_files(wb.runs_dir, rid)]
    assert [offline.segment_number(n) for n in names] == [1, 2]
    assert sorted(names, key=lambda n: n.split("run-", 1)[1]) == names[::-1]  # wandb's second: reversed
    segments = read_runs(wb.runs_dir)[rid]
    assert [s for seg in segments for s in seg.steps] == [0, 1, 2, 3]
    assert 0 < segments[0].start_time < segments[1].start_time
    # a later driver continues the numbering from the logs on disk
    assert runs.WandbStudy(cfg, study, PROVENANCE, "offline").next_segment(rid) == 3


@pytest.mark.slow
def test_a_wandb_failure_lists_the_unwritten_trials_and_sync_writes_them(wandb_env, tmp_path):
    """A real fault: the wandb directory is replaced by a file mid-study, so W&B cannot create
    runs. The trials it lacks are listed; `ablator sync` writes them once the disk is back."""
    cfg, study = new_study(tmp_path)
    (study.path / "report.md").write_text("# report\n")
    (study.path / "results.csv").write_text("variant,metric,mean\nbaseline,acc,0.8\n")
    notices: list[str] = []
    tracker = make_tracker(cfg, study, PROVENANCE, echo=notices.append)
    drv = Driver(study, tracker)
    first = drv.start(record("baseline-seed0", "baseline", []))
    for s in range(3):
        drv.report(first, s, **metrics_at(s))
    first = drv.finish(first)
    runs_dir = study.path / "wandb"
    deadline = time.time() + 60
    while not (study.trial("baseline-seed0").path / "wandb.json").exists():
        assert time.time() < deadline, "the first trial was never written"
        time.sleep(0.05)
    aside = tmp_path / "wandb-aside"
    runs_dir.rename(aside)
    runs_dir.write_text("the disk under W&B failed")  # every new run fails to be created
    later = []
    for s in (1, 2):
        rec = drv.start(record(f"baseline-seed{s}", "baseline", [], seed=s))
        for step in range(3):
            drv.report(rec, step, **metrics_at(step))
        later.append(drv.finish(rec))
    tracker.log_analysis(study.path)
    tracker.close()
    assert tracker.mode == "disabled"
    listed = json.loads((study.path / "wandb_pending.json").read_text())
    assert listed["trials"] == ["baseline-seed1", "baseline-seed2"] and listed["analysis_run"] is True
    assert any("2 trial(s) and the analysis run not written" in n and "ablator sync" in n for n in notices)

    runs_dir.unlink()
    aside.rename(runs_dir)
    # `ablator sync` as from a shell: not through the W&B service this test process started (wandb
    # exports WANDB_SERVICE, and a child that inherits it writes through the parent's service)
    shell = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    sync = subprocess.run([sys.executable, "-c", "from orchestrator.cli import app; app()", "sync",
                           str(study.path)], check=False, cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=shell)
    assert sync.returncode == 0, sync.stdout + sync.stderr
    assert "2 trial(s) written" in " ".join(sync.stdout.split())  # rich wraps long lines
    assert not (study.path / "wandb_pending.json").exists()
    by_trial = runs_by_trial(runs_dir)
    for rec in [first, *later]:
        (run,) = by_trial[rec.trial_id]
        assert run.steps == [0, 1, 2] and run.summary["state"] == COMPLETED
    assert "analysis" in by_trial, sync.stdout + sync.stderr  # the analysis run too
    (analysis,) = by_trial["analysis"]
    assert analysis.summary["wandb/trials_not_written"] == 0
    again = subprocess.run([sys.executable, "-c", "from orchestrator.cli import app; app()", "sync",
                            str(study.path)], check=False, cwd=REPO, capture_output=True, text=True, timeout=120,
                           env=shell)
    assert again.returncode == 0 and "nothing to write" in " ".join(again.stdout.split())


@pytest.mark.slow
def test_a_tracker_closed_at_once_still_writes_the_listed_analysis_run(wandb_env, tmp_path, monkeypatch):
    """`ablator sync` closes its tracker right after making it, sometimes before a writer has read
    what an earlier driver listed: the listed analysis run is backlog all the same, written, never
    dropped from the list unwritten. The race is made certain by holding the writer until close()
    has begun (a fake of timing only: which thread wins cannot be caused for real on demand)."""
    from orchestrator.tracking import pending
    from orchestrator.tracking import tracker as tracker_module

    cfg, study = new_study(tmp_path)
    (study.path / "report.md").write_text("# report\n")
    (study.path / "results.csv").write_text("variant,metric,mean\nbaseline,acc,0.8\n")
    pending.record(study.path, [], True, "W&B failed")
    made = []
    real = tracker_module.has_report

    def after_close(path):
        deadline = time.time() + 30
        while not (made and made[0]._closing.is_set()) and time.time() < deadline:
            time.sleep(0.01)
        return real(path)

    monkeypatch.setattr(tracker_module, "has_report", after_close)
    made.append(make_tracker(cfg, study, PROVENANCE, echo=lambda line: None))
    made[0].close()
    assert not (study.path / "wandb_pending.json").exists()
    (analysis,) = runs_by_trial(study.path / "wandb")["analysis"]
    assert analysis.summary["wandb/trials_not_written"] == 0


@pytest.mark.slow
def test_a_driver_that_stops_early_lists_the_backlog_and_the_next_one_writes_it(wandb_env, tmp_path):
    """close() cut short (here: a zero timeout, as when the driver must stop) lists every trial
    W&B lacks; the next driver's tracker (`ablator resume`) writes them and drops the list."""
    cfg, study = new_study(tmp_path)
    notices: list[str] = []
    tracker = make_tracker(cfg, study, PROVENANCE, echo=notices.append, writers=1)
    drv = Driver(study, tracker)
    recs = []
    for s in range(200):  # far more than one writer finishes before the cut
        rec = drv.start(record(f"baseline-seed{s}", "baseline", [], seed=s))
        for step in range(3):
            drv.report(rec, step, **metrics_at(step))
        recs.append(drv.finish(rec))
    tracker.close(timeout=0.0)
    listed = json.loads((study.path / "wandb_pending.json").read_text())["trials"]
    written = {tid for tid in (r.trial_id for r in recs)
               if (study.trial(tid).path / "wandb.json").exists()}
    assert listed and set(listed) == {r.trial_id for r in recs} - written
    assert any(f"{len(listed)} trial(s) not written" in n for n in notices), notices

    import wandb

    wandb.teardown()  # the stopped driver exits: its W&B service ends, and the runs it held are free
    tracker = make_tracker(cfg, study, PROVENANCE, echo=lambda line: None)
    tracker.close()
    assert not (study.path / "wandb_pending.json").exists()
    by_trial = runs_by_trial(study.path / "wandb")
    for rec in recs:
        steps = [s for run in by_trial[rec.trial_id] for s in run.steps]
        assert steps == [0, 1, 2] and by_trial[rec.trial_id][-1].summary["state"] == COMPLETED


@pytest.mark.slow
def test_close_while_an_interrupt_stops_the_driver_gives_wandb_a_grace_then_lists(wandb_env, tmp_path,
                                                                                    monkeypatch):
    """Reached while Ctrl-C (or SIGTERM as Interrupted) unwinds the driver, close does not wait for
    the whole backlog: after the grace (here shortened to 0 s) it lists what W&B lacks."""
    from orchestrator.tracking import tracker as tracker_module

    monkeypatch.setattr(tracker_module, "INTERRUPT_GRACE", 0.0)
    cfg, study = new_study(tmp_path)
    notices: list[str] = []
    tracker = make_tracker(cfg, study, PROVENANCE, echo=notices.append, writers=1)
    drv = Driver(study, tracker)
    for s in range(300):  # far more than one writer finishes before the interrupt (~25 ms a run)
        rec = drv.start(record(f"baseline-seed{s}", "baseline", [], seed=s))
        drv.report(rec, 0, **metrics_at(0))
        drv.finish(rec)
    with pytest.raises(KeyboardInterrupt):
        try:
            raise KeyboardInterrupt
        finally:
            tracker.close()  # as the launcher's `finally` does
    listed = json.loads((study.path / "wandb_pending.json").read_text())
    assert listed["trials"] and "stopped W&B after 0 s" in listed["reason"]
    assert any(f"{len(listed['trials'])} trial(s) not written" in n for n in notices), notices
