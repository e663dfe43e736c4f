"""The ledger at scale: build a study of N finished trials through the ledger's own writer,
then time `ablator status`, `ablator report` and resume planning as subprocesses.

    python -m benchmarks.scale --trials 100000            # goals: status < 1 s,
                                                          # report < 10 s and < 1 GB, planning < 5 s
    python -m benchmarks.scale --yaml-mb 5                # a 5 MB config: strict loader vs old parse
    python -m benchmarks.scale --launch 10000             # the driver's CPU per trial of a real launch
                                                          # in a terminal, against a 2,600-trial launch
                                                          # (goal: within 1.25x)

Each trial is written as a real driver and worker would: PENDING, RUNNING, COMPLETED
(three record.json writes, three study-index lines). fsync is off while building (the
built ledger is thrown away; it does not change what the readers do). The reference in
the same run is the layout without the study index (every trial directory opened), timed
on the same study with index.jsonl moved aside, unless --no-reference.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent

PLANNING = """
import sys, time
from rich.console import Console
from orchestrator.config import load_config
from orchestrator import plan as planning
from orchestrator.execution import runner
from orchestrator.session import mend_records
from orchestrator.ledger import Study
t = time.perf_counter()
study = Study(sys.argv[1])
study.check()
config = load_config(study.config_path)
mend_records(study, Console(quiet=True))
specs = planning.ablation_trials(config)
todo = runner.prepare(study, specs)
print(f"{len(specs)} trials planned, {len(todo)} to run, {time.perf_counter() - t:.2f} s")
"""


def study_config(n_trials: int, root: Path, components: int = 49) -> dict:
    """A one-at-a-time study of `components` components whose seeds make about n_trials trials."""
    seeds = max(2, n_trials // (components + 1))
    return {
        "name": "scale",
        "trainable": "tests.trainables:faulty",
        "metrics": {"primary": {"name": "score", "mode": "max"}},
        "baseline": {"train": {"epochs": 1, "sleep": 0.0}, "fault": {"mode": "none", "epoch": 9},
                     "model": {f"c{i}": 1 for i in range(components)}},
        "components": {f"c{i}": {"kind": "structural", "description": f"component {i}",
                                 "removal": {f"model.c{i}": 0}} for i in range(components)},
        "seeds": list(range(seeds)),
        "analysis": {"n_bootstrap": 1000, "min_effect": 0.01},
        "storage": {"root": str(root)},
        "tracking": {"wandb": {"mode": "disabled"}},
        "tuning": {"enabled": False},
    }


def build(root: Path, n_trials: int, components: int = 49, fsync: bool = False) -> Path:
    """Write a finished study through the ledger's writer; return its directory."""
    import random

    from orchestrator import plan as planning
    from orchestrator.config import parse_config
    from orchestrator.execution.runner import new_record
    from orchestrator.ledger import COMPLETED, RUNNING, Study, files

    data = study_config(n_trials, root, components)
    config = parse_config(data)
    files.FSYNC = fsync
    study = Study.create(root / config.name, yaml.safe_dump(data, sort_keys=False), config.name)
    specs = planning.ablation_trials(config)
    study.write_plan({"trials": [s.to_dict() for s in specs]})
    rng = random.Random(0)
    effects = {f"c{i}": rng.choice([0.0, 0.05, -0.05]) for i in range(components)}
    for spec in specs:
        store = study.trial(spec.trial_id)
        record = new_record(spec)
        store.write(record)
        now = time.time()
        record = record.model_copy(update={"state": RUNNING, "attempts": 1, "attempt_started": now,
                                           "started_at": now, "host": "node-1"})
        store.write(record)
        score = 1.0 - sum(effects[c] for c in spec.removed) + rng.gauss(0, 0.02)
        record = record.model_copy(update={"state": COMPLETED, "final": {"score": score}, "ended_at": now + 1,
                                           "duration_s": 1.0, "attempt_started": None})
        store.write(record)
    study.set_stage("ablation", "completed")
    study.keep_status_cache()  # as the driver does at the end of each stage (and each minute while trials run)
    files.FSYNC = True
    return study.path


# runs the command as its only child and prints that child's wall time and peak RSS
WRAP = """
import resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.run(sys.argv[1:]).returncode
print(f"MEASURED {time.perf_counter() - t} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}",
      file=sys.stderr)
sys.exit(rc)
"""


def timed(args: list[str], cwd: Path) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, last output line) of one command run as a subprocess."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "disabled", "COLUMNS": "120"}
    proc = subprocess.run([sys.executable, "-c", WRAP, *args], cwd=cwd, env=env, capture_output=True, check=False,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    measured = [ln for ln in proc.stderr.splitlines() if ln.startswith("MEASURED ")][-1].split()
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    return float(measured[1]), int(measured[2]) / 1024, lines[-1] if lines else ""


def measure(study: Path) -> dict[str, tuple[float, float, str]]:
    ablator = [sys.executable, "-c", "from orchestrator.cli import app; app()"]
    return {
        "status": timed(ablator + ["status", str(study)], REPO),
        "report": timed(ablator + ["report", str(study)], REPO),
        "resume planning": timed([sys.executable, "-c", PLANNING, str(study)], REPO),
    }


def yaml_part(mb: float = 5.0) -> None:
    """Load a config of about `mb` MB: the strict loader vs the old way (pure-Python parse, twice)."""
    from orchestrator.config import load_config

    data = study_config(100, Path("studies"), components=3)
    rows = int(mb * 1e6 / 45)
    data["baseline"]["table"] = {f"k{i}": {"a": i, "b": 0.5, "c": [1, 2, 3]} for i in range(rows)}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=None))
        text = path.read_text()
        t = time.perf_counter()
        load_config(path)
        new = time.perf_counter() - t
        t = time.perf_counter()
        yaml.compose(text, Loader=yaml.SafeLoader)  # the old loader: compose for lines, then load again
        yaml.safe_load(text)
        old = time.perf_counter() - t
    print(f"config of {len(text) / 1e6:.1f} MB: strict loader (libyaml, one parse, checks, validation) "
          f"{new:.1f} s; the old parse alone (pure Python, twice) {old:.1f} s; ratio {old / new:.1f}")


