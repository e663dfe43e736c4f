"""The sequential design (analysis/sequential.py): its calibration, a budget stop's alpha, and the
benchmark's vectorised decisions equal to the package's (benchmarks/sequential.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from benchmarks import sequential as bench
from orchestrator.analysis.effects import Sequential, finish_family, paired_interactions, regression_effects
from orchestrator.analysis.records import group_records
from orchestrator.analysis.sequential import DESIGNS, FINAL_WEIGHT, FIRST_LOOK, Design, adaptive_design
from orchestrator.analysis.stats import ESSENTIAL, HARMFUL, INCONCLUSIVE, NEGLIGIBLE, holm, summarise_diffs
from orchestrator.ledger import TrialRecord
from orchestrator.ledger.verdicts_json import Comparison

VERDICT = {bench.INC: INCONCLUSIVE, bench.ESS: ESSENTIAL, bench.HARM: HARMFUL, bench.NEG: NEGLIGIBLE}


def test_the_boundary_spends_alpha_over_the_looks_and_a_budget_stop_spends_only_its_share():
    d = Design(3, 10)
    alpha = 0.025
    spent = [d.alpha_spent(range(3, n + 1), alpha) for n in range(3, 11)]
    assert all(a < b for a, b in zip(spent, spent[1:]))  # each look spends a little more
    assert spent[-1] == pytest.approx(alpha, abs=2e-4)  # all planned looks: exactly alpha
    assert spent[2] < 0.6 * alpha  # a study stopped by its budget at 5 seeds spent only the looks 3..5
    assert d.alpha_spent([3, 5], alpha) == spent[2]  # skipped looks (batches) spend no more
    # an interim look's boundary is several times the previous rule's slice (15% of alpha over 7 interim looks)
    assert 3 * 0.15 * alpha / 7 < d.boundary(5, alpha) < d.boundary(10, alpha) < alpha
    assert d.boundary(2, alpha) == 0.0  # below initial: no test


def test_adaptive_seeds_look_first_at_four_seeds_within_the_planned_range():
    assert adaptive_design(3, 10).looks() == list(range(FIRST_LOOK, 11))
    assert adaptive_design(6, 10).first == 6  # a later initial: its first look
    assert adaptive_design(2, 3).looks() == [3]  # max below the first look: one look, at max
    assert adaptive_design(3, 10).boundary(3, 0.025) == 0.0  # before the first look: no test


def test_the_study_config_names_the_design_lean_by_default():
    """``seeds: {design: ...}`` picks a named design: its final weight and futility; ``lean`` by default."""
    from typing import get_args

    from orchestrator.analysis.adaptive import design_of, futility_of
    from orchestrator.analysis.study_analysis import looks_of, sequential_for
    from orchestrator.config import AdaptiveSeeds, parse_config
    from tests.support.simulated import simulated_config

    assert set(get_args(AdaptiveSeeds.model_fields["design"].annotation)) == set(DESIGNS)
    raw = simulated_config({"a": 1.0}, 0.5, 3, adaptive=(3, 10))
    lean = parse_config(raw)
    thorough = parse_config(raw | {"seeds": {"initial": 3, "max": 10, "design": "thorough"}})
    assert lean.seeds.design == "lean" and futility_of(lean) == 0.35 and futility_of(thorough) == 0.2
    sl, st_ = sequential_for(lean), sequential_for(thorough)
    assert (sl.design.final_weight, st_.design.final_weight) == (1.5, 8.0)
    assert sl.design.looks() == st_.design.looks() == list(range(FIRST_LOOK, 11))
    # a final weight of 8 keeps more alpha for max: stricter interim looks, a more lenient final one
    assert st_.adjust_level(5) < sl.adjust_level(5) and st_.adjust_level(10) > sl.adjust_level(10)
    assert design_of(thorough) | {"final_weight": 1.5, "futility": 0.35, "design": "lean"} == design_of(lean)
    assert looks_of(st_).design == "thorough" and looks_of(st_).futility == 0.2
    assert looks_of(Sequential(2, 10, 0.05)).design is None  # an interim look at fixed seeds names none


def test_repeated_p_values_are_valid_and_never_rise():
    d = Design(3, 10)
    # the calibration itself: an independent simulation of the looks rejects at about alpha
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40_000, 10))
    mean, sd, n = bench.prefix(x)
    t = mean / (sd / np.sqrt(n))
    p = st.t.sf(t, np.maximum(n - 1, 1))
    w = np.where(n >= 10, d.final_weight, 1.0)
    rep = d.cdf(np.min(np.where(n >= 3, p / w, np.inf), axis=1))
    assert np.mean(rep <= 0.05) == pytest.approx(0.05, abs=0.006)
    ps, ns = [0.01, 0.002, 0.03, 0.2], [3, 4, 5, 6]
    running = [d.repeated_min(ps[:k], ns[:k]) for k in range(1, 5)]
    assert running == sorted(running, reverse=True) and running[1] == running[3]
    assert d.repeated_min([0.5], [2]) == 1.0  # fewer seeds than initial: not tested


def test_benchmark_holm_and_decisions_equal_the_packages():
    rng = np.random.default_rng(7)
    p = rng.uniform(0, 0.1, (50, 6))
    assert np.allclose(bench.holm_rows(p), [holm(row) for row in p])
    seq = Sequential(bench.INITIAL, bench.MAX, bench.ALPHA, bench.MIN_EFFECT, "lean")
    assert seq.design == bench.DESIGN  # the benchmark measures the package's design
    checked = 0
    for trial in range(30):
        D = bench.differences(rng, 1, rng.normal(0, 0.8, bench.K), "gaussian", 0.3, trial % 2 == 1)
        n = rng.integers(bench.INITIAL, bench.MAX + 1, bench.K)
        rows = {}
        for k in range(bench.K):
            diffs = D[0, k, :n[k]]
            rows[str(k)] = Comparison(**summarise_diffs(diffs, bench.ALPHA, bench.MIN_EFFECT, 0), method="paired",
                                      verdict=INCONCLUSIVE, seeds=list(range(n[k])),
                                      diffs={str(s): float(v) for s, v in enumerate(diffs)})
        finish_family(rows, bench.ALPHA, bench.MIN_EFFECT, seq)
        p_ess, p_harm, p_neg, _, _ = bench.pvalues("lean", D)
        at = (n - 1)[None, :, None]
        got = [np.take_along_axis(x, at, -1)[0, :, 0] for x in (p_ess, p_harm, p_neg)]
        verdicts = bench.decide(*[g[None] for g in got])[0]
        for k in range(bench.K):
            r = rows[str(k)]
            assert VERDICT[int(verdicts[k])] == r.verdict
            assert got[2][k] == pytest.approx(seq.row(r)["negligible"], rel=1e-9)
            checked += r.verdict != INCONCLUSIVE
    assert checked > 10  # the comparison covered decided rows, not only inconclusive ones


def test_interaction_pairs_are_adjusted_for_the_looks():
    records = []
    rng = np.random.default_rng(3)
    for seed in range(6):
        for variant, removed, mean in (("baseline", [], 10.0), ("no-a", ["a"], 9.0), ("no-b", ["b"], 9.0),
                                       ("no-a+b", ["a", "b"], 7.0)):
            records.append(TrialRecord(trial_id=f"{variant}-{seed}", variant=variant, removed=removed, seed=seed,
                                       state="COMPLETED", final={"score": mean + rng.normal(0, 0.3)}))
    group = group_records(records)["default"]
    plain = paired_interactions(group, [("a", "b")], "score", "max", 0.05, 0)["a+b"]
    looked = paired_interactions(group, [("a", "b")], "score", "max", 0.05, 0, Sequential(3, 10, 0.05))["a+b"]
    assert plain.p_holm == pytest.approx(plain.p)
    assert looked.p_holm > 2 * plain.p_holm  # the repeated p-value pays for the looks


def test_a_regression_row_decided_at_an_earlier_look_stays_decided():
    """Full factorial (a, b) over 8 seeds: removing a costs 1.0 on seeds 0-4 and gains 1.0 on 5-7 (the later
    seeds' data pull the estimate back). Each look refits the model on the first k seeds, so a's repeated
    p-value is the running minimum over its looks: decided essential at 5 seeds, it stays decided at 8,
    where the current look alone would no longer decide it."""
    rng = np.random.default_rng(7)
    records = []
    for seed in range(8):
        for variant, removed in (("baseline", []), ("no-a", ["a"]), ("no-b", ["b"]), ("no-a+b", ["a", "b"])):
            cost = (1.0 if seed < 5 else -1.0) if "a" in removed else 0.0
            records.append(TrialRecord(trial_id=f"{variant}-{seed}", variant=variant, removed=removed, seed=seed,
                                       state="COMPLETED", final={"score": 10.0 - cost + rng.normal(0, 0.02)}))
    seq = Sequential(3, 8, 0.05, 0.1)
    components = {"a": None, "b": None}
    group = group_records(records)["default"]
    early = regression_effects(group_records(records[:20])["default"], components, [], "score", "max", 0.05, 0.1,
                               seq, scan=False)[0]
    late = regression_effects(group, components, [], "score", "max", 0.05, 0.1, seq, scan=False)[0]
    assert early["a"].verdict == ESSENTIAL  # decided at the look at 5 seeds
    assert late["a"].verdict == ESSENTIAL  # and still at 8, from that look
    current = seq.row(late["a"])  # the last look alone (no earlier looks given)
    assert current["essential"] > 0.05 >= late["a"].p_essential_holm


def test_a_factor_shown_negligible_at_an_earlier_look_stays_negligible():
    """A null numeric factor (depth) over seeds 0-4, then a slope of 1.0 per level on seeds 5-7: its equivalence
    test, decided at 5 seeds, keeps its decision at 8 through the running minimum over the looks (each an
    analysis of the first k seeds), where the 8 seeds analysed as one look would not decide it."""
    from orchestrator.analysis import analyse
    from orchestrator.config import parse_config
    from orchestrator.plan import ablation_trials
    from tests.support.simulated_factors import TRUTH, score, study

    truth = {**TRUTH, "noise": 0.02, "seed_noise": 0.0}
    fixed = parse_config(study({"type": "one_at_a_time"}, list(range(8)), truth, min_effect=0.5))
    adaptive = parse_config(study({"type": "one_at_a_time"}, list(range(8)), truth, min_effect=0.5)
                            | {"seeds": {"initial": 3, "max": 8}})
    records = []
    for spec in ablation_trials(fixed):
        cfg = fixed.resolved(spec.removed, spec.overrides)
        y = score(cfg, spec.seed) + (cfg["model"]["depth"] - 2 if spec.seed >= 5 else 0.0)
        records.append(TrialRecord(**spec.to_dict(), state="COMPLETED", attempts=1, final={"score": y}))
    depth = "model.depth"
    early = analyse([r for r in records if r.seed < 5], adaptive, contamination=False)
    late = analyse(records, adaptive, contamination=False)
    one_look = analyse(records, fixed, contamination=False)
    assert early.groups["default"].factors[depth].negligible  # decided at the look at 5 seeds
    assert late.groups["default"].factors[depth].negligible  # and still at 8, from that look
    assert not one_look.groups["default"].factors[depth].negligible  # the 8 seeds alone: not negligible


def test_each_look_is_logged_once_and_a_resumed_loop_spends_no_more(tmp_path):
    """The session's adaptive loop on the simulated trainable's formula logs every look in looks.jsonl;
    running the loop again over the same trials (a driver killed after its last look, then resumed)
    appends nothing: the same looks, the same alpha spent."""
    from rich.console import Console

    from orchestrator import session
    from orchestrator.config import parse_config
    from orchestrator.ledger.looks import LOOKS, read_looks
    from tests.support.simulated import _Ledger, records_for, simulated_config, trial_record

    config = parse_config(simulated_config({"big": 3.0, "null": 0.0, "small": 0.3}, 0.5, 3, min_effect=0.5,
                                           n_bootstrap=100, secondary=False) | {"seeds": {"initial": 3, "max": 8}})
    ledger = _Ledger(records_for(config, config.seed_list))
    ledger.path = tmp_path

    def execute(specs, label=""):
        ledger.rows += [trial_record(config, spec) for spec in specs]

    session.adaptive_seeds(ledger, config, Console(quiet=True), None, execute)
    looks = read_looks(tmp_path)
    assert [lk["n"] for lk in looks] == list(range(3, 3 + len(looks))) and len(looks) >= 2
    assert looks[0]["design"] == {"design": "lean", "initial": 3, "first_look": FIRST_LOOK, "max": 8,
                                  "final_weight": FINAL_WEIGHT, "futility": DESIGNS["lean"].futility, "alpha": 0.05}
    big = [lk["rows"]["default"]["big"] for lk in looks]
    assert big[0]["state"] == "essential" or big[-1]["state"] == "essential"
    spent = [lk["rows"]["default"]["null"]["spent"] for lk in looks]
    assert spent == sorted(spent) and spent[-1] <= 0.05 + 1e-3
    before = (tmp_path / LOOKS).read_bytes()
    session.adaptive_seeds(ledger, config, Console(quiet=True), None, execute)  # resumed: nothing new to run
    assert (tmp_path / LOOKS).read_bytes() == before
    # resumed with another named design: the study says the logged looks used another one
    thorough = config.model_copy(update={"seeds": config.seeds.model_copy(update={"design": "thorough"})})
    console = Console(record=True, width=400)
    session.adaptive_seeds(ledger, thorough, console, None, execute)
    said = console.export_text()
    assert "the logged looks used the design" in said and "'design': 'lean'" in said and "'design': 'thorough'" in said
