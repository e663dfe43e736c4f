"""Benchmark of the verdicts on simulated studies with known truth.

    python benchmarks/verdicts.py            # several minutes on 2 cores
    python benchmarks/verdicts.py --quick    # fewer replicates
    python benchmarks/verdicts.py --part 0   # the targets table only
    python benchmarks/verdicts.py --part factors   # factor-effect coverage only
    python benchmarks/verdicts.py --part intervals # simultaneous coverage of the plotted intervals only

Part 0 - measured rates against their targets: false positives against 0 and against
min_effect (<= alpha), float-noise components (never essential), TOST power (>= 80% for
a null effect with 6 seeds and min_effect = 2 SD of the paired differences), t-interval
coverage at n = 3..10 on normal and skewed data (>= 0.93; percentile and BCa bootstrap
beside it), the unlisted-interaction check (found, false warnings) and its cost.

Part 1 - verdict accuracy and trials used, fixed 10 seeds vs adaptive seeds 3..10 (both named designs), at
several noise levels (noise = std of each trial's own noise; a shared per-seed part of the
same size cancels in the pairing). Components: three with no effect, and three real ones
(effects +1.0, +2.0, -1.5) against analysis.min_effect 0.5. A real component is found when
its verdict is essential (harmful for the negative one); a null one is a false positive
when it gets either verdict. FWER = share of studies with at least one false positive.

Part 2 - time to analyse a 10,000-trial ledger: records in memory, and read from a study
directory on disk (Study.records + analysis), and the full build_report (with plots).

Part intervals - simultaneous coverage of the intervals the tables and plots show (``ci_sim``:
t intervals at 1 - alpha/m, Bonferroni): the share of simulated studies in which every one of a
family's m intervals covers its true effect (goal >= 0.95), beside the same share for the
per-row 95% t intervals (the reference: what a reader would wrongly take as simultaneous).

Prints tables; no assertions.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console
from rich.table import Table

from orchestrator.analysis import analyse, build_report
from orchestrator.analysis.effects import regression_effects
from orchestrator.analysis.intervals import t_ci
from orchestrator.analysis.records import group_records
from orchestrator.analysis.report import analyse_study
from orchestrator.analysis.sequential import DESIGNS
from orchestrator.config import parse_config
from orchestrator.ledger import Study, files
from orchestrator.results import load_study
from tests.support.simulated import records_for, run_adaptive, simulated_config

EFFECTS = {"null1": 0.0, "null2": 0.0, "null3": 0.0, "medium": 1.0, "large": 2.0, "harmful": -1.5}
MIN_EFFECT = 0.5
NOISES = (0.25, 0.5, 0.75, 1.0)


def score(records, config) -> dict:
    a = analyse(records, config, contamination=False)
    comps = a.groups["default"].components
    real = [c for c, e in EFFECTS.items() if abs(e) >= MIN_EFFECT]
    null = [c for c, e in EFFECTS.items() if e == 0]
    found = sum(comps[c].verdict == ("essential" if EFFECTS[c] > 0 else "harmful") for c in real)
    fps = sum(comps[c].verdict in ("essential", "harmful") for c in null)
    trials = sum(1 for r in records if r.purpose == "variant")
    return {"tp": found / len(real), "fp": fps / len(null), "any_fp": fps > 0, "trials": trials}


def _rate(values) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def _study_rates(effects: dict, n: int, min_effect: float, reps: int, noise: float, seed_noise: float = 1.0):
    """Per component, the share of simulated studies giving each verdict (the study code path, Holm)."""
    cfg = parse_config(simulated_config(effects, noise, n, seed_noise=seed_noise, min_effect=min_effect,
                                        n_bootstrap=200, secondary=False))
    counts = {c: {} for c in effects}
    for rep in range(reps):
        comps = analyse(records_for(cfg, replicate=rep), cfg, contamination=False).groups["default"].components
        for c, r in comps.items():
            counts[c][r.verdict] = counts[c].get(r.verdict, 0) + 1
    return {c: {v: k / reps for v, k in cs.items()} for c, cs in counts.items()}


def _coverage(sample, n: int, reps: int, truth: float, rng, boot: str | None = None) -> float:
    x = sample(rng, (reps, n))
    if boot is None:
        lo, hi = t_ci_rows(x)
    else:
        from orchestrator.analysis import intervals

        lo, hi = intervals.bootstrap_ci(x, 0.05, 1000, 0, method=boot, min_n=2)
    return float(np.mean((lo <= truth) & (truth <= hi)))


def t_ci_rows(x: np.ndarray):
    """The t interval of every row (equals intervals.t_ci row by row)."""
    n = x.shape[1]
    lo, _ = t_ci(x[0], 0.05)  # the quantile, checked on row 0 below
    from scipy import stats as st

    half = st.t.ppf(0.975, n - 1) * x.std(axis=1, ddof=1) / np.sqrt(n)
    m = x.mean(axis=1)
    assert abs((m[0] - half[0]) - lo) < 1e-9
    return m - half, m + half


SAMPLES = {
    "normal": (lambda rng, size: rng.normal(0, 1, size), 0.0),
    "skewed runs (gamma k=2 per run)": (lambda rng, size: rng.gamma(2, 1, size) - rng.gamma(2, 1, size), 0.0),
    "skewed differences (exponential)": (lambda rng, size: rng.exponential(1, size), 1.0),
    "skewed differences (lognormal s=0.5)": (lambda rng, size: rng.lognormal(0, 0.5, size), float(np.exp(0.125))),
}


def part0(reps: int, console: Console) -> None:
    t0 = time.time()
    table = Table(title=f"Measured rates against targets ({reps} simulated studies per row unless said)",
                  title_justify="left")
    for h in ("check", "measured", "target", "ok"):
        table.add_column(h, justify="left" if h == "check" else "right")

    def row(check, measured, target, ok):
        table.add_row(check, measured, target, "yes" if ok else "NO")

    # false positives against 0: three null components, min_effect 0, 5 seeds (family-wise)
    cfg = parse_config(simulated_config({"n1": 0.0, "n2": 0.0, "n3": 0.0}, 0.5, 5, n_bootstrap=200,
                                        secondary=False))
    fw = _rate([any(r.verdict in ("essential", "harmful") for r in analyse(
        records_for(cfg, replicate=rep), cfg, contamination=False).groups["default"].components.values())
        for rep in range(reps)])
    row("FWER vs 0: 3 null components, 5 seeds, min_effect 0", f"{fw:.3f}", "<= 0.05", fw <= 0.05 + 0.03)
    # false positives against min_effect (true effect at the boundary and just below it)
    rates = _study_rates({"at": 1.0, "below": 0.9}, 6, 1.0, reps, 0.5 / np.sqrt(2))
    for c, label in (("at", "= min_effect"), ("below", "= 0.9 x min_effect")):
        e = rates[c].get("essential", 0.0)
        row(f"essential when the true effect {label} (6 seeds)", f"{e:.3f}", "<= 0.05", e <= 0.05 + 0.03)
    # float noise: ten components that change nothing but the summation order
    cfg = parse_config(simulated_config({f"n{i}": 0.0 for i in range(10)}, 0.0, 5, seed_noise=1.0,
                                        n_bootstrap=200, secondary=False))
    ess = []
    for rep in range(min(reps, 50)):
        recs = records_for(cfg, replicate=rep)
        for r in recs:
            if r.removed:
                r.final["score"] *= 1 + 2e-16 * (1 + (r.seed + rep) % 3)
        comps = analyse(recs, cfg, contamination=False).groups["default"].components
        ess.append(sum(v.verdict == "essential" for v in comps.values()))
    row("essential among 10 float-noise components, 5 seeds (per study)", f"{np.mean(ess):.2f}", "0",
        max(ess) == 0)
    # TOST power: a null effect, 6 seeds, min_effect = 2 SD of the paired differences
    for k in (1, 3):
        effects = {f"z{i}": 0.0 for i in range(k)}
        rates = _study_rates(effects, 6, 2.0, reps, 1 / np.sqrt(2), seed_noise=1.0)
        neg = np.mean([rates[c].get("negligible", 0.0) for c in effects])
        row(f"TOST power: null effect, 6 seeds, min_effect = 2 SD ({k} component{'s' if k > 1 else ''}, Holm)",
            f"{neg:.3f}", ">= 0.80", neg >= 0.80)
    console.print(table)

    cov = Table(title="Coverage of 95% intervals (4000 samples per cell)", title_justify="left")
    cov.add_column("data")
    cov.add_column("interval")
    ns = (3, 4, 5, 6, 8, 10)
    for n in ns:
        cov.add_column(f"n={n}", justify="right")
    cov.add_column("target >= 0.93", justify="right")
    rng = np.random.default_rng(0)
    for name, (sample, truth) in SAMPLES.items():
        vals = [_coverage(sample, n, 4000, truth, rng) for n in ns]
        cov.add_row(name, "t (reported)", *[f"{v:.3f}" for v in vals], "yes" if min(vals) >= 0.93 else "NO")
        for boot in ("percentile", "BCa"):
            vals = [_coverage(sample, n, 1000, truth, rng, boot) for n in ns]
            cov.add_row("", f"{boot} bootstrap (not shown below 10 seeds)" if boot == "percentile" else
                        "BCa bootstrap (shown from 10 seeds)", *[f"{v:.3f}" for v in vals], "")
    console.print(cov)

    inter = Table(title="Unlisted interaction (random design, attention x ffn; 5 seeds, 12 variants, noise 0.01, "
                        "min_effect 0.015)",
                  title_justify="left")
    for h in ("case", "warned 'attention x ffn'", "ffn essential (truth: costs 0.03)", "ffn effect (mean)",
              "analysis s / study"):
        inter.add_column(h, justify="right")
    effects = {"attention": 0.08, "ffn": 0.03, "norm": 0.0, "dropout": 0.0, "pos": 0.02}
    kw = {"design": "random", "total_trials": 60, "design_seed": 1, "n_bootstrap": 200, "secondary": False,
          "min_effect": 0.015}
    for label, interaction in (("interaction -0.03", {"attention+ffn": -0.03}), ("no interaction", {})):
        cfg = parse_config(simulated_config(effects, 0.01, 5, interaction=interaction, **kw))
        for scan in (False, True):
            warned, kept, est, secs = [], [], [], []
            for rep in range(min(reps, 100)):
                g = group_records(records_for(cfg, replicate=rep))["default"]
                t = time.perf_counter()
                mains, _, check = regression_effects(g, cfg.components, [], "score", "max", 0.05, 0.015, scan=scan)
                secs.append(time.perf_counter() - t)
                warned.append(check is not None and "attention x ffn" in check.found)
                kept.append(mains["ffn"].verdict == "essential")
                est.append(mains["ffn"].effect)
            inter.add_row(f"{label}, {'with' if scan else 'without'} the check",
                          f"{_rate(warned):.3f}" if scan else "-", f"{_rate(kept):.3f}", f"{np.mean(est):.4f}",
                          f"{np.mean(secs):.4f}")
    console.print(inter)
    console.print(f"(part 0 took {time.time() - t0:.0f} s)")


def part1(reps: int, n_bootstrap: int, console: Console) -> None:
    table = Table(title=f"Verdict accuracy, fixed 10 seeds vs adaptive 3..10 ({reps} simulated studies per row)",
                  title_justify="left")
    for h in ("noise", "seeds", "true-positive rate", "false-positive rate (per null)", "FWER",
              "trials / study", "trials saved"):
        table.add_column(h, justify="right")
    t0 = time.time()
    for noise in NOISES:
        common = {"min_effect": MIN_EFFECT, "n_bootstrap": n_bootstrap, "seed_noise": noise}
        fixed_cfg = parse_config(simulated_config(EFFECTS, noise, 10, **common))
        adaptive = {f"adaptive 3..10 {d}": parse_config(simulated_config(EFFECTS, noise, 10, adaptive=(3, 10), **common)
                                                          | {"seeds": {"initial": 3, "max": 10, "design": d}})
                    for d in DESIGNS}
        rows = {"fixed 10": [], **{name: [] for name in adaptive}}
        for rep in range(reps):
            rows["fixed 10"].append(score(records_for(fixed_cfg, replicate=rep), fixed_cfg))
            for name, cfg in adaptive.items():
                rows[name].append(score(run_adaptive(cfg, replicate=rep), cfg))
        base_trials = np.mean([r["trials"] for r in rows["fixed 10"]])
        for name, rs in rows.items():
            tp = np.mean([r["tp"] for r in rs])
            fp = np.mean([r["fp"] for r in rs])
            fw = np.mean([r["any_fp"] for r in rs])
            tr = np.mean([r["trials"] for r in rs])
            table.add_row(f"{noise:g}", name, f"{tp:.3f}", f"{fp:.3f}", f"{fw:.3f}", f"{tr:.1f}",
                          "" if name == "fixed 10" else f"{(1 - tr / base_trials) * 100:.0f}%")
    console.print(table)
    console.print(f"(part 1 took {time.time() - t0:.0f} s; effects {EFFECTS}, min_effect {MIN_EFFECT}, alpha 0.05)")


def big_config(n_groups: int, n_components: int, n_seeds: int):
    effects = {f"c{i:02d}": (1.0 if i % 3 == 0 else 0.0) for i in range(n_components)}
    cfgd = simulated_config(effects, 0.5, n_seeds, min_effect=0.25, pairs=[("c00", "c01"), ("c02", "c03")],
                            sweep={"path": "sim.base", "values": [10.0 + i for i in range(n_groups)]},
                            reference_result=12.5)
    return cfgd, parse_config(cfgd)


def part2(console: Console) -> None:
    # 10 sweep groups x (1 baseline + 47 single removals + 2 pairs) x 20 seeds = 10,000 trials
    cfgd, config = big_config(10, 47, 20)
    records = records_for(config)
    n = len(records)
    table = Table(title=f"Analysis time of a {n:,}-trial ledger (10 groups x 50 variants x 20 seeds, "
                        f"{config.analysis.n_bootstrap} bootstrap resamples)", title_justify="left")
    table.add_column("what")
    table.add_column("wall s (best of 3)", justify="right")
    table.add_column("CPU s", justify="right")
    table.add_column("wall vs goal 2 s", justify="right")

    def timed(label, fn, goal=2.0, repeat=3):
        best, cpu = float("inf"), float("inf")
        for _ in range(repeat):
            t, c = time.perf_counter(), time.process_time()
            fn()
            best = min(best, time.perf_counter() - t)
            cpu = min(cpu, time.process_time() - c)
        table.add_row(label, f"{best:.2f}", f"{cpu:.2f}", f"{best / goal:.2f}x" if goal else "")
        return best

    timed("analyse(records) in memory", lambda: analyse(records, config))
    tmp = Path(tempfile.mkdtemp(prefix="ablator-bench-"))
    try:
        study = Study.create(tmp / "big", yaml.safe_dump(cfgd, sort_keys=False), cfgd["name"])
        files.FSYNC = False  # through the ledger's writer (record.json and the study index), without
        for r in records:   # fsync: the writing is not what is timed
            study.trial(r.trial_id).write(r)
        files.FSYNC = True
        timed("Study.records() + analyse (from disk)", lambda: analyse_study(study.path))
        timed("Study.records() alone", lambda: Study(study.path).records(), goal=0)
        timed("build_report (+ tables, csv, json, 21 plots)",
              lambda: build_report(study.path, console=Console(file=io.StringIO())), goal=0, repeat=1)
        timed("load_study(path) + trials() + effects() (verdicts.json current)",
              lambda: (lambda r: (r.trials(), r.effects()))(load_study(study.path)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    console.print(table)
    load = os.getloadavg()[0]
    console.print(f"(load average {load:.1f} on {os.cpu_count()} cores while timing; CPU s is this process's own "
                  "CPU time, which other work on the machine does not inflate)")


def factor_coverage(reps: int, console: Console) -> None:
    """Factor-effect coverage: CIs of known level effects and trend, null-factor rate, alternative verdicts."""
    from orchestrator.analysis.factors import analyse_levels
    from orchestrator.analysis.records import group_records
    from tests.support.simulated_factors import TRUTH, records, study

    t0 = time.time()
    table = Table(title=f"Factor effects and alternatives ({reps} simulated studies per row; nominal coverage 0.95)")
    for col in ("design", "trials", "width slope covered", "act levels covered", "null depth p<0.05",
                "alternatives right", "alternatives wrong sign"):
        table.add_column(col, justify="right")
    designs = {"one_at_a_time": ({"type": "one_at_a_time"}, list(range(10))),
               "random": ({"type": "random", "total_trials": 240, "seed": 3}, list(range(4)))}
    truth_alt = {"batch": "essential", "rms": "harmful", "group": "negligible"}
    for name, (design, seeds) in designs.items():
        config = parse_config(study(design, seeds, TRUTH, 0.5))
        slope = levels = null = right = wrong = 0
        n_trials = 0
        for rep in range(reps):
            recs = records(config, rep)
            n_trials = len(recs)
            out = analyse_levels(group_records(recs)["default"], config, 0.05, 0.5)
            f = out["factors"]
            slope += f["model.width"].ci[0] <= 0.5 <= f["model.width"].ci[1]
            levels += sum(lv.ci[0] <= t <= lv.ci[1]
                          for lv, t in ((f["model.act"].levels["gelu"], 0.8),
                                        (f["model.act"].levels["tanh"], -0.8)))
            null += f["model.depth"].p < 0.05
            for alt, r in out["alternatives"]["norm"].items():
                right += r.verdict == truth_alt[alt]
                wrong += r.verdict in ("essential", "harmful") and r.verdict != truth_alt[alt]
        table.add_row(name, str(n_trials), f"{slope / reps:.3f}", f"{levels / (2 * reps):.3f}", f"{null / reps:.3f}",
                      f"{right / (3 * reps):.3f}", f"{wrong / (3 * reps):.3f}")
    console.print(table)
    console.print(f"(factor coverage took {time.time() - t0:.0f} s; truth in tests/support/simulated_factors.py)")


def interval_coverage(reps: int, console: Console) -> None:
    """Simultaneous coverage of ci_sim (goal >= 0.95) against the per-row 95% t intervals, per family."""
    from tests.support.simulated_factors import TRUTH, records, study

    t0 = time.time()
    table = Table(title=f"Simultaneous coverage: all of a family's intervals cover at once ({reps} studies per row)")
    for col in ("family", "design", "seeds", "m", "ci_sim (goal >= 0.95)", "per-row 95% t (reference)", "ratio"):
        table.add_column(col, justify="right")
    fams = []
    for n in (3, 5, 10):
        fams.append(("components", "one_at_a_time", n, parse_config(simulated_config(
            EFFECTS, 0.5, n, min_effect=MIN_EFFECT, n_bootstrap=100, secondary=False)), None))
    fams.append(("components", "random", 4, parse_config(simulated_config(
        EFFECTS, 0.5, 4, design="random", total_trials=64, min_effect=MIN_EFFECT, n_bootstrap=100,
        secondary=False)), None))
    alt_truth = {"batch": 1.0, "rms": -1.0, "group": 0.0}  # the baseline's choice minus the alternative
    for n in (3, 10):
        fams.append(("alternatives", "one_at_a_time", n,
                     parse_config(study({"type": "one_at_a_time"}, list(range(n)), TRUTH, 0.5)), alt_truth))
    for family, design, n, config, truth in fams:
        both = plain = 0
        m = 0
        for rep in range(reps):
            if truth is None:
                rows = analyse(records_for(config, replicate=rep), config, contamination=False).groups[
                    "default"].components
                want = EFFECTS
            else:
                rows = analyse(records(config, rep), config, contamination=False).groups[
                    "default"].alternatives["norm"]
                want = truth
            m = len(rows)
            both += all(r.ci_sim[0] <= want[k] <= r.ci_sim[1] for k, r in rows.items())
            plain += all(r.ci[0] <= want[k] <= r.ci[1] for k, r in rows.items())
        table.add_row(family, design, str(n), str(m), f"{both / reps:.3f}", f"{plain / reps:.3f}",
                      f"{both / max(plain, 1):.2f}")
    console.print(table)
    console.print(f"(interval coverage took {time.time() - t0:.0f} s)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n-bootstrap", type=int, default=2000)
    ap.add_argument("--part", choices=["0", "1", "2", "factors", "intervals", "all"], default="all")
    args = ap.parse_args()
    console = Console(width=160)
    if args.part in ("0", "all"):
        part0(100 if args.quick else args.reps, console)
    if args.part in ("1", "all"):
        part1(50 if args.quick else args.reps, args.n_bootstrap, console)
    if args.part in ("2", "all"):
        part2(console)
    if args.part in ("factors", "all"):
        factor_coverage(50 if args.quick else args.reps, console)
    if args.part in ("intervals", "all"):
        interval_coverage(100 if args.quick else args.reps, console)


if __name__ == "__main__":
    main()
