"""Sequential seeds' savings through real `ablator launch` runs, on benchmarks/sequential.py's stated mix.

    python benchmarks/sequential_launch.py            # 3 replicates (9 launches)
    python benchmarks/sequential_launch.py --quick    # 1 replicate
    python benchmarks/sequential_launch.py --reps 2

In a temporary project directory (the trainable is written there; `ablator` runs from there, the package
on PYTHONPATH only when it is not installed), a simulated trainable of known effects: the primary metric is
``base + sum of the effects of the components kept`` + a seeded Gaussian noise per seed shared by every
variant (cancelled by pairing) + a seeded Gaussian noise per (variant, seed) of SD ``MIX_SD``, so the paired
differences are those benchmarks/sequential.py simulates (effects ``MIX``, min_effect ``MIN_EFFECT``,
alpha 0.05, one-at-a-time design, K = 6 components). Each replicate (its own noise streams) launches the
same study three ways: fixed seeds 0..9, ``seeds: {initial: 3, max: 10, design: lean}`` and
``design: thorough``; every launch joins one private Ray head (loopback, its own temp dir and ports, 2 CPUs,
no dashboard, ended by its PID) with ``--address ... --no-upload``; W&B and tuning off.

From each study: trials = the COMPLETED ablation-stage trials in the ledger (baseline included: a trial is
one variant at one seed), rows decided = components whose verdict (verdicts.json) is essential, harmful or
negligible, and wrong verdicts. A verdict is wrong when it contradicts the mix's truth: the right decision
for a true effect e is essential when e > min_effect, harmful when e < -min_effect, negligible when
|e| < min_effect, none at |e| = min_effect (the mix has no such row); any other decision (e.g.
essential for ``null``, negligible for ``near-margin``, whose true effect is 1.2x min_effect) is
wrong; inconclusive is never wrong. Prints per replicate and in total:
trials and rows decided against fixed seeds (goal <= 0.60x and >= 0.95x), and the wrong verdicts per design.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.sequential import INITIAL, MAX, MIN_EFFECT, MIX, MIX_SD  # noqa: E402

TRAINABLE = '''
import random


def run(ctx):
    cfg = ctx.config
    kept = [c for c, on in cfg["parts"].items() if on]
    removed = ",".join(sorted(c for c, on in cfg["parts"].items() if not on))
    score = cfg["base"] + sum(cfg["effects"][c] for c in kept)
    shared = random.Random(f"{cfg['replicate']}/{ctx.seed}").gauss(0, cfg["seed_noise"])
    own = random.Random(f"{cfg['replicate']}/{ctx.seed}/{removed}").gauss(0, cfg["noise"])
    ctx.report({"score": score + shared + own})
'''
DESIGNS = ("fixed", "lean", "thorough")
DECIDED = ("essential", "harmful", "negligible")


def right_verdict(effect: float) -> str | None:
    """The decision the truth allows (None: no decision is right, at the margin)."""
    if effect > MIN_EFFECT:
        return "essential"
    if effect < -MIN_EFFECT:
        return "harmful"
    return "negligible" if abs(effect) < MIN_EFFECT else None


def study_config(design: str, replicate: int) -> dict:
    """The mix's study: one component per MIX entry, removal switches its part off."""
    seeds = list(range(MAX)) if design == "fixed" else {"initial": INITIAL, "max": MAX, "design": design}
    return {
        "name": f"{design}{replicate}", "trainable": "simmix:run",
        "metrics": {"primary": {"name": "score", "mode": "max"}},
        "baseline": {"base": 10.0, "noise": MIX_SD, "seed_noise": 0.5, "replicate": replicate,
                     "parts": {c: True for c in MIX}, "effects": dict(MIX)},
        "components": {c: {"kind": "structural", "description": f"true effect {e:g}",
                           "removal": {f"parts.{c}": False}} for c, e in MIX.items()},
        "seeds": seeds, "analysis": {"min_effect": MIN_EFFECT, "n_bootstrap": 100},
        "tracking": {"wandb": {"mode": "disabled"}}, "tuning": {"enabled": False},
    }


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def ray_head(temp: Path) -> tuple[subprocess.Popen, str]:
    """A private Ray head (`ray start --block`, ended by its PID) and its address."""
    port, dash, agent, client = free_ports(4)
    out = temp / "start.out"
    with open(out, "w") as log:
        head = subprocess.Popen(
            [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
             f"--port={port}", "--include-dashboard=false", f"--dashboard-port={dash}",
             f"--dashboard-agent-listen-port={agent}", f"--ray-client-server-port={client}",
             f"--temp-dir={temp / 'ray'}", "--num-cpus=2"],
            env={**os.environ, "RAY_AUTH_MODE": "disabled"}, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 180
    while "Ray runtime started" not in out.read_text():
        if head.poll() is not None or time.time() > deadline:
            head.terminate()
            sys.exit(f"the Ray head did not start:\n{out.read_text()[-2000:]}")
        time.sleep(1)
    return head, f"127.0.0.1:{port}"


def installed_here(project: Path, env: dict) -> bool:
    """Whether the environment's installed package is this checkout (else it goes on PYTHONPATH)."""
    found = subprocess.run([sys.executable, "-c", "import orchestrator; print(orchestrator.__file__)"], cwd=project,
                           env=env, capture_output=True, text=True, check=False).stdout.strip()
    return bool(found) and Path(found).resolve().is_relative_to(REPO)


def launch(project: Path, design: str, replicate: int, address: str) -> dict:
    """`ablator launch` of the study; its trials, rows decided and wrong verdicts."""
    from orchestrator.ledger import ABLATION, COMPLETED, Study

    config = study_config(design, replicate)
    path = project / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"RAY_AUTH_MODE": "disabled",
                                                                         "WANDB_MODE": "disabled"}
    if not installed_here(project, env):
        env["PYTHONPATH"] = str(REPO)
    result = subprocess.run([str(Path(sys.executable).parent / "ablator"), "launch", path.name, "--address", address,
                             "--no-upload"], cwd=project, env=env, capture_output=True, text=True, check=False)
    study = project / "studies" / config["name"]
    if result.returncode != 0 or not (study / "verdicts.json").exists():
        sys.exit(f"ablator launch failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    verdicts = {c: row["verdict"] for c, row in json.loads((study / "verdicts.json").read_text())["components"].items()}
    trials = sum(r.stage == ABLATION and r.state == COMPLETED for r in Study(study).records())
    decided = sum(v in DECIDED for v in verdicts.values())
    wrong = [c for c, v in verdicts.items() if v in DECIDED and v != right_verdict(MIX[c])]
    return {"trials": trials, "decided": decided, "wrong": wrong, "verdicts": verdicts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3, help="replicates (each its own noise streams)")
    ap.add_argument("--quick", action="store_true", help="1 replicate")
    args = ap.parse_args()
    reps = 1 if args.quick else args.reps
    print(f"Mix {MIX} (trial SD {MIX_SD}, min_effect {MIN_EFFECT}); seeds 0..{MAX - 1} fixed against "
          f"{{initial: {INITIAL}, max: {MAX}}} lean / thorough; {reps} replicate(s) through `ablator launch`")
    totals = {d: {"trials": 0, "decided": 0, "wrong": 0} for d in DESIGNS}
    with tempfile.TemporaryDirectory(prefix="seql_", dir="/tmp") as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        (project / "simmix.py").write_text(TRAINABLE)
        (Path(tmp) / "ray").mkdir()
        head, address = ray_head(Path(tmp))
        try:
            for rep in range(reps):
                got = {}
                for design in DESIGNS:
                    t0 = time.perf_counter()
                    got[design] = g = launch(project, design, rep, address)
                    for key in ("trials", "decided"):
                        totals[design][key] += g[key]
                    totals[design]["wrong"] += len(g["wrong"])
                    print(f"  replicate {rep} {design:8} trials {g['trials']:3d}  rows decided {g['decided']}  "
                          f"wrong {g['wrong'] or 'none'}  ({time.perf_counter() - t0:.0f} s)  {g['verdicts']}")
                ref = got["fixed"]
                for design in DESIGNS[1:]:
                    g = got[design]
                    print(f"  replicate {rep} {design:8} {g['trials'] / ref['trials']:.3f}x trials, "
                          f"{g['decided'] / max(ref['decided'], 1):.3f}x rows decided")
        finally:
            head.terminate()
            head.wait(60)
    ref = totals["fixed"]
    print(f"\nTotal over {reps} replicate(s): fixed {ref['trials']} trials, {ref['decided']} rows decided, "
          f"{ref['wrong']} wrong")
    for design in DESIGNS[1:]:
        t = totals[design]
        rt, rd = t["trials"] / ref["trials"], t["decided"] / max(ref["decided"], 1)
        goal = "met" if rt <= 0.60 and rd >= 0.95 and t["wrong"] == 0 else "not met"
        print(f"  {design:8} {t['trials']} trials ({rt:.3f}x), {t['decided']} rows decided ({rd:.3f}x), "
              f"{t['wrong']} wrong  (goal <= 0.60x, >= 0.95x, none wrong: {goal})")


if __name__ == "__main__":
    main()
