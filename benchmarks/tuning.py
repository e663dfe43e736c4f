"""Benchmarks of the tuning stage. Prints numbers; asserts nothing.

1. Search quality: TPE vs random search on the simulated objective (known optimum),
   best-value regret after N trials over several sampler seeds, 2 trials in flight
   (ask two, tell two: what constant liar is for).
2. Orchestration overhead per trial: tuning trials of a near no-op trainable (the simulated
   trainable, 1 epoch) through the stage's Ray path (ledger records, Ray task, Optuna
   journal) against plain Optuna in-process (in-memory and journal storage).

    RAY_AUTH_MODE=disabled python benchmarks/tuning.py [--seeds 10] [--overhead-trials 40]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

# These imports need the repository on sys.path (inserted above), so they cannot come first.
from orchestrator.tuning.search import make_sampler, quiet_optuna  # noqa: E402
from tests.support.simulated import clean_metrics, final_metrics, records_for, simulated_config  # noqa: E402

OPT = {"x": 0.7, "y": 1.0, "u": 2.2, "v": 0.4}
DIST = {k: optuna.distributions.FloatDistribution(0.0, 3.0) for k in OPT}


# ---------------------------------------------------------------- 1. search quality


def regret_after(sampler, budget: int, noise: float, seed: int, parallel: int = 2) -> float:
    """Regret (clean optimum - clean score at the best observed point) after `budget` trials."""
    study = optuna.create_study(direction="maximize", sampler=sampler)
    rng = np.random.default_rng(seed + 1000)
    n = 0
    while n < budget:
        trials = [study.ask(DIST) for _ in range(min(parallel, budget - n))]
        n += len(trials)
        for t in trials:
            score = clean_metrics({"hp": t.params, "hp_opt": OPT})[0]
            study.tell(t, score + noise * rng.standard_normal())
    best = study.best_trial.params
    return 10.0 - clean_metrics({"hp": best, "hp_opt": OPT})[0]


def search_quality(seeds: int, budgets: list[int], noise: float) -> None:
    samplers = {
        "random": lambda s, b: optuna.samplers.RandomSampler(seed=s),
        "TPE (Optuna default: 10 start-up)": lambda s, b: optuna.samplers.TPESampler(
            seed=s, multivariate=True, constant_liar=True),
        "TPE (the stage: budget/4 start-up)": lambda s, b: make_sampler(s, b),
    }
    print(f"\n== Search quality: 4 hyperparameters in [0, 3], score = 10 - sum (hp - opt)^2, "
          f"observation noise sd {noise}, 2 in flight, {seeds} seeds ==")
    print(f"{'sampler':38s}" + "".join(f"{'N=' + str(b):>22s}" for b in budgets))
    print(f"{'':38s}" + "".join(f"{'regret mean (median)':>22s}" for _ in budgets))
    for name, make in samplers.items():
        row = []
        for b in budgets:
            regrets = [regret_after(make(s, b), b, noise, s) for s in range(seeds)]
            row.append(f"{np.mean(regrets):.3f} ({np.median(regrets):.3f})")
        print(f"{name:38s}" + "".join(f"{r:>22s}" for r in row))


# ---------------------------------------------------------------- 2. orchestration overhead


def ablated_study(root: Path, name: str, n_trials: int, max_concurrent: int | None):
    """A study whose ablation is over (simulated records, component a essential), ready to tune."""
    from orchestrator.config import parse_config
    from orchestrator.ledger import Study
    from orchestrator.ledger.verdicts_json import Comparison, Verdicts, write_verdicts

    cfg = simulated_config({"a": 1.0}, noise=0.1, seeds=[0], name=name, epochs=1)
    cfg["baseline"]["hp"] = {"x": 0.3, "y": 2.0}
    cfg["baseline"]["hp_opt"] = {"x": 0.7, "y": 1.0}
    cfg["components"]["a"]["tune"] = {"hp.x": {"value_range": [0.0, 1.0], "value_type": "float"}}
    cfg["tuning"] = {"enabled": True, "n_trials": n_trials, "max_concurrent": max_concurrent,
                     "search_space": {"hp.y": {"value_range": [0.0, 3.0], "value_type": "float"}}}
    cfg["tracking"] = {"wandb": {"mode": "disabled"}}
    cfg["storage"] = {"root": str(root)}
    config = parse_config(cfg)
    study = Study.create(root / name, yaml.safe_dump(cfg, sort_keys=False), name)
    for rec in records_for(config):
        study.trial(rec.trial_id).write(rec)
    write_verdicts(study.path / "verdicts.json",  # only what the tuning plan reads: a survived
                   Verdicts(study=name, primary={"name": "score", "mode": "max"}, alpha=0.05, min_effect=0.0,
                            design="one_at_a_time", complete=True,
                            components={"a": Comparison(method="paired", verdict="essential")}))
    study.set_stage("ablation", "completed")
    return study, config


def ray_path(root: Path, n: int, max_concurrent: int | None, label: str) -> float:
    """Seconds per trial of the stage's search loop (no confirmation) on Ray."""
    from orchestrator.ledger.verdicts_json import read_verdicts
    from orchestrator.tuning.search import Search, create_optuna_study
    from orchestrator.tuning.tuning_plan import tuning_plan

    study, config = ablated_study(root, label, n, max_concurrent)
    plan = tuning_plan(config, read_verdicts(study.path / "verdicts.json"))
    ostudy = create_optuna_study(study, config, plan, n)
    search = Search(study, config, plan, ostudy, on_update=lambda r: None)
    t0 = time.perf_counter()
    search.run(n)
    return (time.perf_counter() - t0) / n, search.executor.slots()


