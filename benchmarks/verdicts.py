"""Benchmark of the verdicts on simulated studies with known truth.

    python benchmarks/verdicts.py            # about two minutes on 2 cores
    python benchmarks/verdicts.py --quick    # fewer replicates
    python benchmarks/verdicts.py --part factors   # factor-effect coverage only

Part 1 - verdict accuracy and trials used, fixed 10 seeds vs adaptive seeds 3..10, at
several noise levels (noise = std of each trial's own noise; a shared per-seed part of the
same size cancels in the pairing). Components: three with no effect, and three real ones
(effects +1.0, +2.0, -1.5) against analysis.min_effect 0.5. A real component is found when
its verdict is essential (harmful for the negative one); a null one is a false positive
when it gets either verdict. FWER = share of studies with at least one false positive.

Part 2 - time to analyse a 10,000-trial ledger: records in memory, and read from a study
directory on disk (Study.records + analysis), and the full build_report (with plots).

Prints tables; no assertions.
"""

from __future__ import annotations

import argparse
import io
import json
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

from components.simulated import records_for, run_adaptive, simulated_config
from orchestrator.analysis import analyse, build_report
from orchestrator.analysis.report import analyse_study
from orchestrator.config import parse_config
from orchestrator.ledger import Study

EFFECTS = {"null1": 0.0, "null2": 0.0, "null3": 0.0, "medium": 1.0, "large": 2.0, "harmful": -1.5}
MIN_EFFECT = 0.5
NOISES = (0.25, 0.5, 0.75, 1.0)


def score(records, config) -> dict:
    a = analyse(records, config, contamination=False)
    comps = a["groups"]["default"]["components"]
    real = [c for c, e in EFFECTS.items() if abs(e) >= MIN_EFFECT]
    null = [c for c, e in EFFECTS.items() if e == 0]
    found = sum(comps[c]["verdict"] == ("essential" if EFFECTS[c] > 0 else "harmful") for c in real)
    fps = sum(comps[c]["verdict"] != "no evidence" for c in null)
    trials = sum(1 for r in records if r["stage"] == "ablation")
    return {"tp": found / len(real), "fp": fps / len(null), "any_fp": fps > 0, "trials": trials}


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
        adapt_cfg = parse_config(simulated_config(EFFECTS, noise, 10, adaptive=(3, 10), **common))
        rows = {"fixed 10": [], "adaptive 3..10": []}
        for rep in range(reps):
            rows["fixed 10"].append(score(records_for(fixed_cfg, replicate=rep), fixed_cfg))
            rows["adaptive 3..10"].append(score(run_adaptive(adapt_cfg, replicate=rep), adapt_cfg))
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
        for r in records:  # the ledger's layout, written without fsync: the writing is not what is timed
            d = study.trials_dir / r["trial_id"]
            d.mkdir(parents=True, exist_ok=True)
            (d / "record.json").write_text(json.dumps(r, indent=1))
        timed("Study.records() + analyse (from disk)", lambda: analyse_study(study.path))
        timed("Study.records() alone", lambda: Study(study.path).records(), goal=0)
        timed("build_report (+ tables, csv, json, 21 plots)",
              lambda: build_report(study.path, console=Console(file=io.StringIO())), goal=0, repeat=1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    console.print(table)
    load = os.getloadavg()[0]
    console.print(f"(load average {load:.1f} on {os.cpu_count()} cores while timing; CPU s is this process's own "
                  "CPU time, which other work on the machine does not inflate)")


def factor_coverage(reps: int, console: Console) -> None:
    """Factor-effect coverage: CIs of known level effects and trend, null-factor rate, alternative verdicts."""
    from components.simulated_factors import TRUTH, records, study
    from orchestrator.analysis.factors import analyse_levels
    from orchestrator.analysis.records import group_records

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
            slope += f["model.width"]["ci"][0] <= 0.5 <= f["model.width"]["ci"][1]
            levels += sum(lv["ci"][0] <= t <= lv["ci"][1]
                          for lv, t in ((f["model.act"]["levels"]["gelu"], 0.8), (f["model.act"]["levels"]["tanh"], -0.8)))
            null += f["model.depth"]["p"] < 0.05
            for alt, r in out["alternatives"]["norm"].items():
                right += r["verdict"] == truth_alt[alt]
                wrong += r["verdict"] in ("essential", "harmful") and r["verdict"] != truth_alt[alt]
        table.add_row(name, str(n_trials), f"{slope / reps:.3f}", f"{levels / (2 * reps):.3f}", f"{null / reps:.3f}",
                      f"{right / (3 * reps):.3f}", f"{wrong / (3 * reps):.3f}")
    console.print(table)
    console.print(f"(factor coverage took {time.time() - t0:.0f} s; truth in components/simulated_factors.py)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n-bootstrap", type=int, default=2000)
    ap.add_argument("--part", choices=["1", "2", "factors", "all"], default="all")
    args = ap.parse_args()
    console = Console(width=140)
    if args.part in ("1", "all"):
        part1(50 if args.quick else args.reps, args.n_bootstrap, console)
    if args.part in ("2", "all"):
        part2(console)
    if args.part in ("factors", "all"):
        factor_coverage(50 if args.quick else args.reps, console)


if __name__ == "__main__":
    main()
