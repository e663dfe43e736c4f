"""What W&B tracking costs a study: the same small study with tracking disabled and offline.

    python benchmarks/tracking.py                 # 8 trials of ~5 s, 10 reports each, 2 at a time
    python benchmarks/tracking.py --trials 4 --repeats 1   # quicker

Until `orchestrator.session.launch(config_path, ...)` drives this, a driver-like loop
replays the pattern of a real study against the tracker: worker processes write
record.json and metrics.jsonl exactly as the trial workers do (fixed CPU work per
epoch, so any CPU the tracker takes shows up as wall time), and the driver calls
trial_update on every record change, poll on every loop turn, study_summary and
close at the end. Modes alternate (disabled, offline, offline, disabled, ...) so
drift hits both. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.config import parse_config
from orchestrator.ledger import COMPLETED, PENDING, RUNNING, Study, TrialStore
from orchestrator.provenance import collect
from orchestrator.tracking import make_tracker

CONFIG = {
    "name": "bench",
    "trainable": "json:dumps",
    "metrics": {"primary": {"name": "acc", "mode": "max"}, "secondary": [{"name": "val_loss", "mode": "min"}]},
    "baseline": {"model": {"head": "ctc", "dropout": 0.1, "layers": 4}, "train": {"epochs": 10}},
    "components": {
        "ctc_head": {"kind": "structural", "description": "CTC head", "removal": {"model.head": "none"}},
        "dropout": {"kind": "training", "description": "dropout", "removal": {"model.dropout": 0.0}},
        "layers": {"kind": "structural", "description": "extra layers", "removal": {"model.layers": 1}},
    },
}


# ---------------------------------------------------------------- the worker side


def spin(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i
    return x


def calibrate(seconds: float = 0.5) -> float:
    """Loop iterations per CPU second of `spin` (CPU time: other load on the machine does not skew it)."""
    n, t0 = 200_000, time.process_time()
    done = 0
    while time.process_time() - t0 < seconds:
        spin(n)
        done += n
    return done / (time.process_time() - t0)


def run_trial(study_path: str, trial_id: str, epochs: int, work: int) -> dict:
    """One trial as a worker runs it: RUNNING, a report per epoch, COMPLETED."""
    store = TrialStore(Path(study_path) / "trials" / trial_id)
    record = store.read()
    now = time.time()
    record.update(state=RUNNING, attempts=record["attempts"] + 1, attempt_started=now,
                  started_at=record.get("started_at") or now, host=os.uname().nodename, pid=os.getpid())
    store.write(record)
    for epoch in range(epochs):
        spin(work)  # the epoch's training
        store.append_metrics({"step": epoch, "attempt": record["attempts"], "time": time.time(),
                              "acc": 0.5 + 0.04 * epoch, "val_loss": 1.0 - 0.08 * epoch,
                              "train_loss": 1.1 - 0.09 * epoch, "lr": 1e-3})
    record = store.read()
    last = store.history()[-1]
    record.update(state=COMPLETED, final={k: last[k] for k in ("acc", "val_loss", "train_loss")},
                  ended_at=time.time(), duration_s=time.time() - now, attempt_started=None,
                  data_fingerprints={"train": {"hash": "d1f0c0de", "n": 4096}})
    store.write(record)
    return record


def burn(ctx) -> None:
    """Trainable for `--launcher`: fixed CPU work per epoch, one report per epoch."""
    cfg = ctx.config["bench"]
    state = ctx.restore()
    for epoch in range(0 if state is None else state["epoch"] + 1, cfg["epochs"]):
        spin(cfg["work"])
        ctx.report({"acc": 0.5 + 0.04 * epoch, "val_loss": 1.0 - 0.08 * epoch, "train_loss": 1.1 - 0.09 * epoch},
                   checkpoint={"epoch": epoch})


# ---------------------------------------------------------------- the driver side


def child_cpu_seconds() -> float:
    """CPU seconds of this process's live children (the wandb-core service, not the pool)."""
    total, me = 0.0, str(os.getpid())
    tick = os.sysconf("SC_CLK_TCK")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[1] == me and "wandb" in comm:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def replay_study(mode: str, root: Path, pool: cf.Executor, args, work: int, provenance: dict) -> dict:
    """A driver loop over a fresh study: returns wall time and the tracker call latencies."""
    config = parse_config({**CONFIG, "tracking": {"wandb": {"mode": mode}}})
    study = Study.create(root / f"{mode}-{time.monotonic_ns()}", json.dumps(CONFIG), config.name)
    variants = [("baseline", [])] + [(c, [c]) for c in config.components]
    specs = [(f"{v}-seed{s}", v, removed, s) for s in range(args.trials) for v, removed in variants][: args.trials]
    for tid, variant, removed, seed in specs:
        study.trial(tid).write({"trial_id": tid, "stage": "ablation", "variant": variant, "removed": removed,
                                "seed": seed, "group": None, "overrides": {}, "inference_only": False,
                                "source_trial": None, "state": PENDING, "attempts": 0, "errors": [],
                                "final": None, "started_at": None, "ended_at": None, "duration_s": 0.0,
                                "data_fingerprints": {}})
    update_s: list[float] = []
    poll_s: list[float] = []
    cpu0, core0 = time.process_time(), child_cpu_seconds()
    t0 = time.perf_counter()
    tracker = make_tracker(config, study, provenance, echo=lambda line: None)
    make_s = time.perf_counter() - t0

    def update(record):
        t = time.perf_counter()
        tracker.trial_update(record)
        update_s.append(time.perf_counter() - t)

    seen: dict[str, tuple] = {}
    for record in study.records():  # what the driver does first: replay every record
        seen[record["trial_id"]] = (record["state"], record["attempts"])
        update(record)
    todo = list(specs)
    inflight: dict[cf.Future, str] = {}
    while todo or inflight:
        while todo and len(inflight) < args.concurrency:
            tid = todo.pop(0)[0]
            inflight[pool.submit(run_trial, str(study.path), tid, args.epochs, work)] = tid
        done, _ = cf.wait(list(inflight), timeout=args.tick, return_when=cf.FIRST_COMPLETED)
        for fut in done:
            fut.result()
            inflight.pop(fut)
        for tid in [s[0] for s in specs if seen.get(s[0], (None,))[0] != COMPLETED]:
            record = study.trial(tid).read()
            key = (record["state"], record["attempts"])
            if seen.get(tid) != key:
                seen[tid] = key
                update(record)
        t = time.perf_counter()
        tracker.poll()
        poll_s.append(time.perf_counter() - t)
    trials_s = time.perf_counter() - t0
    (study.path / "results.csv").write_text("component,delta\nctc_head,0.1\ndropout,0.0\nlayers,0.02\n")
    tracker.study_summary(study.path)
    t = time.perf_counter()
    tracker.close()
    close_s = time.perf_counter() - t
    wandb_cpu = child_cpu_seconds() - core0
    return {"mode": mode, "wall_s": time.perf_counter() - t0, "trials_s": trials_s, "close_s": close_s,
            "make_s": make_s,
            "driver_cpu_s": time.process_time() - cpu0, "wandb_core_cpu_s": wandb_cpu,
            "update_us": [x * 1e6 for x in update_s], "poll_us": [x * 1e6 for x in poll_s]}


