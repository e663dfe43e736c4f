"""What W&B tracking costs a study, and how far its writers go.

    python benchmarks/tracking.py --scenario short     # 1000 trials of 10 ms, 2 at a time
    python benchmarks/tracking.py --scenario long      # 2-s trials, one per core
    python benchmarks/tracking.py --scenario crowd     # 1000 trials running at once
    python benchmarks/tracking.py --scenario writers   # threads vs a process pool, raw wandb
    python benchmarks/tracking.py --scenario short --trials 200 --repeats 1   # quicker
    python benchmarks/tracking.py --scenario short --launcher   # through the launcher on local Ray

short/long: a driver-like loop replays a study against the tracker, tracking disabled
and offline in turn (disabled, offline, offline, disabled, ...). Worker processes
write record.json and metrics.jsonl as the trial workers do (fixed CPU work per
trial); the driver calls trial_update on every record change it sees, poll every
loop turn, log_analysis and close at the end. Prints the wall-time ratio offline /
disabled (a reference measured in the same run), runs written per second, and the
peak file descriptors and RSS of the driver plus its wandb-core service (CPU figures leave
out the thread that samples them).
crowd: 1000 trials RUNNING at once, each reporting a row per second, to show the
open-run cap at work (peak fds, RSS). writers: wandb runs per second written by N
threads of one process vs N processes. Prints numbers; asserts nothing.
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
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.config import parse_config
from orchestrator.ledger import COMPLETED, RUNNING, Study, TrialRecord, TrialStore
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
SCENARIOS = {  # trials, reports per trial, CPU seconds per trial, trials at once
    "short": {"trials": 1000, "epochs": 2, "trial_s": 0.01, "concurrency": 2},
    "long": {"trials": 8, "epochs": 10, "trial_s": 2.0, "concurrency": os.cpu_count() or 2},
}


# ---------------------------------------------------------------- the worker side


def spin(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i
    return x


def calibrate(seconds: float = 0.5) -> float:
    """Loop iterations per CPU second of `spin` (CPU time: other load does not skew it)."""
    n, t0 = 100_000, time.process_time()
    done = 0
    while time.process_time() - t0 < seconds:
        spin(n)
        done += n
    return done / (time.process_time() - t0)


def row(epoch: int, attempt: int = 1) -> dict:
    return {"step": epoch, "attempt": attempt, "time": time.time(), "acc": 0.5 + 0.04 * epoch,
            "val_loss": 1.0 - 0.08 * epoch, "train_loss": 1.1 - 0.09 * epoch, "lr": 1e-3}


def run_trial(study_path: str, trial_id: str, epochs: int, work: int) -> TrialRecord:
    """One trial as a worker runs it: RUNNING, a report per epoch, COMPLETED."""
    store = TrialStore(Path(study_path) / "trials" / trial_id)
    record = store.read()
    now = time.time()
    record = record.model_copy(update=dict(state=RUNNING, attempts=record.attempts + 1, attempt_started=now,
                                           started_at=record.started_at or now, host=os.uname().nodename,
                                           pid=os.getpid()))
    store.write(record)
    for epoch in range(epochs):
        spin(work)  # the epoch's training
        store.append_metrics(row(epoch, record.attempts))
    last = store.history()[-1]
    return store.update(state=COMPLETED, final={k: last[k] for k in ("acc", "val_loss", "train_loss")},
                        ended_at=time.time(), duration_s=time.time() - now, attempt_started=None,
                        data_fingerprints={"train": {"hash": "d1f0c0de", "n": 4096}})


def burn(ctx) -> None:
    """Trainable for `--launcher`: fixed CPU work per epoch, one report per epoch."""
    cfg = ctx.config["bench"]
    state = ctx.restore()
    for epoch in range(0 if state is None else state["epoch"] + 1, cfg["epochs"]):
        spin(cfg["work"])
        ctx.report({"acc": 0.5 + 0.04 * epoch, "val_loss": 1.0 - 0.08 * epoch}, checkpoint={"epoch": epoch})


# ---------------------------------------------------------------- measuring


class Peak:
    """Samples the open files and RSS of this process and its wandb-core children; `cpu` is their
    CPU seconds less the sampling thread's own (it scans /proc 20 times a second: a cost that follows
    wall time, neither W&B's nor the tracker's)."""

    def __init__(self, every: float = 0.05):
        import psutil

        self._me, self.every = psutil.Process(), every
        self.fds = self.rss = 0
        self.own = 0.0  # the sampler thread's CPU: the measuring's, neither W&B's nor the tracker's
        self.cpu = -self.cpu_seconds()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.cpu += self.cpu_seconds() - self.own

    def cpu_seconds(self) -> float:
        """CPU seconds of this process (every thread) and its live wandb-core children."""
        import psutil

        total = time.process_time()
        for p in self._me.children(recursive=True):
            try:
                if "wandb" in p.name():
                    times = p.cpu_times()
                    total += times.user + times.system
            except psutil.Error:
                continue
        return total

    def _run(self):
        start = time.thread_time()
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)
        self.own = time.thread_time() - start

    def sample(self):
        import psutil

        procs = [self._me]
        try:
            procs += [p for p in self._me.children(recursive=True) if "wandb" in p.name()]
        except psutil.Error:
            pass
        fds = rss = 0
        for p in procs:
            try:
                fds += p.num_fds()
                rss += p.memory_info().rss
            except psutil.Error:
                continue
        self.fds, self.rss = max(self.fds, fds), max(self.rss, rss)


def new_study(root: Path, mode: str, n: int, name: str | None = None) -> tuple:
    config = parse_config({**CONFIG, "tracking": {"wandb": {"mode": mode}}})
    study = Study.create(root / f"{name or mode}-{time.monotonic_ns()}", json.dumps(CONFIG), config.name)
    variants = [("baseline", [])] + [(c, [c]) for c in config.components]
    ids = []
    for i in range(n):
        variant, removed = variants[i % len(variants)]
        tid = f"{variant}-seed{i // len(variants)}"
        study.trial(tid).write(TrialRecord(trial_id=tid, variant=variant, removed=removed, seed=i // len(variants)))
        ids.append(tid)
    return config, study, ids


def replay_study(mode: str, root: Path, pool: cf.Executor, args, work: int, provenance: dict) -> dict:
    """The driver loop over a fresh study: submit, wait, re-read running records, tick."""
    config, study, ids = new_study(root, mode, args.trials)
    with Peak() as peak:
        t0 = time.perf_counter()
        tracker = make_tracker(config, study, provenance, echo=lambda line: None)
        todo, inflight, seen = list(ids), {}, {}
        last_refresh = 0.0

        def notify(record: TrialRecord) -> None:
            key = (record.state, record.attempts)
            if seen.get(record.trial_id) != key:
                seen[record.trial_id] = key
                tracker.trial_update(record)

        while todo or inflight:
            while todo and len(inflight) < args.concurrency:
                tid = todo.pop(0)
                inflight[pool.submit(run_trial, str(study.path), tid, args.epochs, work)] = tid
            done, _ = cf.wait(list(inflight), timeout=1.0, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                inflight.pop(fut)
                notify(fut.result())
            if time.monotonic() - last_refresh >= 1.0:  # as the runner: re-read in-flight records
                last_refresh = time.monotonic()
                for tid in inflight.values():
                    notify(study.trial(tid).read())
                tracker.poll()
        trials_s = time.perf_counter() - t0
        (study.path / "results.csv").write_text("component,delta\nctc_head,0.1\ndropout,0.0\nlayers,0.02\n")
        tracker.log_analysis(study.path)
        t1 = time.perf_counter()
        tracker.close()
        close_s = time.perf_counter() - t1
        wall = time.perf_counter() - t0
    return {"mode": mode, "wall_s": wall, "trials_s": trials_s, "close_s": close_s,
            "fds": peak.fds, "rss_mb": peak.rss / 2**20, "cpu_s": peak.cpu}


def launcher_study(mode: str, root: Path, args, work: int, run: int) -> dict:
    """The same study through the real launcher (local Ray, the driver loop, the report)."""
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
    with Peak() as peak:
        t0 = time.perf_counter()
        launch(path, console=Console(quiet=True), dashboard=False)
        wall = time.perf_counter() - t0
    return {"mode": mode, "wall_s": wall, "trials_s": float("nan"), "close_s": float("nan"),
            "fds": peak.fds, "rss_mb": peak.rss / 2**20, "cpu_s": peak.cpu}


def floor(root: Path, n: int, epochs: int, provenance: dict) -> dict:
    """The W&B SDK's own floor: `n` lean offline runs, each with a trial's payload (its config,
    one logged row per report, its final summary), written one after another by one thread.

    The payload is what the tracker sends for a trial of `new_study` (built by
    `orchestrator.tracking.payload` from a COMPLETED record); the settings are wandb's lean
    offline ones. Returns the CPU seconds of this process and its wandb-core per run.
    """
    import wandb

    from orchestrator.tracking import payload as P

    config, study, ids = new_study(root, "offline", n, name="floor")
    settings = {"mode": "offline", "silent": True, "quiet": True, "console": "off", "x_disable_stats": True,
                "x_disable_machine_info": True, "disable_git": True, "save_code": False,
                "disable_job_creation": True, "x_save_requirements": False, "symlink": False}
    payloads = []
    for tid in ids:
        rec = study.trial(tid).read().model_copy(update={
            "state": COMPLETED, "attempts": 1, "started_at": time.time(), "host": os.uname().nodename,
            "final": {"acc": 0.9, "val_loss": 0.2, "train_loss": 0.3}, "duration_s": 0.01})
        payloads.append((P.run_id(study.study_id, tid, rec.started_at), P.run_name(rec),
                         P.run_tags(config, rec), P.trial_config(config, rec, provenance, study.study_id),
                         [P.history_row(row(e)) for e in range(epochs)], P.trial_summary(rec), rec.stage))

    def one(run_id, name, tags, cfg, rows, summary, stage):
        run = wandb.init(project="floor", id=run_id, name=name, tags=tags, job_type=stage, group=study.study_id,
                         dir=str(study.path), config=cfg, settings=wandb.Settings(**settings))
        for step, values in enumerate(rows):
            run.log(values, step=step)
        run.summary.update(summary)
        run.finish()

    one(*payloads[0])  # the service may start outside the timing (the tracker's first run starts it too)
    with Peak() as peak:
        for item in payloads[1:]:
            one(*item)
    return {"cpu_ms": peak.cpu / (n - 1) * 1000}


def crowd(args, provenance: dict) -> None:
    """Many trials RUNNING at once, a row each per second: the open-run cap bounds the files."""
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        config, study, ids = new_study(Path(tmp), "offline", args.trials)
        with Peak() as peak:
            t0 = time.perf_counter()
            tracker = make_tracker(config, study, provenance, echo=lambda line: None,
                                   max_open_runs=args.max_open_runs)
            records = {}
            for tid in ids:
                records[tid] = study.trial(tid).update(state=RUNNING, attempts=1, started_at=time.time())
                tracker.trial_update(records[tid])
            for epoch in range(args.epochs):
                for tid in ids:
                    study.trial(tid).append_metrics(row(epoch))
                tracker.poll()
                time.sleep(1.0)
            for tid in ids:
                rec = records[tid].model_copy(update={"state": COMPLETED, "final": {"acc": 0.9}})
                study.trial(tid).write(rec)
                tracker.trial_update(rec)
            tracker.close()
            wall = time.perf_counter() - t0
        from orchestrator.tracking.offline import logged_runs

        runs = logged_runs(study.path / "wandb")
        segments = sum(len(v) for v in runs.values())
        print(f"crowd: {args.trials} trials running at once, {args.epochs} rows each, cap "
              f"{args.max_open_runs} open runs: {wall:.1f} s, {len(runs)} runs in {segments} segments, "
              f"peak fds {peak.fds}, peak RSS {peak.rss / 2**20:.0f} MiB (driver + wandb-core)")


# ---------------------------------------------------------------- threads vs processes


def _raw_runs(args: tuple) -> float:
    """Write `n` runs of 10 rows with `threads` threads; return the seconds it took."""
    root, n, threads, tag = args
    os.environ["WANDB_SILENT"] = "true"
    import wandb

    def settings():
        return wandb.Settings(mode="offline", silent=True, quiet=True, console="off", x_disable_stats=True,
                              x_disable_machine_info=True, disable_git=True, save_code=False,
                              disable_job_creation=True, x_save_requirements=False, symlink=False)

    def one(i):
        run = wandb.init(project="bench", id=f"{tag}-{i}", dir=root, resume="allow", reinit="create_new",
                         settings=settings(), config={"i": i})
        for step in range(10):
            run.log({"acc": step / 10}, step=step)
        run.finish()

    one(-1)  # wandb-core starts outside the timing
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(threads) as ex:
        list(ex.map(one, range(n)))
    return time.perf_counter() - t0


def writers(args) -> None:
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        n = args.trials
        for threads in (1, 2, 4, 8):
            s = _raw_runs((tmp, n, threads, f"t{threads}"))
            print(f"writers: {threads} thread(s) in one process: {n / s:6.1f} runs/s")
        ctx = mp.get_context("spawn")
        for procs in (2, 4):
            with cf.ProcessPoolExecutor(procs, mp_context=ctx) as pool:
                list(pool.map(spin, [1] * procs))  # the processes start outside the timing
                t0 = time.perf_counter()
                parts = list(pool.map(_raw_runs, [(tmp, n // procs, 1, f"p{procs}-{i}") for i in range(procs)]))
                wall = time.perf_counter() - t0  # includes each process importing wandb + its service
            print(f"writers: {procs} processes x 1 thread: {n / max(parts):6.1f} runs/s once started, "
                  f"{n / wall:6.1f} runs/s counting each one's wandb import and service start")


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", choices=["short", "long", "crowd", "writers"], default="short")
    ap.add_argument("--trials", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None, help="reports per trial")
    ap.add_argument("--trial-s", type=float, default=None, help="CPU seconds of work per trial")
    ap.add_argument("--concurrency", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=2, help="runs of each mode")
    ap.add_argument("--max-open-runs", type=int, default=64, help="crowd: the tracker's open-run cap")
    ap.add_argument("--dir", default=None, help="where the studies go (default: a temp dir)")
    ap.add_argument("--launcher", action="store_true",
                    help="short/long through orchestrator.session.launch on local Ray instead of the replay "
                         "(the driver's CPU then includes Ray's; trials is rounded to whole seeds)")
    args = ap.parse_args()
    os.environ.setdefault("WANDB_SILENT", "true")
    defaults = SCENARIOS.get(args.scenario, {"trials": 1000 if args.scenario == "crowd" else 200,
                                             "epochs": 5, "trial_s": 0.0, "concurrency": 1})
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    provenance = collect()  # once, outside the timing (the driver does it once per study too)
    if args.scenario == "writers":
        return writers(args)
    if args.scenario == "crowd":
        return crowd(args, provenance)
    work = int(calibrate() * args.trial_s / args.epochs)
    modes = ["disabled", "offline"]
    print(f"{args.scenario}: {args.trials} trials x {args.epochs} reports, ~{args.trial_s:.3g} s CPU each, "
          f"{args.concurrency} at a time, on {os.cpu_count()} cores; {args.repeats} repeats")
    results: dict[str, list[dict]] = {m: [] for m in modes}
    floors: list[float] = []
    if args.launcher:
        from orchestrator.execution import runner

        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private loopback cluster
        # Ray starts outside the timing, in its own short temp dir (socket paths stay short)
        runner.connect(dashboard=False, num_cpus=args.concurrency, temp_dir=tempfile.mkdtemp(prefix="rt_", dir="/tmp"))
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp, cf.ProcessPoolExecutor(
            args.concurrency, mp_context=mp.get_context("spawn")) as pool:
        list(pool.map(spin, [1000] * args.concurrency))  # start the workers outside the timing
        for r in range(args.repeats):
            for mode in (modes if r % 2 == 0 else modes[::-1]):
                res = (launcher_study(mode, Path(tmp), args, work, r) if args.launcher
                       else replay_study(mode, Path(tmp), pool, args, work, provenance))
                results[mode].append(res)
                print(f"  {mode:9s} wall {res['wall_s']:7.2f} s  (trials {res['trials_s']:7.2f} s, close "
                      f"{res['close_s']:5.2f} s)  driver+wandb-core CPU {res['cpu_s']:6.2f} s  "
                      f"peak fds {res['fds']:4d}  peak RSS {res['rss_mb']:5.0f} MiB", flush=True)
            if not args.launcher:  # the floor, in the same run, between the tracker's runs
                floors.append(floor(Path(tmp), min(args.trials, 200), args.epochs, provenance)["cpu_ms"])
                print(f"  floor     {floors[-1]:5.1f} ms CPU per lean offline run (driver + wandb-core)", flush=True)
    med = {m: statistics.median(r["wall_s"] for r in results[m]) for m in modes}
    off = results["offline"]
    print(f"\noffline / disabled wall-time ratio (median): {med['offline'] / med['disabled']:.3f}")
    extra = statistics.median(r["cpu_s"] for r in off) - statistics.median(r["cpu_s"] for r in results["disabled"])
    trial_cpu = args.trials * args.trial_s
    print(f"tracking CPU (driver + wandb-core, offline - disabled, median): {extra:.2f} s = "
          f"{extra / args.trials * 1000:.1f} ms per trial = {extra / trial_cpu * 100:.0f} % of the trials' "
          f"{trial_cpu:.0f} CPU s (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    if floors:
        per = extra / args.trials * 1000
        print(f"the SDK's floor (a lean offline run, the same config, rows and summary, one after another): "
              f"{statistics.median(floors):.1f} ms CPU per run (runs: {', '.join(f'{f:.1f}' for f in floors)}); "
              f"tracking / floor: {per / statistics.median(floors):.2f}x (goal <= 1.2x)")
    print(f"runs written per second (trials / offline wall): {args.trials / med['offline']:.1f}")
    print(f"peak fds offline {max(r['fds'] for r in off)} (disabled {max(r['fds'] for r in results['disabled'])}), "
          f"peak RSS offline {max(r['rss_mb'] for r in off):.0f} MiB "
          f"(disabled {max(r['rss_mb'] for r in results['disabled']):.0f} MiB), driver + wandb-core")


if __name__ == "__main__":
    main()