def in_process(n: int, storage_dir: Path | None) -> float:
    def objective(trial):
        hp = {"x": trial.suggest_float("hp.x", 0, 1), "y": trial.suggest_float("hp.y", 0, 3)}
        return final_metrics({"hp": hp, "hp_opt": {"x": 0.7, "y": 1.0}}, 0)["score"]

    storage = None
    if storage_dir is not None:
        from optuna.storages.journal import JournalFileBackend

        storage = optuna.storages.JournalStorage(JournalFileBackend(str(storage_dir / "bench.log")))
    study = optuna.create_study(direction="maximize", sampler=make_sampler(0, n), storage=storage)
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=n)
    return (time.perf_counter() - t0) / n


def overhead(n: int, num_cpus: int | None) -> None:
    from orchestrator.execution import runner

    root = Path(tempfile.mkdtemp(prefix="ablator-bench-"))
    temp = tempfile.mkdtemp(prefix="rt_b", dir="/tmp")
    try:
        t0 = time.perf_counter()
        runner.connect(None, temp_dir=temp, dashboard=False, num_cpus=num_cpus)
        start = time.perf_counter() - t0
        ray_path(root, 4, None, "warmup")  # start worker processes, import the trainable
        rows = [("optuna in-process, in-memory storage", in_process(n, None), 1),
                ("optuna in-process, journal storage", in_process(n, root), 1)]
        for mc, label in ((1, "stage on Ray, 1 in flight"), (None, "stage on Ray, slots() in flight")):
            per, slots = ray_path(root, n, mc, label.replace(" ", "_").replace(",", "").replace("()", ""))
            rows.append((label, per, slots))
        print(f"\n== Orchestration overhead: {n} tuning trials of a no-op trainable "
              f"(Ray local cluster, {os.cpu_count()} cores; ray.init took {start:.1f} s, not counted) ==")
        print(f"{'path':40s}{'in flight':>10s}{'ms / trial':>12s}")
        for label, per, slots in rows:
            print(f"{label:40s}{slots:>10d}{per * 1000:>12.1f}")
    finally:
        import ray

        ray.shutdown()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(temp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budgets", type=int, nargs="+", default=[10, 20, 40])
    ap.add_argument("--noise", type=float, default=0.1)
    ap.add_argument("--overhead-trials", type=int, default=40)
    ap.add_argument("--num-cpus", type=int, default=None)
    ap.add_argument("--skip-overhead", action="store_true")
    args = ap.parse_args()
    quiet_optuna()
    warnings.filterwarnings("ignore")
    search_quality(args.seeds, args.budgets, args.noise)
    if not args.skip_overhead:
        overhead(args.overhead_trials, args.num_cpus)


if __name__ == "__main__":
    main()
