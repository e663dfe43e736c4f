"""The comparison of two studies' rows, checked against scipy and on hand-made analyses (quick, no Ray)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from orchestrator.compare.model import StudyComparison
from orchestrator.compare.rows import compare_rows
from orchestrator.compare.stats import Side, decide, difference, look_weight, paired, unpaired
from orchestrator.compare.studies import changes
from orchestrator.ledger.verdicts_json import Comparison, Group, Metric, Verdicts

RNG = np.random.default_rng(3)
X = RNG.normal(0.10, 0.02, 6)  # one study's paired differences of a row, by seed
Y = RNG.normal(0.05, 0.03, 8)


def side(d, seeds=None) -> Side:
    d = np.asarray(d, dtype=float)
    seeds = seeds or [str(i) for i in range(d.size)]
    return Side(float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size)), d.size - 1, d.size,
                dict(zip(seeds, d.tolist())))


def test_unpaired_is_welchs_test():
    diff, se, df = unpaired(side(X), side(Y))
    got = difference(side(X), side(Y), pair=False, alpha=0.05, min_effect=0.01)
    ref = st.ttest_ind(Y, X, equal_var=False)
    assert diff == pytest.approx(Y.mean() - X.mean())
    assert got["p_changed"] == pytest.approx(ref.pvalue)
    lo, hi = got["ci"]
    assert lo < diff < hi and (hi - lo) / 2 == pytest.approx(st.t.ppf(0.975, df) * se)


def test_paired_is_the_t_test_of_the_per_seed_differences_on_shared_seeds():
    old = side(X, ["0", "1", "2", "3", "4", "5"])
    new = side(Y[:5], ["1", "2", "3", "4", "9"])
    diff, _, df, n = paired(old, new)
    shared = np.array([Y[i - 1] - X[i] for i in (1, 2, 3, 4)])
    assert n == 4 and df == 3 and diff == pytest.approx(shared.mean())
    got = difference(old, new, pair=True, alpha=0.05, min_effect=0.01)
    assert got["pairing"] == "paired" and got["n_shared"] == 4
    assert got["p_changed"] == pytest.approx(st.ttest_1samp(shared, 0).pvalue)


def test_calls_changed_same_unclear_and_not_compared():
    flat = np.array([0.001, -0.001, 0.0005, -0.0005, 0.0])
    rows = [difference(side(X), side(X + 0.2), pair=False, alpha=0.05, min_effect=0.05),   # moved by 0.2
            difference(side(flat), side(flat + 0.0001), pair=False, alpha=0.05, min_effect=0.05),
            difference(side(X), side(Y), pair=False, alpha=0.05, min_effect=0.05),  # noisy: cannot tell
            difference(side(X), Side(0.1, math.nan, 0, 1), pair=False, alpha=0.05, min_effect=0.05)]  # one seed
    decide(rows, 0.05)
    assert [r["call"] for r in rows] == ["changed", "same", "unclear", "not compared"]
    assert rows[0]["beyond_min_effect"] and not rows[1]["beyond_min_effect"]
    assert "new study" in rows[3]["reason"]
    # Holm across the rows: the changed row's adjusted p is at least its raw one times the rows tested
    assert rows[0]["p_changed_holm"] >= min(1.0, rows[0]["p_changed"])


def test_identical_rows_are_the_same_and_float_noise_is_no_difference():
    a = side(X)
    b = Side(a.effect * (1 + 1e-15), a.se, a.df, a.n, a.diffs)
    rows = [difference(a, b, pair=False, alpha=0.05, min_effect=0.05)]
    decide(rows, 0.05)
    assert rows[0]["diff"] == 0.0 and rows[0]["call"] == "same"


def test_adaptive_rows_are_tested_at_a_share_of_alpha_per_look():
    adaptive = {"initial": 3, "max": 10, "interim_share": 0.15}
    assert look_weight(None) == 1.0
    assert look_weight(adaptive) == pytest.approx(1 / 8)  # 8 looks: 3..10 seeds
    weighted = Side(**{**side(Y).__dict__, "weight": 0.5})
    plain = difference(side(X), side(Y), pair=False, alpha=0.05, min_effect=0.01)
    adjusted = difference(side(X), weighted, pair=False, alpha=0.05, min_effect=0.01)
    assert adjusted["p_changed"] == pytest.approx(min(1.0, 2 * plain["p_changed"]))
    assert adjusted["ci"][1] - adjusted["ci"][0] > plain["ci"][1] - plain["ci"][0]


def row(effect, se, verdict, n=6, method="paired") -> Comparison:
    lo, hi = effect - 2.5 * se, effect + 2.5 * se
    return Comparison(method=method, verdict=verdict, effect=effect, se=se, df=n - 1, n=n, ci=[lo, hi],
                      estimable=True)


def verdicts(mode="max", **components) -> Verdicts:
    return Verdicts(study="s", primary=Metric(name="score", mode=mode), alpha=0.05, min_effect=0.02,
                    design="one_at_a_time", groups={"default": Group(components=components)})


def test_a_label_flip_without_a_change_is_said_to_be_no_change_and_essential_lost_needs_both():
    old = verdicts(a=row(0.05, 0.01, "essential"), b=row(0.10, 0.005, "essential"), gone=row(0.1, 0.01, "essential"))
    new = verdicts(a=row(0.04, 0.012, "inconclusive"), b=row(0.0, 0.005, "negligible"),
                   extra=row(0, 0.01, "inconclusive"))
    rows, only_old, only_new = compare_rows(old, new, alpha=0.05, min_effect=0.02, pair=False)
    by = {r.name: r for r in rows}
    assert [r.name for r in rows] == ["b", "a"]  # changed rows first
    assert by["b"].call == "changed" and by["b"].essential_lost and by["b"].label_flip
    assert by["a"].label_flip and by["a"].call != "changed" and not by["a"].essential_lost
    assert by["a"].why.startswith("not a change: the label moved essential -> inconclusive")
    assert only_old == ["component gone"] and only_new == ["component extra"]


def test_another_metric_direction_is_reoriented_to_the_old_studys():
    old = verdicts(a=row(0.05, 0.01, "essential"))
    new = verdicts(mode="min", a=row(-0.05, 0.01, "harmful"))  # the same raw change read as a loss
    rows, _, _ = compare_rows(old, new, alpha=0.05, min_effect=0.02, pair=False)
    assert rows[0].new.effect == pytest.approx(0.05) and rows[0].diff == pytest.approx(0.0)
    assert rows[0].new.ci[0] < rows[0].new.ci[1]


def test_the_gate_fails_on_what_is_asked():
    old = verdicts(a=row(0.05, 0.01, "essential"), b=row(0.10, 0.005, "essential"), c=row(0.0, 0.002, "negligible"))
    new = verdicts(a=row(0.04, 0.02, "inconclusive"), b=row(0.07, 0.005, "essential"), c=row(0.0, 0.002, "negligible"))
    rows, _, _ = compare_rows(old, new, alpha=0.05, min_effect=0.02, pair=False)
    side_ = dict(path="p", name="s", design="one_at_a_time", primary=Metric(name="score", mode="max"), alpha=0.05,
                 min_effect=0.02, complete=True)
    c = StudyComparison(old=side_, new=side_, alpha=0.05, min_effect=0.02, pairing="unpaired", pairing_why="",
                        rows=rows)
    assert [r.name for r in c.failing("changed")] == ["b"]
    assert c.failing("changed-beyond-min-effect") == [] and c.failing("essential-lost") == []
    assert {r.name for r in c.failing("unclear")} == {"a", "b"}
    with pytest.raises(ValueError, match="not one of"):
        c.failing("everything")


def test_config_differences_key_by_key():
    got = changes({"a": {"b": 1, "c": [1, 2]}, "d": 1}, {"a": {"b": 2, "c": [1, 2]}, "e": {}})
    assert [(c.key, c.old, c.new) for c in got] == [("a.b", 1, 2), ("d", 1, None), ("e", None, {})]


def test_the_page_is_self_contained_with_one_plot_per_row_kind_changed_rows_first(tmp_path):
    from orchestrator.compare.html import write_html

    old = verdicts(a=row(0.05, 0.01, "essential"), b=row(0.10, 0.005, "essential"))
    new = verdicts(a=row(0.05, 0.01, "essential"), b=row(0.0, 0.005, "negligible"))
    old.groups["default"].interactions = {"a+b": row(0.01, 0.01, "inconclusive")}
    new.groups["default"].interactions = {"a+b": row(0.0, 0.01, "inconclusive")}
    rows, _, _ = compare_rows(old, new, alpha=0.05, min_effect=0.02, pair=False)
    side_ = dict(path="p", name="s", design="one_at_a_time", primary=Metric(name="score", mode="max"), alpha=0.05,
                 min_effect=0.02, complete=True)
    c = StudyComparison(old=side_, new=side_, alpha=0.05, min_effect=0.02, pairing="unpaired", pairing_why="why",
                        rows=rows, notes=["seeds differ"])
    text = write_html(c, tmp_path / "c.html").read_text()
    assert text.count("data:image/png;base64,") == 2  # components, interactions
    body = text.split("<body>", 1)[1].split("<script>")[0]
    assert "http" not in body and "seeds differ" in body
    assert body.index("component b") < body.index("component a")
    assert '<td class="v-harmful">changed' in body


def test_regression_rows_are_compared_unpaired_even_when_paired_is_asked_and_say_so():
    old = verdicts(a=row(0.05, 0.01, "essential", method="regression"))
    new = verdicts(a=row(0.05, 0.01, "essential"))
    new.groups["default"].components["a"].diffs = {"0": 0.05, "1": 0.04, "2": 0.06}
    rows, _, _ = compare_rows(old, new, alpha=0.05, min_effect=0.02, pair=True)
    assert rows[0].pairing == "unpaired"
    assert any("compared unpaired" in n for n in rows[0].notes)
    assert any("regression in the new" in n or "by regression in the old" in n for n in rows[0].notes)


def test_settings_that_differ_are_said():
    from orchestrator.compare.model import StudySide
    from orchestrator.compare.studies import code_note, settings_notes

    base = dict(path="p", name="s", design="one_at_a_time", primary=Metric(name="score", mode="max"), alpha=0.05,
                min_effect=0.02, complete=True, seeds=[0, 1, 2], commit="a" * 40, dirty=False)
    old = StudySide(**base)
    new = StudySide(**{**base, "alpha": 0.01, "design": "random", "seeds": [1, 2, 3],
                       "primary": Metric(name="score", mode="min"), "adaptive": {"initial": 3, "max": 6},
                       "failed": ["t1"], "commit": "b" * 40, "dirty": True, "dirty_files": ["model.py"]})
    text = "\n".join(settings_notes(old, new, 0.05, 0.02))
    for said in ("re-oriented", "alpha: 0.05 in the old study, 0.01 in the new", "design: one_at_a_time",
                 "seeds differ: old [0, 1, 2], new [1, 2, 3] (2 shared)", "1/4 of alpha", "1 trial(s) FAILED (t1)"):
        assert said in text
    assert code_note(old, new) == f"code: old {'a' * 12}; new {'b' * 12} with uncommitted changes (model.py)"
    assert code_note(old, old).startswith("code: the same commit")


def test_provenance_records_which_tracked_files_are_uncommitted(tmp_path):
    import subprocess

    from orchestrator.provenance import git_state

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "model.py").write_text("x = 1\n")
    git("add", "model.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    assert git_state(tmp_path)["dirty_files"] == []
    (tmp_path / "model.py").write_text("x = 2\n")
    state = git_state(tmp_path)
    assert state["dirty"] and state["dirty_files"] == ["model.py"]


def make_study(path, cfgd: dict, records) -> None:
    import yaml

    from orchestrator.ledger import Study

    study = Study.create(path, yaml.safe_dump(cfgd, sort_keys=False), cfgd["name"])
    for r in records:
        study.trial(r.trial_id).write(r)


def test_compare_studies_on_study_directories(tmp_path):
    """Real study directories (records written by the ledger, no Ray): a removed effect, a component only in
    one study, a failed seed, other seeds, an adaptive study and a random design, each said."""
    from orchestrator import compare_studies
    from orchestrator.config import parse_config
    from tests.support.simulated import records_for, run_adaptive, simulated_config

    def study(name, effects, seeds, failed=(), **kw):
        cfgd = simulated_config(effects, 0.2, seeds, min_effect=0.5, n_bootstrap=100, name=name, **kw)
        cfg = parse_config(cfgd)
        recs = run_adaptive(cfg) if "adaptive" in kw else records_for(cfg, cfg.seed_list, failed=failed)
        make_study(tmp_path / name, cfgd, recs)
        return tmp_path / name

    old = study("old", {"a": 2.0, "b": 1.0, "c": 0.0}, 6)
    new = study("new", {"a": 2.0, "b": 0.0, "d": 1.0}, [0, 1, 2, 3, 4, 5, 6], failed=[("no-a", 2)])
    c = compare_studies(old, new)
    assert any("1 trial(s) FAILED" in n for n in c.notes)
    assert any("seed(s) 2 lack one side" in n for n in {r.name: r for r in c.rows}["a"].notes)
    by = {r.name: r for r in c.rows}
    assert [r.name for r in c.changed] == ["b"] and by["b"].essential_lost and by["b"].beyond_min_effect
    assert by["a"].call == "same" and c.only_old == ["component c"] and c.only_new == ["component d"]
    assert {ch.key for ch in c.config} >= {"name", "seeds", "baseline.effects.b"}
    assert any("seeds differ" in n for n in c.notes)
    assert [r.name for r in c.failing("essential-lost")] == ["b"]

    adaptive = study("adaptive", {"a": 2.0, "b": 1.0, "c": 0.0}, 6, adaptive=(3, 6))
    c = compare_studies(old, adaptive)
    assert all(r.weight == pytest.approx(1 / 4) for r in c.rows)
    assert any("adaptive seeds (3..6)" in n for n in c.notes)

    regression = study("regression", {"a": 2.0, "b": 1.0, "c": 0.0}, 4, design="random", total_trials=48)
    c = compare_studies(old, regression, paired=True)
    assert any("design: one_at_a_time in the old study, random in the new" in n for n in c.notes)
    assert all(r.pairing == "unpaired" and any("by regression in the new" in n for n in r.notes) for r in c.rows)
