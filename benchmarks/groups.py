"""Start-up cost per attempt of a 2-worker group against a 1-worker trial, in one run.

    python -m benchmarks.groups [--trials 20]

Two studies of `--trials` trivial trials (two reports, two checkpoints, no work) through
`ablator launch` from a temporary project, one trial at a time (max_concurrent: 1) so that
each attempt's start-up is on the critical path:

1. workers_per_trial: 1 (a Ray task per attempt, its worker reused);
2. workers_per_trial: 2 (a placement group of two bundles, kept from one healthy attempt to
   the next, two ranks joining a gloo process group through the driver's rendezvous store and
   leaving it).

Per attempt: the ablation stage's wall time / trials (everything the driver waits for), and
the part inside the workers (the record's duration: from rank 0's start to its end, process
group set-up and teardown included). The ratio of the two studies is printed; beside it, the
same once the workers are warm (first trial's end -> last trial's end, / trials - 1), since
the first attempt's fresh workers (each imports torch) weigh on the whole-stage figure.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import yaml

from benchmarks.overhead import run_launch, trivial_study


def launch(root: Path, name: str, trials: int, workers: int) -> tuple[float, float, float]:
    """(stage seconds per attempt, in-worker seconds per attempt, seconds per attempt after the
    first) of a study of `workers`-worker trials."""
    path = trivial_study(root, name, trials)
    config = yaml.safe_load(path.read_text())
    config["resources"] = {"workers_per_trial": workers, "cpus_per_trial": 0.5, "max_concurrent": 1}
    path.write_text(yaml.safe_dump(config))
    stage, records = run_launch(root, path)
    assert len(records) == trials and all(r.state == "COMPLETED" and r.attempts == 1 for r in records)
    ends = sorted(r.ended_at for r in records)
    return ((stage["time"] - stage["started"]) / trials, sum(r.duration_s for r in records) / trials,
            (ends[-1] - ends[0]) / (trials - 1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ablator-bench-"))
    one_s, one_in, one_warm = launch(root, "one", args.trials, workers=1)
    two_s, two_in, two_warm = launch(root, "two", args.trials, workers=2)
    print(f"{args.trials} trivial trials each, one at a time, {os.cpu_count()} CPUs")
    print(f"1 worker  per trial: {1000 * one_s:7.0f} ms per attempt ({1000 * one_in:6.0f} ms inside the worker)")
    print(f"2 workers per trial: {1000 * two_s:7.0f} ms per attempt ({1000 * two_in:6.0f} ms inside rank 0: "
          "placement group, rendezvous, gloo process group)")
    print(f"ratio 2-worker group / 1-worker trial: {two_s / one_s:.1f}x per attempt "
          f"(+{1000 * (two_s - one_s):.0f} ms)")
    print(f"warm workers (after the first trial): {1000 * two_warm:.0f} vs {1000 * one_warm:.0f} ms per attempt, "
          f"{two_warm / one_warm:.1f}x")


if __name__ == "__main__":
    main()
