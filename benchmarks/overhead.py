"""Per-trial orchestration overhead: the orchestrator vs plain Ray tasks vs Ray Tune, one run.

    python benchmarks/overhead.py [--trials 200]

Every path runs the same trivial trainable (two reports, no work) on the same local Ray
cluster. Overhead per trial per worker slot = wall time x slots / trials.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ray  # noqa: E402
from rich.console import Console  # noqa: E402

from orchestrator.config import parse_config  # noqa: E402
from orchestrator.execution import runner  # noqa: E402
from orchestrator.ledger import Study  # noqa: E402
from orchestrator.plan import TrialSpec  # noqa: E402


def trivial(ctx):
    """The trainable: two reports with a checkpoint, no work."""
    for epoch in range(2):
        ctx.report({"score": float(epoch)}, checkpoint={"epoch": epoch})


def plain_task(seed: int) -> float:
    return float(seed)


CONFIG = {
    "name": "overhead",
    "trainable": "benchmarks.overhead:trivial",
    "metrics": {"primary": {"name": "score", "mode": "max"}},
    "baseline": {"x": 1},
    "components": {"x": {"kind": "training", "description": "x", "removal": {"x": 0}}},
    "resources": {"cpus_per_trial": 1},
}


def run_orchestrator(n: int, root: Path) -> float:
    config = parse_config(CONFIG)
    study = Study.create(root / "overhead", "", "overhead")
    specs = [TrialSpec(trial_id=f"t{i:05d}", stage="ablation", variant="baseline", removed=[], seed=i)
             for i in range(n)]
    for spec in specs:
        study.trial(spec.trial_id).write(runner.new_record(spec))
    executor = runner.TrialExecutor(study, config)
    start = time.perf_counter()
    records = runner.run_trials(executor, specs)
    elapsed = time.perf_counter() - start
    assert all(r["state"] == "COMPLETED" for r in records), "a trial did not complete"
    return elapsed


def run_plain(n: int) -> float:
    task = ray.remote(num_cpus=1)(plain_task)
    start = time.perf_counter()
    ray.get([task.remote(i) for i in range(n)])
    return time.perf_counter() - start


def run_tune(n: int, root: Path) -> float:
    from ray import tune

    def trainable(config):
        for epoch in range(2):
            tune.report({"score": float(epoch)})

    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={"seed": tune.grid_search(list(range(n)))},
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(root / "tune"), verbose=0),
    )
    start = time.perf_counter()
    tuner.fit()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--tune-trials", type=int, default=50, help="Ray Tune is slow: fewer trials")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ablator-bench-"))
    runner.connect(None, temp_dir=tempfile.mkdtemp(prefix="rt_", dir="/tmp"), dashboard=False)
    slots = int(ray.cluster_resources()["CPU"])
    run_plain(20)  # warm the worker pool so every path starts with live workers
    run_orchestrator(10, root / "warm")
    rows = [("plain Ray tasks", args.trials, run_plain(args.trials)),
            ("orchestrator", args.trials, run_orchestrator(args.trials, root))]
    try:
        rows.append(("Ray Tune (reuse_actors=True)", args.tune_trials, run_tune(args.tune_trials, root)))
    except ImportError:
        pass
    console = Console(width=140)
    console.print(f"{slots} worker slots (CPUs); trivial trials with 2 reports + 2 checkpoints each")
    per = {}
    for name, n, wall in rows:
        per[name] = wall * slots / n
        console.print(f"{name:32s} {n:5d} trials  {wall:7.2f} s   {per[name] * 1000:8.1f} ms per trial per slot")
    plain, orch = per["plain Ray tasks"], per["orchestrator"]
    console.print(f"orchestration overhead over plain Ray: {(orch - plain) * 1000:.1f} ms per trial per slot "
                  f"(goal < 100 ms); ratio orchestrator / plain Ray = {orch / plain:.1f}x")
    if "Ray Tune (reuse_actors=True)" in per:
        tune_per = per["Ray Tune (reuse_actors=True)"]
        console.print(f"ratio Ray Tune (reuse_actors) / orchestrator = {tune_per / orch:.1f}x")
    ray.shutdown()


if __name__ == "__main__":
    main()
