"""load_study: a study's results as typed data and DataFrames, read from its directory alone (study dirs written
directly from the simulated formula; no Ray). The DataFrames are checked against the files themselves."""

from __future__ import annotations

import html as html_lib
import json
import math
import re
import subprocess
import sys
import textwrap

import pytest
import yaml
from rich.console import Console

from orchestrator import StudyResults, load_study
from orchestrator.analysis.study_analysis import analyse
from orchestrator.config import parse_config
from orchestrator.errors import ConfigError, LedgerDamaged, StudyError
from orchestrator.ledger import Study
from orchestrator.session import write_report
from tests.support.simulated import simulate_records, simulated_config

EFFECTS = {"a": 2.0, "b": 0.0, "c": 0.5}
KW = {"pairs": [("a", "b")], "interaction": {"a+b": 1.0}, "n_bootstrap": 100, "min_effect": 0.3}
FORBIDDEN = ("torch", "ray", "wandb", "matplotlib", "optuna")


def make_study(path, pending=(), report: bool = True) -> Study:
    cfgd = simulated_config(EFFECTS, 0.5, 4, **KW)
    study = Study.create(path, yaml.safe_dump(cfgd, sort_keys=False), cfgd["name"])
    for r in simulate_records(EFFECTS, 0.5, 4, pending=pending, **KW):
        study.trial(r.trial_id).write(r)
    if report:
        write_report(study.path, Console(quiet=True))
    return study


def same(a, b) -> bool:
    """Equal, NaN/None (a number that could not be computed) equal to NaN/None."""
    def missing(x) -> bool:
        return x is None or (isinstance(x, float) and math.isnan(x))

    return (missing(a) and missing(b)) or a == b or (
        isinstance(a, float) and isinstance(b, float) and math.isclose(a, b, rel_tol=1e-12))


def files_of(study: Study) -> dict:
    return {p.relative_to(study.path): p.stat().st_mtime_ns for p in study.path.rglob("*") if p.is_file()}


def test_a_finished_study_reads_as_its_files_say(tmp_path, monkeypatch):
    study = make_study(tmp_path / "study")
    tid = "baseline-seed1"
    for step in range(3):
        study.trial(tid).append_metrics({"step": step, "attempt": 1, "time": 1.0 + step, "score": 10.0 + step})
    before = files_of(study)
    monkeypatch.chdir(tmp_path)  # any working directory
    res = load_study("study")

    assert isinstance(res, StudyResults) and res.source == "verdicts.json" and not res.interim
    assert res.config.name == study.info["name"]
    doc = json.loads((study.path / "verdicts.json").read_text())
    assert json.loads(res.verdicts.model_dump_json()) == doc
    assert files_of(study) == before  # reading writes nothing

    trials = res.trials().set_index("trial_id")
    on_disk = {p.parent.name: json.loads(p.read_text()) for p in study.trials_dir.glob("*/record.json")}
    assert set(trials.index) == set(on_disk) and len(trials) == 20
    for tid_, rec in on_disk.items():
        row = trials.loc[tid_]
        for col in ("stage", "purpose", "variant", "seed", "state", "attempts", "duration_s"):
            assert same(row[col], rec[col]), (tid_, col)
        for metric, value in rec["final"].items():
            assert same(float(row[metric]), value), (tid_, metric)

    effects = res.effects()
    comps = effects[(effects.row == "component") & effects.primary]
    assert list(comps.name) == list(doc["components"])
    for _, row in comps.iterrows():
        want = doc["components"][row["name"]]
        assert row.verdict == want["verdict"] and row.n == want["n"] and row.kind == want["kind"]
        for col, value in (("effect", want["effect"]), ("ci_low", want["ci_sim"][0]), ("ci_high", want["ci_sim"][1]),
                           ("ci_level", want["ci_sim_level"]), ("p_holm", want["deciding"]["p_holm"]),
                           ("p", want["deciding"]["p"])):
            assert same(row[col], value), (row["name"], col)
        assert row.test == want["deciding"]["test"]
    secondary = effects[(effects.row == "component") & ~effects.primary]
    assert set(secondary.metric) == {"loss"} and len(secondary) == len(EFFECTS)
    for _, row in secondary.iterrows():
        assert same(row.effect, doc["components"][row["name"]]["secondary"]["loss"]["effect"])
    pair = effects[effects.row == "pair"].iloc[0]
    assert pair["name"] == "a+b" and same(pair.effect, doc["interactions"]["a+b"]["effect"])
    assert not effects.interim.any()

    history = res.history(tid)
    assert list(history.step) == [0, 1, 2] and list(history.score) == [10.0, 11.0, 12.0]
    with pytest.raises(StudyError, match="no trial 'nope'"):
        res.history("nope")