DRIVER = """
import json, resource, sys
out, sys.argv = sys.argv[1], ["ablator", "launch", *sys.argv[2:]]
from orchestrator.cli import app
try:
    app()
finally:  # the driver process alone (Ray's daemons are other processes)
    r = resource.getrusage(resource.RUSAGE_SELF)
    json.dump({"cpu_s": r.ru_utime + r.ru_stime}, open(out, "w"))
"""


def driver_cpu(trials: int) -> tuple[float, float]:
    """(driver CPU s, wall s) of `ablator launch` of `trials` trivial trials, run in a terminal
    (a pseudo-terminal from `script`, so the live progress bar draws as it would for a user)."""
    import json
    import shlex

    from benchmarks.overhead import trivial_study

    root = Path(tempfile.mkdtemp(prefix="ablator-launch-"))
    try:
        config = trivial_study(root, f"t{trials}", trials)
        out = root / "cpu.json"
        cmd = shlex.join([sys.executable, "-c", DRIVER, str(out), config.name, "--no-dashboard",
                          "--ray-temp-dir", tempfile.mkdtemp(prefix="rt_", dir="/tmp")])
        env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO), "COLUMNS": "120"}
        t = time.perf_counter()
        subprocess.run(["script", "-qefc", cmd, "/dev/null"], cwd=root, env=env, check=True,
                       stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        return json.loads(out.read_text())["cpu_s"], time.perf_counter() - t
    finally:
        shutil.rmtree(root, ignore_errors=True)


def launch_part(trials: int, reference: int = 2600) -> None:
    per = {}
    for n in (reference, trials):
        cpu, wall = driver_cpu(n)
        per[n] = cpu / n * 1000
        print(f"ablator launch of {n:6d} trivial trials in a terminal: driver CPU {cpu:.1f} s "
              f"({per[n]:.2f} ms per trial), wall {wall:.0f} s")
    print(f"driver CPU per trial, {trials} vs {reference} trials: {per[trials] / per[reference]:.2f}x "
          "(goal: within 1.25x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None, help="Where to build (default: a temp dir).")
    parser.add_argument("--no-reference", action="store_true", help="Skip the run without the study index.")
    parser.add_argument("--study", type=Path, default=None, help="Time a study built before (kept).")
    parser.add_argument("--yaml-mb", type=float, default=0, help="Only time loading a config this big.")
    parser.add_argument("--launch", type=int, default=0, help="Only measure the driver's CPU per trial of a "
                        "real launch of this many trials against a 2,600-trial one.")
    args = parser.parse_args()
    if args.yaml_mb:
        yaml_part(args.yaml_mb)
        return
    if args.launch:
        launch_part(args.launch)
        return
    root = Path(tempfile.mkdtemp(prefix="ablator-scale-", dir=args.dir))
    try:
        t = time.perf_counter()
        study = args.study or build(root, args.trials)
        n = sum(1 for _ in (study / "trials").iterdir())
        size = (study / "index.jsonl").stat().st_size / 1e6
        print(f"{n} trials built through the ledger's writer ({time.perf_counter() - t:.0f} s; "
              f"index.jsonl {size:.0f} MB)")
        goals = {"status": (1, None), "report": (10, 1024), "resume planning": (5, None)}
        results = measure(study)
        (study / "index.jsonl.status").unlink(missing_ok=True)
        cold = timed([sys.executable, "-c", "from orchestrator.cli import app; app()", "status", str(study)], REPO)
        print(f"status with the status cache deleted (the reader replays the whole index): {cold[0]:.2f} s")
        reference = {}
        if not args.no_reference:
            (study / "index.jsonl.status").unlink(missing_ok=True)
            (study / "index.jsonl").rename(study / "index.jsonl.aside")
            reference = measure(study)
            (study / "index.jsonl.aside").rename(study / "index.jsonl")
        print(f"{'command':<16} {'wall s':>8} {'peak MB':>8} {'goal':>12} {'no index s':>11} {'ratio':>6}")
        for name, (wall, rss, _) in results.items():
            secs, mb = goals[name]
            goal = f"< {secs} s" + (f", {mb} MB" if mb else "")
            ref = reference.get(name, (float("nan"),))[0]
            print(f"{name:<16} {wall:>8.2f} {rss:>8.0f} {goal:>12} {ref:>11.2f} {ref / wall:>6.1f}")
        print("last lines:", *(f"  {k}: {v[2]}" for k, v in results.items()), sep="\n")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