def launcher_study(mode: str, root: Path, args, work: int, run: int) -> dict:
    """The same study through the real launcher (Ray, the lead's driver loop, the report)."""
    import yaml
    from rich.console import Console

    from orchestrator.session import launch

    seeds = max(1, args.trials // (1 + len(CONFIG["components"])))
    config = {**CONFIG, "name": f"bench-{mode}-{run}", "trainable": "benchmarks.tracking:burn",
              "baseline": {**CONFIG["baseline"], "bench": {"epochs": args.epochs, "work": work}},
              "seeds": list(range(seeds)), "storage": {"root": str(root)},
              "tracking": {"wandb": {"mode": mode}}, "tuning": {"enabled": False},
              "resources": {"max_concurrent": args.concurrency}}
    path = root / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config))
    cpu0, core0 = time.process_time(), child_cpu_seconds()
    t0 = time.perf_counter()
    launch(path, console=Console(quiet=True), dashboard=False)
    return {"mode": mode, "wall_s": time.perf_counter() - t0, "make_s": float("nan"), "close_s": float("nan"),
            "driver_cpu_s": time.process_time() - cpu0, "wandb_core_cpu_s": child_cpu_seconds() - core0,
            "update_us": [float("nan")], "poll_us": [float("nan")], "n_trials": seeds * 4}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=10, help="reports per trial")
    ap.add_argument("--trial-s", type=float, default=5.0, help="CPU seconds of work per trial")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2, help="runs of each mode")
    ap.add_argument("--tick", type=float, default=1.0, help="driver loop turn (s)")
    ap.add_argument("--modes", default="disabled,offline")
    ap.add_argument("--dir", default=None, help="where the studies go (default: a temp dir)")
    ap.add_argument("--launcher", action="store_true",
                    help="run the studies through orchestrator.session.launch (local Ray) instead of the replay")
    args = ap.parse_args()

    os.environ.setdefault("WANDB_SILENT", "true")
    provenance = collect()  # once, outside the timing (the driver does it once per study too)
    rate = calibrate()
    work = int(rate * args.trial_s / args.epochs)
    modes = args.modes.split(",")
    print(f"{args.trials} trials x {args.epochs} reports, ~{args.trial_s:.1f} s CPU each, "
          f"{args.concurrency} at a time, on {os.cpu_count()} cores; modes {modes}, {args.repeats} repeats")
    results: dict[str, list[dict]] = {m: [] for m in modes}
    if args.launcher:
        from orchestrator.execution import runner

        runner.connect(dashboard=False, num_cpus=args.concurrency)  # Ray starts outside the timing
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp, cf.ProcessPoolExecutor(
            1 if args.launcher else args.concurrency, mp_context=mp.get_context("spawn")) as pool:
        if not args.launcher:
            list(pool.map(spin, [1000] * args.concurrency))  # start the workers outside the timing
        for r in range(args.repeats):
            for mode in (modes if r % 2 == 0 else modes[::-1]):
                if args.launcher:
                    res = launcher_study(mode, Path(tmp), args, work, r)
                else:
                    res = replay_study(mode, Path(tmp), pool, args, work, provenance)
                results[mode].append(res)
                parts = "" if args.launcher else (f"  (make_tracker {res['make_s']:4.2f} s, "
                                                  f"close {res['close_s']:4.2f} s)")
                print(f"  {mode:9s} wall {res['wall_s']:6.2f} s{parts}  driver CPU {res['driver_cpu_s']:5.2f} s  "
                      f"wandb-core CPU {res['wandb_core_cpu_s']:5.2f} s", flush=True)
    print()
    base = statistics.median(r["wall_s"] for r in results[modes[0]])
    for mode in modes:
        walls = [r["wall_s"] for r in results[mode]]
        ups = [u for r in results[mode] for u in r["update_us"]]
        polls = [u for r in results[mode] for u in r["poll_us"]]
        line = (f"{mode:9s} median wall {statistics.median(walls):6.2f} s   ratio to {modes[0]} "
                f"{statistics.median(walls) / base:.3f}")
        if not args.launcher:
            line += (f"   trial_update p50 {pct(ups, .5):5.1f} us  p99 {pct(ups, .99):6.1f} us  "
                     f"max {max(ups):7.1f} us ({len(ups)} calls)   poll p50 {pct(polls, .5):5.1f} us")
        print(line)
    if len(modes) == 2:
        a, b = (statistics.median(r["wall_s"] for r in results[m]) for m in modes)
        print(f"\n{modes[1]} / {modes[0]} wall-time ratio (median): {b / a:.3f}  ({(b / a - 1) * 100:+.1f} %)")
        # the same cost measured in CPU seconds, which other load on the machine does not blur
        cpu = {m: statistics.median(r["driver_cpu_s"] + r["wandb_core_cpu_s"] for r in results[m]) for m in modes}
        extra = cpu[modes[1]] - cpu[modes[0]]
        trial_cpu = args.trials * args.trial_s
        print(f"{modes[1]} tracking CPU (driver + wandb-core, median): {extra:.2f} s per study = "
              f"{extra / trial_cpu * 100:.1f} % of the trials' {trial_cpu:.0f} CPU s")


if __name__ == "__main__":
    main()