def test_an_older_verdicts_layout_is_re_analysed_from_the_records(tmp_path):
    study = make_study(tmp_path / "study")
    path = study.path / "verdicts.json"
    current = load_study(study.path).effects()
    old = {k: v for k, v in json.loads(path.read_text()).items() if k != "layout"}  # layout 1 had no layout field
    path.write_text(json.dumps(old))
    res = load_study(study.path)
    assert res.source == "records" and res.verdicts.layout == 2
    assert res.effects().equals(current)  # the same numbers, from the records
    assert json.loads(path.read_text()) == old  # and the file is left as it is


def test_a_running_study_reads_interim_rows_with_the_peeking_adjustment(tmp_path):
    study = make_study(tmp_path / "study", pending=[("no-b", 3), ("no-c", 3)], report=False)
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from orchestrator.ledger import Study
            with Study({str(study.path)!r}).lock():
                print("locked", flush=True)
                sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert study.holder() is not None
        res = load_study(study.path)
    finally:
        holder.communicate("", timeout=60)
    assert res.interim and res.source == "records" and not res.verdicts.complete
    assert not (study.path / "verdicts.json").exists()
    effects = res.effects()
    assert effects.interim.all()
    plain = analyse(study.records(), parse_config(simulated_config(EFFECTS, 0.5, 4, **KW)), study.path)
    plain_comps = plain.groups[plain.main_group].components
    comps = effects[(effects.row == "component") & effects.primary].set_index("name")
    for name, row in comps.iterrows():
        assert row.n == plain_comps[name].n
    # a look before all seeds pays for peeking (a row's repeated p-value is the running minimum over its looks,
    # so only a row whose p-values fall as seeds arrive is sure to exceed its plain one: a, a true effect of 2.0)
    assert comps.loc["a", "p_holm"] > plain_comps["a"].deciding.p_holm
    trials = res.trials().set_index("trial_id")
    assert trials.loc["no-b-seed3", "state"] == "PENDING"


def test_a_damaged_study_names_the_file_and_what(tmp_path):
    with pytest.raises(StudyError, match="not a study directory"):
        load_study(tmp_path / "nothing")

    study = make_study(tmp_path / "study")
    verdicts = study.path / "verdicts.json"
    verdicts.write_text(verdicts.read_text()[:100])
    with pytest.raises(LedgerDamaged) as err:
        load_study(study.path)
    assert err.value.path == str(verdicts) and "not valid JSON" in str(err.value)

    data = json.loads((tmp_path / "study" / "study.json").read_text())
    study = make_study(tmp_path / "s2")
    with open(study.index.path, "a") as fh:
        fh.write('{"trial_id": "baseline-seed0", \n')
    with pytest.raises(LedgerDamaged) as err:
        load_study(study.path)
    assert err.value.path == str(study.index.path) and "index.jsonl:" in str(err.value)

    study = make_study(tmp_path / "s3")
    (study.path / "study.json").write_text(json.dumps({"study_id": data["study_id"]}))
    with pytest.raises(LedgerDamaged, match="needs name and study_id"):
        load_study(study.path)

    study = make_study(tmp_path / "s4")
    study.config_path.write_text(study.config_path.read_text().replace("seeds:", "seeds: [oops\nx:"))
    with pytest.raises(ConfigError) as err:
        load_study(study.path)
    assert str(study.config_path) in str(err.value)


