"""The report renders from a study dir with failed trials, missing seeds, non-finite metrics,
a single seed, contamination, sweeps and tiers (study dirs written directly; no Ray)."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from rich.console import Console

from orchestrator.config import parse_config
from orchestrator.errors import LedgerDamaged
from orchestrator.ledger import Study, TrialRecord
from orchestrator.ledger.verdicts_json import Comparison, Verdicts, read_verdicts, write_verdicts
from orchestrator.session import write_report
from tests.support.simulated import records_for, simulate_records, simulated_config

HEADER = ("| component | kind | baseline | ablated (mean ± std) | delta [simultaneous CI] | deciding test: p (Holm) "
          "| p vs 0 (Holm) | MDE | verdict |")


def make_study(path, cfgd: dict, records: list[TrialRecord]) -> Study:
    study = Study.create(path, yaml.safe_dump(cfgd, sort_keys=False), cfgd["name"])
    for r in records:
        study.trial(r.trial_id).write(r)
    return study


def report(study: Study, width: int = 200) -> tuple[Verdicts, str, str]:
    """`ablator report` as the session composes it: the analysis, with the tuning section kept."""
    buf = io.StringIO()
    out = write_report(study.path, Console(file=buf, width=width))
    return out, (study.path / "report.md").read_text(), buf.getvalue()


def test_report_with_failed_missing_and_nonfinite_trials(tmp_path):
    effects = {"a": 2.0, "b": 0.0, "c": 0.5, "d": -1.0}
    kw = {"pairs": [("a", "b")], "interaction": {"a+b": 1.0}, "min_effect": 0.3, "kinds": {"c": "inference"},
              "n_bootstrap": 1000}
    cfgd = simulated_config(effects, 0.5, 5, **kw)
    recs = simulate_records(effects, 0.5, 5, failed=[("no-a", 2)], nonfinite=[("no-d", 3)],
                            missing=[("no-c", 4)], pending=[("no-b", 1)], **kw)
    study = make_study(tmp_path / "study", cfgd, recs)
    out, md, console = report(study)

    for name in ("report.md", "results.csv", "verdicts.json", "plots/effects.png", "plots/distributions.png"):
        assert (study.path / name).exists(), name
    assert HEADER in md
    assert "no-a lacks seed(s) 2" in md and "FAILED after 3 attempt(s)" in md
    assert "no-c lacks seed(s) 4" in md and "never run" in md
    assert "no-b lacks seed(s) 1" in md and "PENDING" in md
    assert "non-finite score" in md and "seed 3: nan" in md
    assert "paired on 4 seed(s) only" in md  # says which seeds the comparison used
    assert "provisional" in md  # a pending trial
    assert "### Interaction pairs" in md
    assert "## What the study cost" in md
    assert "Verdicts" in console and "lacks seed(s)" in console

    v = json.loads((study.path / "verdicts.json").read_text())
    assert v["primary"] == {"name": "score", "mode": "max"}
    assert set(v["components"]) == set(effects)
    for c in effects:
        assert set(v["components"][c]) >= {"kind", "verdict", "effect", "ci", "p", "p_holm", "n"}
    assert v["components"]["c"]["kind"] == "inference"
    assert v["components"]["a"]["n"] == 4
    assert v["complete"] is False
    assert v["groups"]["default"]["components"] == v["components"]
    assert json.loads(out.model_dump_json()) == v  # verdicts.json is the returned model's dump

    with open(study.path / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    no_a = next(r for r in rows if r["variant"] == "no-a" and r["metric"] == "score")
    assert no_a["n"] == "4" and no_a["failed"] == "2"


def test_single_seed_says_it_cannot_conclude(tmp_path):
    effects = {"a": 2.0, "b": 0.0}
    cfgd = simulated_config(effects, 0.5, [0])
    study = make_study(tmp_path / "one", cfgd, simulate_records(effects, 0.5, [0]))
    out, md, _ = report(study)
    assert HEADER in md
    assert "cannot conclude" in md
    assert all(c.verdict == "inconclusive" for c in out.components.values())
    assert all(c.n == 1 for c in out.components.values())


def test_empty_study_renders(tmp_path):
    cfgd = simulated_config({"a": 1.0}, 0.5, 3)
    study = make_study(tmp_path / "empty", cfgd, [])
    out, md, _ = report(study)
    assert "# Ablation report" in md
    assert out.components == {} and out.complete is False


def test_contamination_is_flagged(tmp_path):
    effects = {"a": 1.0}
    cfgd = simulated_config(effects, 0.5, 3)
    recs = simulate_records(effects, 0.5, 3)
    for r in recs:
        leak = r.trial_id == "no-a-seed1"
        r.data_fingerprints = {"train": {"hash": "tr-leak" if leak else "tr", "n": 3},
                               "test": {"hash": "te", "n": 2}}
    study = make_study(tmp_path / "leak", cfgd, recs)
    for r in recs:
        leak = r.trial_id == "no-a-seed1"
        d = study.path / "trials" / r.trial_id
        (d / "data_train.json").write_text(json.dumps({"hash": "x", "items": ["h1", "h2", "h9" if leak else "h3"]}))
        (d / "data_test.json").write_text(json.dumps({"hash": "te", "items": ["h8", "h9"]}))
    out, md, _ = report(study)
    assert "contamination" in md and "no-a-seed1" in md
    assert "1 of 2 'test' items also appear in 'train'" in md
    flagged = [f for f in out.flags if f.kind == "contamination"]
    assert len(flagged) == 1 and "1 trial(s)" in flagged[0].message


def test_reference_result_in_the_tail_is_flagged(tmp_path):
    effects = {"a": 1.0}
    cfgd = simulated_config(effects, 0.5, 5, reference_result=25.0)
    study = make_study(tmp_path / "ref", cfgd, simulate_records(effects, 0.5, 5))
    _, md, _ = report(study)
    assert "reference_result 25 lies beyond the 95% prediction interval" in md
    assert "## Reference result: one published run against the seed spread" in md


def test_sweep_tiers_and_metric_groups(tmp_path):
    effects = {"a": 2.0, "b": 0.0}
    cfgd = simulated_config(
        effects, 0.5, 3, n_bootstrap=500,
        sweep={"path": "sim.noise", "values": [0.1, 0.5, 2.0]},
        tiers={"order": [{"name": "synthetic", "overrides": {"sim.base": 5.0}}, {"name": "real"}]},
        metric_groups={"quality": ["score"], "training": ["loss"]})
    config = parse_config(cfgd)
    recs = records_for(config)  # every tier
    study = make_study(tmp_path / "sweep", cfgd, recs)
    out, md, console = report(study)
    assert set(out.groups) == {f"{t}/noise={v}" for t in ("synthetic", "real") for v in (0.1, 0.5, 2.0)}
    assert out.main_group == "real/noise=0.5"  # last tier, at the baseline's own sweep value
    assert out.components == out.groups["real/noise=0.5"].components
    assert out.groups["synthetic/noise=0.1"].tier == "synthetic"
    assert out.groups["real/noise=2.0"].sweep_value == 2.0
    for name in ("sweep_synthetic.png", "sweep_real.png", "effects_real_noise=0.5.png"):
        assert (study.path / "plots" / name).exists(), name
    assert "## Group `real/noise=0.5` (main: the top-level verdicts)" in md
    assert "quality" in console and "training" in console  # one table per metric group
    assert "**quality**" in md


def test_random_design_and_cost(tmp_path):
    effects = {"a": 2.0, "b": 0.0, "c": -1.0}
    cfgd = simulated_config(effects, 0.5, 3, design="random", total_trials=18, kinds={"c": "inference"})
    cfgd["evaluate"] = "tests.support.simulated:run"  # inference-only variants reuse the baseline checkpoint
    config = parse_config(cfgd)
    recs = records_for(config)
    recs[0].attempts = 3  # two restarts
    study = make_study(tmp_path / "random", cfgd, recs)
    out, md, _ = report(study)
    assert HEADER in md
    assert all(c.method == "regression" for c in out.components.values())
    total = [c.strip() for c in next(line for line in md.splitlines() if line.startswith("| total |")).split("|")]
    assert total[2] == str(len(recs)) and total[5] == "2"  # trials, restarts (two of the first trial)
    saved = sum(r.saved_s for r in recs) / 3600
    assert saved > 0 and f"{saved:.3g}" in md


def test_report_without_the_trainable(tmp_path):
    """Analysis needs only the ledger: a config whose trainable is not importable here still reports."""
    effects = {"a": 2.0}
    cfgd = simulated_config(effects, 0.5, 3)
    study = make_study(tmp_path / "elsewhere", cfgd, simulate_records(effects, 0.5, 3))
    cfgd["trainable"] = "not_installed_here.model:run"
    (study.path / "config.yaml").write_text(yaml.safe_dump(cfgd, sort_keys=False))
    out, md, _ = report(study)
    assert out.components["a"].n == 3
    assert "cannot be imported" not in md  # the report never imports it: nothing to say
    assert not [f for f in out.flags if f.kind == "config"]


def test_secondary_metric_against_primary_and_seed_variance_are_flagged(tmp_path):
    # removing 'a' lowers the score (a helps) but also lowers the loss a lot (a hurts the loss)
    effects = {"a": 2.0, "b": 0.0}
    kw = {"loss_effects": {"a": -1.0}, "n_bootstrap": 500}
    cfgd = simulated_config(effects, 0.5, 5, **kw)
    study = make_study(tmp_path / "sec", cfgd, simulate_records(effects, 0.5, 5, **kw))
    out, md, _ = report(study)
    sec = [f for f in out.flags if f.kind == "secondary"]
    assert [f.subject for f in sec] == ["a"]
    assert "loss moves the other way beyond noise" in sec[0].message
    assert any(f.kind == "seed_variance" and f.subject == "b" for f in out.flags)
    assert "`secondary`" in md and "`seed_variance`" in md


TUNING_RESULTS = {"metric": "score", "n_trials": 6, "tuned": [{"path": "hp.x"}], "removed": {},
                  "best": {"trial_id": "tune-0004", "value": 12.5}, "confirmation": None}


def test_report_has_the_tuning_section_once_and_html_agrees(tmp_path):
    effects = {"a": 2.0}
    cfgd = simulated_config(effects, 0.5, 3)
    study = make_study(tmp_path / "tuned", cfgd, simulate_records(effects, 0.5, 3))
    _, md, _ = report(study)
    assert "## Tuning" not in md  # no tuning results yet: no section
    (study.path / "tuning").mkdir()
    (study.path / "tuning" / "results.json").write_text(json.dumps(TUNING_RESULTS))
    report(study)
    _, md, _ = report(study)  # rebuilt: still one tuning section, after the analysis's
    assert md.count("## Tuning") == 1 and "Best trial `tune-0004`: score = 12.5." in md
    assert md.index("## Verdicts") < md.index("## Tuning")
    page = (study.path / "report.html").read_text()
    assert page.count("<h2>Tuning</h2>") == 1 and "Best trial <code>tune-0004</code>: score = 12.5." in page
    md_rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in md.splitlines() if ln.startswith("| a |")]
    html_rows = [[html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r)]
                 for r in re.findall(r"<tr>(.*?)</tr>", page, re.S)]
    assert md_rows and all(row in html_rows for row in md_rows), (md_rows, html_rows)


def test_tuning_results_of_an_earlier_version_read_and_damaged_ones_are_said_plainly(tmp_path):
    effects = {"a": 2.0}
    study = make_study(tmp_path / "old", simulated_config(effects, 0.5, 3), simulate_records(effects, 0.5, 3))
    (study.path / "tuning").mkdir()
    conf = {"n": 3, "effect": 0.5, "ci_t": [0.1, 0.9], "p": 0.01, "outcome": "helped", "alpha": 0.05,
            "min_effect": 0.0, "removed": [], "note": ""}  # an earlier version's tuning/summary.json
    (study.path / "tuning" / "summary.json").write_text(json.dumps({**TUNING_RESULTS, "confirmation": conf}))
    _, md, _ = report(study)
    assert "Best trial `tune-0004`" in md and "Tuning helped beyond noise" in md and "[0.1, 0.9]" in md
    (study.path / "tuning" / "results.json").write_text('{"metric": "sc')  # torn: said, the rest written
    _, md, _ = report(study)
    assert "## Verdicts" in md and "The tuning stage's results cannot be read" in md and "results.json" in md


def test_a_write_killed_halfway_leaves_the_previous_report_whole(tmp_path, monkeypatch):
    """A fake for a fault we cannot cause with certainty: the rename after the temp file is written
    raises, as a kill between the two would leave it."""
    import os

    from orchestrator.analysis.report_files import write_report_files

    effects = {"a": 2.0}
    study = make_study(tmp_path / "killed", simulated_config(effects, 0.5, 3), simulate_records(effects, 0.5, 3))
    _, before, _ = report(study)
    html_before = (study.path / "report.html").read_text()
    replace = os.replace

    def killed(src, dst):
        if str(dst).endswith("report.md"):
            assert Path(src).read_text() == "# New\n"  # the temp file was written whole
            raise KeyboardInterrupt
        replace(src, dst)

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_report_files(study.path, ["# New"])
    assert (study.path / "report.md").read_text() == before
    assert (study.path / "report.html").read_text() == html_before
    assert not [p.name for p in study.path.iterdir() if p.name.endswith(".tmp")]


def test_power_line_mde_column_and_reproducibility_mode(tmp_path):
    """Three seeds cannot resolve min_effect here: the report says so at the top, with the seeds it would take."""
    effects = {"a": 2.0, "b": 0.0}
    cfgd = simulated_config(effects, 0.5, 3, min_effect=0.3, n_bootstrap=200)
    study = make_study(tmp_path / "power", cfgd, simulate_records(effects, 0.5, 3, min_effect=0.3))
    out, md, console = report(study)
    power = out.power
    assert power.mde > 0.3 and power.seeds_needed > 3
    line = f"> **Power:** with 3 seeds this study detects effects >= {power.mde:.3g} (80% power); " \
           f"min_effect is 0.3; about {power.seeds_needed} seeds would resolve it."
    assert line in md and "Power:" in console
    for c in out.components.values():
        assert c.mde > 0 and isinstance(c.seeds_needed, int) and isinstance(c.significant, bool)
        assert c.ci_method == "t" and 0 <= c.p_essential_holm <= 1
        assert f"| {c.mde:.3g} |" in md
    assert "inconclusive (~" in md  # b: how many seeds would decide it
    assert "reproducibility: mode not recorded" in md  # these records were not written by a worker
    assert out.reproducibility["deterministic"] is None


def test_unlisted_interaction_is_warned_by_name(tmp_path):
    effects = {"attention": 0.08, "ffn": 0.03, "norm": 0.0, "dropout": 0.0, "pos": 0.02}
    kw = {"design": "random", "interaction": {"attention+ffn": -0.03}, "total_trials": 60, "design_seed": 1,
          "n_bootstrap": 200}
    cfgd = simulated_config(effects, 0.01, 5, **kw)
    study = make_study(tmp_path / "inter", cfgd, simulate_records(effects, 0.01, 5, **kw))
    out, md, console = report(study)
    assert "### Is the main-effects model enough?" in md and "Lack of fit of the main-effects model" in md
    assert "attention x ffn: interaction on score" in md and "attention x ffn" in console
    ffn = out.components["ffn"]
    assert ffn.average_effect is not None and ffn.verdict == "essential"
    assert "judged in the baseline's context (attention present)" in ffn.note


def test_verdicts_json_round_trips_and_a_wrong_one_is_named(tmp_path):
    """verdicts.json is the model's dump: read back it is the same model; a damaged file, another layout,
    an unknown or a missing field is named with the file and how to rewrite it."""
    effects = {"a": 2.0, "b": 0.0}
    kw = {"pairs": [("a", "b")], "interaction": {"a+b": 1.0}, "n_bootstrap": 100}
    study = make_study(tmp_path / "rt", simulated_config(effects, 0.5, 4, **kw),
                       simulate_records(effects, 0.5, 4, **kw))
    out, _, _ = report(study)
    path = study.path / "verdicts.json"
    text = path.read_text()
    back = read_verdicts(path)
    assert back == Verdicts.model_validate_json(out.model_dump_json()) and back.layout == 2
    assert back.components["a"].verdict == out.components["a"].verdict == "essential"
    assert back.interactions["a+b"].deciding.test == "interaction"
    write_verdicts(path, back)
    assert json.loads(path.read_text()) == json.loads(text) and read_verdicts(path) == back

    data = json.loads(text)
    old = {k: v for k, v in data.items() if k != "layout"}
    typo = {**data, "components": {**data["components"], "a": {**data["components"]["a"], "p_hlom": 0.1}}}
    missing = {**data, "components": {**data["components"], "a": {k: v for k, v in data["components"]["a"].items()
                                                                  if k != "verdict"}}}
    for bad, words in ((old, "layout 1"), (typo, "components.a.p_hlom"), (missing, "components.a.verdict")):
        path.write_text(json.dumps(bad))
        with pytest.raises(LedgerDamaged) as err:
            read_verdicts(path)
        assert str(path) in str(err.value) and words in str(err.value) and "ablator report" in str(err.value)
    path.write_text(text[: len(text) // 2])
    with pytest.raises(LedgerDamaged, match="not valid JSON"):
        read_verdicts(path)
    assert read_verdicts(tmp_path / "none.json") is None


def test_a_misspelt_field_in_a_produced_row_fails():
    row = {"method": "paired", "verdict": "essential", "effect": 1.0}
    assert Comparison.model_validate(row).effect == 1.0
    with pytest.raises(ValidationError, match="p_hlom"):
        Comparison.model_validate({**row, "p_hlom": 0.01})
    with pytest.raises(ValidationError, match="method"):
        Comparison.model_validate({**row, "method": "pairwise"})
