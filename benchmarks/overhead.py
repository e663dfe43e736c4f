"""Per-trial orchestration overhead, end to end through `ablator launch`, against plain Ray tasks.

    python benchmarks/overhead.py [--trials 500] [--failing 40]

In one run, on the same machine:

1. `ablator launch` of a study with `--trials` trivial trials (two reports, two
   checkpoints, no work), from a temporary project directory, worker isolation on.
   Its ablation stage time (from study.json) x slots / trials = overhead per trial-slot.
2. The same number of trivial plain Ray tasks (num_cpus=1) on a local Ray with the same
   CPUs: the floor any Ray-based orchestrator pays; and again with tasks that import torch
   (each worker's first task pays the import, as a PyTorch trial's first attempt does).
3. Worker isolation's cost: a study whose `--failing` trials each fail once (the worker
   ends itself, Ray starts a new one, the trial restarts): extra time per failed attempt.

Healthy trials keep reusing their workers, so isolation costs nothing until an attempt
fails. Goal: at most 25 ms per trial-slot over plain Ray.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent

TRAINABLE = '''
def run(ctx):
    if ctx.config["fail_once"] and ctx.attempt == 1:
        raise RuntimeError("fails once")
    for epoch in range(2):
        ctx.report({"score": float(epoch) + 0.001 * ctx.seed}, checkpoint={"epoch": epoch})
'''


def trivial_study(root: Path, name: str, trials: int, fail_once: bool = False) -> Path:
    """A project dir with the trivial trainable and a study of `trials` trials (2 variants)."""
    (root / "trivial.py").write_text(TRAINABLE)
    config = {
        "name": name, "trainable": "trivial:run",
        "metrics": {"primary": {"name": "score", "mode": "max"}},
        "baseline": {"x": 1, "fail_once": fail_once},
        "components": {"x": {"kind": "training", "description": "x", "removal": {"x": 0}}},
        "seeds": list(range(trials // 2)), "analysis": {"n_bootstrap": 100},
        "fault_tolerance": {"max_failures": 1},
        "tracking": {"wandb": {"mode": "disabled"}}, "tuning": {"enabled": False},
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_launch(root: Path, path: Path) -> tuple[dict, list]:
    """`ablator launch` of the study at `path` from the project `root`; (its ablation stage, its records)."""
    from orchestrator.ledger import Study

    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO)}
    ablator = str(Path(sys.executable).parent / "ablator")
    result = subprocess.run([ablator, "launch", path.name, "--no-dashboard", "--ray-temp-dir",
                             tempfile.mkdtemp(prefix="rt_", dir="/tmp")], cwd=root, env=env,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"ablator launch failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    study = root / "studies" / yaml.safe_load(path.read_text())["name"]
    return json.loads((study / "study.json").read_text())["stages"]["ablation"], Study(study).records()


def launch(root: Path, name: str, trials: int, fail_once: bool) -> tuple[float, dict]:
    """`ablator launch` of `trials` trivial trials; (ablation stage seconds, timings)."""
    stage, records = run_launch(root, trivial_study(root, name, trials, fail_once))
    first = min(r.started_at for r in records)
    durations = sorted(r.duration_s for r in records)
    timings = {"steady_s": max(r.ended_at for r in records) - first,  # first attempt start -> last end
               "startup_s": first - stage["started"],  # records written, first worker up
               "in_worker_ms": 1000 * sum(durations) / len(records),
               "median_ms": 1000 * durations[len(durations) // 2],
               "first_s": [r.duration_s for r in sorted(records, key=lambda r: r.started_at)[:os.cpu_count() or 1]]}
    return stage["time"] - stage["started"], timings


def _bare(i: int) -> float:
    return float(i)


def _with_torch(i: int) -> float:
    import torch  # noqa: F401  (a PyTorch trial's worker imports it once: its first task pays)

    return float(i)


def plain_ray(n: int, cpus: int) -> tuple[float, float]:
    """Seconds for `n` plain Ray tasks on a warm worker pool: (bare tasks, tasks that import torch as a
    PyTorch trial does, on a fresh pool whose first task per worker pays the import)."""
    import ray

    walls = []
    for fn in (_bare, _with_torch):
        ray.init(num_cpus=cpus, include_dashboard=False, _temp_dir=tempfile.mkdtemp(prefix="rt_", dir="/tmp"))
        warm, task = ray.remote(num_cpus=1)(_bare), ray.remote(num_cpus=1)(fn)
        ray.get([warm.remote(i) for i in range(2 * cpus)])  # a warm worker pool, as the launch has
        start = time.perf_counter()
        ray.get([task.remote(i) for i in range(n)])
        walls.append(time.perf_counter() - start)
        ray.shutdown()
    return walls[0], walls[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--failing", type=int, default=40, help="trials that fail once (isolation cost)")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    root = Path(tempfile.mkdtemp(prefix="ablator-bench-"))
    cpus = os.cpu_count() or 1

    healthy_s, timings = launch(root, "healthy", args.trials, fail_once=False)
    failing_s, _ = launch(root, "failing", args.failing, fail_once=True)
    reference_s, _ = launch(root, "reference", args.failing, fail_once=False)
    plain_s, torch_s = plain_ray(args.trials, cpus)

    per_orch = healthy_s * cpus / args.trials * 1000
    per_plain = plain_s * cpus / args.trials * 1000
    per_torch = torch_s * cpus / args.trials * 1000
    per_fail = (failing_s - reference_s) * cpus / args.failing * 1000
    print(f"{cpus} trial slots (CPUs); trivial trials: 2 reports + 2 checkpoints each")
    print(f"ablator launch   {args.trials:5d} trials  ablation stage {healthy_s:7.2f} s  "
          f"{per_orch:7.1f} ms per trial-slot (isolation on)")
    print(f"  of which: start-up {timings['startup_s']:.2f} s (PENDING records, first worker imports); "
          f"steady state {timings['steady_s'] * cpus / args.trials * 1000:.1f} ms per trial-slot; inside the "
          f"worker {timings['in_worker_ms']:.1f} ms per trial (durable ledger writes: record, metrics, checkpoints; "
          f"median {timings['median_ms']:.1f} ms; each worker's first attempt, which imports torch: "
          f"{', '.join(f'{s:.2f}' for s in timings['first_s'])} s)")
    print(f"plain Ray tasks  {args.trials:5d} tasks   {plain_s:22.2f} s  {per_plain:7.1f} ms per task-slot")
    print(f"  importing torch {args.trials:4d} tasks   {torch_s:22.2f} s  {per_torch:7.1f} ms per task-slot "
          "(each worker's first task imports it, as a PyTorch trial's does)")
    print(f"overhead over plain Ray: {per_orch - per_plain:.1f} ms per trial-slot (goal <= 25 ms); "
          f"ratio {per_orch / max(per_plain, 1e-9):.1f}x; over plain Ray tasks that import torch: "
          f"{per_orch - per_torch:.1f} ms")
    print(f"isolation: {args.failing} trials failing once took {failing_s:.2f} s vs {reference_s:.2f} s healthy: "
          f"{per_fail:.0f} ms per failed attempt per slot (a new worker process and the restart)")


if __name__ == "__main__":
    main()