@pytest.mark.slow
def test_reading_results_imports_no_heavy_library(tmp_path):
    """In a fresh interpreter, from another directory: no torch, ray, wandb, matplotlib or optuna."""
    make_study(tmp_path / "study")
    code = textwrap.dedent(f"""
        import sys
        import orchestrator
        res = orchestrator.load_study("study")
        res.trials(), res.effects(), res.verdicts.components["a"].verdict, res.tuning()
        print(sorted(m for m in {FORBIDDEN!r} if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_failed_plot_is_flagged_in_verdicts_json_as_in_the_report(tmp_path):
    """One list of flags, one write: a plot that cannot be saved (its file name taken by a directory) is in
    verdicts.json, report.md and what load_study reads."""
    study = make_study(tmp_path / "study", report=False)
    (study.path / "plots" / "effects.png").mkdir(parents=True)
    out = write_report(study.path, Console(quiet=True))
    plot_flags = [f for f in out.flags if f.kind == "plot"]
    assert len(plot_flags) == 1 and "plot for group default failed" in plot_flags[0].message
    doc = json.loads((study.path / "verdicts.json").read_text())
    assert [f["message"] for f in doc["flags"] if f["kind"] == "plot"] == [plot_flags[0].message]
    assert plot_flags[0].message in (study.path / "report.md").read_text()
    assert [f for f in load_study(study.path).verdicts.flags if f.kind == "plot"] == plot_flags


def test_report_md_html_and_the_wandb_summary_render_one_model(tmp_path):
    """Every number of the verdicts table comes from one Analysis: report.md, report.html, the W&B summary and
    load_study agree on each component's effect, interval, Holm p and verdict."""
    from orchestrator.analysis import tables
    from orchestrator.analysis.html import build_html
    from orchestrator.analysis.report import analyse_study, render_markdown
    from orchestrator.analysis.study_analysis import verdicts_payload
    from orchestrator.tracking.payload import verdict_table, verdicts_summary

    study = make_study(tmp_path / "study", report=False)
    analysis = analyse_study(study.path)
    config = parse_config(simulated_config(EFFECTS, 0.5, 4, **KW))
    md = render_markdown(analysis, config, study, {})
    page = build_html(study.path, md)
    wandb_summary = verdicts_summary(verdicts_payload(analysis))
    columns, rows = verdict_table(verdicts_payload(analysis))

    md_rows = {cells[0]: cells for cells in ([c.strip() for c in ln.strip("|").split("|")] for ln in md.splitlines())
               if cells[0] in EFFECTS}
    html_rows = {cells[0]: cells for cells in (
        [html_lib.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
        for r in re.findall(r"<tr>(.*?)</tr>", page, re.S)) if cells and cells[0] in EFFECTS}
    table = {row[0]: dict(zip(columns, row)) for row in rows}
    assert set(md_rows) == set(html_rows) == set(table) == set(EFFECTS)
    for c, r in analysis.groups["default"].components.items():
        cells = dict(zip(tables.SUMMARY_HEADER, md_rows[c]))
        assert html_rows[c] == md_rows[c]  # report.html shows report.md's table
        assert wandb_summary[f"effect/{c}"] == r.effect == table[c]["effect"]
        assert wandb_summary[f"verdict/{c}"] == r.verdict == table[c]["verdict"]
        assert wandb_summary["verdicts"]["components"][c]["ci_sim"] == r.ci_sim
        assert cells["delta [simultaneous CI]"].startswith(f"{tables.signed(r.effect)} {tables.ci_text(r.ci_sim)}")
        d = r.deciding
        assert cells["deciding test: p (Holm)"] == f"{d.claim} ({d.test}): {tables._p(d.p_holm)} (raw {tables._p(d.p)})"
        assert cells["verdict"].startswith(r.verdict)
        assert cells["delta [simultaneous CI]"].startswith(tables.signed(wandb_summary[f"effect/{c}"]))


def test_the_tuning_results_read_typed(tmp_path):
    study = make_study(tmp_path / "study")
    res = load_study(study.path)
    assert res.tuning() is None  # before the tuning stage ran
    conf = {"method": "paired", "verdict": "essential", "n": 3, "effect": 0.5, "ci": [0.1, 0.9], "p": 0.01,
            "outcome": "helped", "alpha": 0.05, "min_effect": 0.0, "removed": ["b"],
            "tuned_values": {"0": 12.0, "1": 12.5, "7": 12.1}}
    (study.path / "tuning").mkdir()
    results = study.path / "tuning" / "results.json"
    results.write_text(json.dumps({"metric": "score", "n_trials": 12, "confirmation": conf,
                                   "best": {"trial_id": "tune-0004", "number": 4, "value": 12.5, "params": {"x": 1}}}))
    tuning = res.tuning()
    assert tuning["best"].line() == "Best trial `tune-0004`: score = 12.5" and tuning["best"].params == {"x": 1}
    assert tuning["confirmation"].outcome == "helped" and tuning["confirmation"].tuned_values["7"] == 12.1
    assert tuning["confirmation"].ci == [0.1, 0.9] and tuning["n_trials"] == 12
    results.write_text(json.dumps({"metric": "score", "best": {"value": 1.0}}))  # no trial id
    with pytest.raises(LedgerDamaged) as err:
        res.tuning()
    assert err.value.path == str(results) and "not the tuning stage's results" in str(err.value)
