"""Trials of several workers (a torch.distributed group per attempt) through the real `ablator`.

Each test writes a data-parallel trainable into a temporary project and runs `ablator launch`
there, on CPU with gloo: every rank computes the gradient of its half of the data and the
ranks all-reduce it, so a 2-worker trial trains exactly as a 1-worker one. Real faults: a rank
SIGKILLed, a rank that hangs, a group that cannot fit, and Ray's real memory monitor.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from orchestrator.ledger import Study, TrialRecord
from tests.conftest import BIN, REPO, on_cluster
from tests.test_cluster_exec import two_nodes  # noqa: F401  (a fixture: a head and a worker node, 1 CPU each)

ABLATOR = str(BIN / "ablator")

TRAINABLE = '''
import os
import signal
import time

import psutil
import ray
import torch
import torch.distributed as dist


def _alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def run(ctx):
    cfg = ctx.config
    pids = ctx.trial_dir / f"pids{ctx.attempt}"
    pids.mkdir(exist_ok=True)
    group = ray.get_runtime_context().get_placement_group_id()
    store = f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}"  # where the ranks met
    (pids / str(ctx.rank)).write_text(f"{os.getpid()} {group} {store}")  # this rank's worker and placement group
    earlier = [int(p.read_text().split()[0])
               for a in range(1, ctx.attempt) for p in (ctx.trial_dir / f"pids{a}").glob("*")]
    world = ctx.world_size
    if world > 1:
        assert dist.is_initialized() and dist.get_world_size() == world and dist.get_rank() == ctx.rank
        assert os.environ["RANK"] == str(ctx.rank) and os.environ["LOCAL_RANK"] == str(ctx.local_rank)
    gen = torch.Generator().manual_seed(cfg["data_seed"])
    x = torch.randn(64, 4, generator=gen)
    y = x @ torch.tensor([2.0, -1.0, 0.5, 0.0]) + 0.1 * torch.randn(64, generator=gen)
    x = x * torch.tensor(cfg["mask"])
    x, y = x[ctx.rank::world], y[ctx.rank::world]  # this rank's shard
    torch.manual_seed(ctx.seed)
    w = torch.randn(4) * 0.1
    state = ctx.restore()
    start = 0 if state is None else state["epoch"] + 1
    if state is not None:
        w = state["w"]
    for epoch in range(start, cfg["epochs"]):
        chaos = cfg["chaos"]
        if world > 1 and ctx.attempt == 1 and epoch == chaos["epoch"] and ctx.rank == 1 and ctx.seed == 0:
            if ctx.variant == chaos["kill"]:
                os.kill(os.getpid(), signal.SIGKILL)
            if ctx.variant == chaos["hang"]:
                time.sleep(3600)
        grad = 2 * x.T @ (x @ w - y) / len(y)
        ranks = torch.ones(1)
        if world > 1:
            dist.all_reduce(grad)
            dist.all_reduce(ranks)
            grad /= world
        w = w - cfg["lr"] * grad + 0.02 * torch.randn(4)  # noise: seeds differ
        loss = ((x @ w - y) ** 2).sum()
        if world > 1:
            dist.all_reduce(loss)
        loss = float(loss) / 64
        stale = sum(_alive(p) for p in earlier)
        ctx.report({"loss": loss, "ranks": float(ranks), "stale_ranks": float(stale), "started": float(start)},
                   checkpoint={"epoch": epoch, "w": w})
'''


def project(tmp_path: Path, name: str, **changes) -> Path:
    root = tmp_path / name
    root.mkdir()
    (root / "dptrain.py").write_text(TRAINABLE)
    config = {
        "name": name,
        "trainable": "dptrain:run",
        "metrics": {"primary": {"name": "loss", "mode": "min"}},
        "baseline": {"mask": [1.0, 1.0, 1.0, 1.0], "data_seed": 0, "epochs": 4, "lr": 0.1,
                     "chaos": {"epoch": 1, "kill": "-", "hang": "-"}},
        "components": {
            "first": {"kind": "structural", "description": "the first input feature",
                      "removal": {"mask": [0.0, 1.0, 1.0, 1.0]}},
            "last": {"kind": "structural", "description": "the last input feature (carries nothing)",
                     "removal": {"mask": [1.0, 1.0, 1.0, 0.0]}},
        },
        "seeds": [0, 1, 2],
        "analysis": {"min_effect": 0.5},
        "tracking": {"wandb": {"mode": "disabled"}},
        "tuning": {"enabled": False},
        **changes,
    }
    (root / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def ablator(root: Path, *args: str, timeout: float = 600, address: str | None = None, **extra_env: str
            ) -> subprocess.CompletedProcess:
    """`ablator ARGS` in `root`: on the module's Ray head at `address`, else with its own local Ray."""
    import os

    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO), "WANDB_MODE": "offline",
           "PATH": f"{BIN}:{os.environ['PATH']}", **extra_env}
    local = on_cluster(address) if "--address" not in args else []
    return subprocess.run([ABLATOR, *args, *local], cwd=root, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def records(root: Path, name: str) -> dict[str, TrialRecord]:
    study = Study(root / "studies" / name)
    return {p.parent.name: study.trial(p.parent.name).read() for p in study.trials_dir.glob("*/record.json")}


@pytest.mark.slow
def test_two_worker_trials_match_one_worker_verdicts_and_survive_a_killed_and_a_hung_rank(tmp_path, ray_address):
    one = project(tmp_path, "dp1", resources={"cpus_per_trial": 1})
    result = ablator(one, "launch", "study.yaml", address=ray_address)
    assert result.returncode == 0, result.stdout + result.stderr
    chaos = {"epoch": 1, "kill": "baseline", "hang": "no-last"}  # seed 0's rank 1, first attempt
    two = project(tmp_path, "dp2", resources={"workers_per_trial": 2, "cpus_per_trial": 0.5},
                  baseline={"mask": [1.0, 1.0, 1.0, 1.0], "data_seed": 0, "epochs": 4, "lr": 0.1, "chaos": chaos},
                  fault_tolerance={"max_failures": 1, "trial_timeout": 25})
    result = ablator(two, "launch", "study.yaml", address=ray_address)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out

    verdicts = [json.loads((root / "studies" / name / "verdicts.json").read_text())["components"]
                for root, name in ((one, "dp1"), (two, "dp2"))]
    assert {c: v["verdict"] for c, v in verdicts[0].items()} == {c: v["verdict"] for c, v in verdicts[1].items()}
    assert verdicts[1]["first"]["verdict"] == "essential"
    singles, groups = records(one, "dp1"), records(two, "dp2")
    assert set(singles) == set(groups) and len(groups) == 9
    for tid, rec in groups.items():
        assert rec.state == "COMPLETED", (tid, rec.errors)
        assert rec.final["ranks"] == 2.0  # both ranks took part in the all-reduce
        assert rec.final["loss"] == pytest.approx(singles[tid].final["loss"], rel=1e-4, abs=1e-6)
        assert singles[tid].final["ranks"] == 1.0 and not singles[tid].ranks
        assert [r["rank"] for r in rec.ranks] == [0, 1] and len({r["pid"] for r in rec.ranks}) == 2
        assert rec.final["stale_ranks"] == 0.0  # no rank of an earlier attempt was left running

    killed, hung = groups["baseline-seed0"], groups["no-last-seed0"]
    assert killed.attempts == 2 and len(killed.errors) == 1
    assert killed.errors[0].error.startswith("rank 1: the worker running this attempt died"), killed.errors
    history = Study(two / "studies" / "dp2").history("baseline-seed0")
    assert [row["step"] for row in history] == [0, 1, 2, 3]
    assert [row["attempt"] for row in history] == [1, 2, 2, 2]  # restarted after epoch 0's checkpoint
    assert history[-1]["started"] == 1.0
    assert hung.attempts == 2 and [e.error for e in hung.errors] == ["timed out after 25 s"]
    assert all(r.attempts == 1 for tid, r in groups.items() if tid not in ("baseline-seed0", "no-last-seed0"))
    for tid in ("baseline-seed0", "no-last-seed0"):  # the restart of a killed or hung rank's attempt: fresh workers
        failed, restart = workers(two, "dp2", tid, 1), workers(two, "dp2", tid, 2)
        assert not {pid for pid, _ in failed.values()} & {pid for pid, _ in restart.values()}, (failed, restart)
        assert {pg for _, pg in failed.values()}.isdisjoint(pg for _, pg in restart.values()), (failed, restart)


def workers(root: Path, name: str, trial_id: str, attempt: int) -> dict[int, tuple[int, str]]:
    """rank -> (its worker's pid, its placement group's id) in an attempt of a trial of TRAINABLE."""
    ranks = (root / "studies" / name / "trials" / trial_id / f"pids{attempt}").glob("*")
    return {int(p.name): (int(p.read_text().split()[0]), p.read_text().split()[1]) for p in ranks}


@pytest.mark.slow
def test_a_healthy_sequence_keeps_its_placement_group_and_a_failed_rank_gets_a_fresh_one(tmp_path, ray_address):
    """One trial at a time: each attempt after a healthy one runs in the same placement group;
    the restart after a SIGKILLed rank runs in a new group on none of the failed attempt's workers.
    Every rank of every attempt, the restart's too, meets the others at the driver's one store."""
    chaos = {"epoch": 1, "kill": "baseline", "hang": "-"}  # seed 0's rank 1, first attempt
    root = project(tmp_path, "reuse", resources={"workers_per_trial": 2, "cpus_per_trial": 0.5, "max_concurrent": 1},
                   components={"last": {"kind": "structural", "description": "the last input feature",
                                        "removal": {"mask": [1.0, 1.0, 1.0, 0.0]}}},
                   baseline={"mask": [1.0, 1.0, 1.0, 1.0], "data_seed": 0, "epochs": 2, "lr": 0.1, "chaos": chaos},
                   fault_tolerance={"max_failures": 1})
    result = ablator(root, "launch", "study.yaml", address=ray_address)
    assert result.returncode == 0, result.stdout + result.stderr
    recs = records(root, "reuse")
    assert len(recs) == 6 and all(r.state == "COMPLETED" for r in recs.values()), recs
    assert [t for t, r in recs.items() if r.attempts != 1] == ["baseline-seed0"]
    assert recs["baseline-seed0"].attempts == 2
    # one at a time: a trial's restart follows its failed attempt at once
    order = sorted((recs[t].started_at, t, a) for t in recs for a in range(1, recs[t].attempts + 1))
    attempts = [workers(root, "reuse", t, a) for _, t, a in order]
    assert all(len(a) == 2 and len({pg for _, pg in a.values()}) == 1 for a in attempts), attempts
    for (_, tid, number), before, after in zip(order, attempts, attempts[1:]):
        pids = {pid for pid, _ in before.values()}, {pid for pid, _ in after.values()}
        if (tid, number) == ("baseline-seed0", 1):  # the attempt whose rank 1 was killed
            assert before[0][1] != after[0][1] and not pids[0] & pids[1], (before, after)
        else:
            assert before[0][1] == after[0][1], (tid, number, before, after)  # the same placement group
    trials = root / "studies" / "reuse" / "trials"
    stores = {p.read_text().split()[2] for t in recs for p in (trials / t).glob("pids*/*")}
    assert len(stores) == 1, stores  # not a store (and a port) per attempt


@pytest.mark.slow
@pytest.mark.parametrize("placement, holds", [("pack", "the biggest node of the Ray cluster holds 2"),
                                              ("spread", "the whole Ray cluster holds 2")])
def test_a_group_that_can_never_fit_exits_2_naming_fields_request_and_cluster(tmp_path, ray_address, placement,
                                                                              holds):
    root = project(tmp_path, "big", resources={"workers_per_trial": 3, "cpus_per_trial": 1, "placement": placement})
    result = ablator(root, "launch", "study.yaml", timeout=120, address=ray_address)  # a head of 2 CPUs
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "resources.workers_per_trial" in out and "3 workers of (CPU 1)" in out and holds in out, out
    assert "Traceback" not in out
    assert not any(r.attempts for r in records(root, "big").values())  # refused before any trial ran


@pytest.mark.slow
def test_spread_puts_the_ranks_on_both_nodes_of_a_two_node_cluster(tmp_path, two_nodes):  # noqa: F811
    """Two nodes of 1 CPU (`ray start`), a group of two 1-CPU workers: only spread fits, one rank per node."""
    address, _ = two_nodes
    root = project(tmp_path, "spread", components={"last": {"kind": "structural", "description": "the last input",
                                                              "removal": {"mask": [1.0, 1.0, 1.0, 0.0]}}},
                   seeds=[0], resources={"workers_per_trial": 2, "cpus_per_trial": 1, "placement": "spread",
                                         "wait_for_nodes": 120})  # the worker node may still be joining
    result = ablator(root, "launch", "study.yaml", "--address", address, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    recs = records(root, "spread")
    assert set(recs) == {"baseline-seed0", "no-last-seed0"}
    for tid, rec in recs.items():
        assert rec.state == "COMPLETED" and rec.final["ranks"] == 2.0, (tid, rec.errors)
        assert [r["rank"] for r in rec.ranks] == [0, 1]
        assert len({r["node_id"] for r in rec.ranks}) == 2, rec.ranks  # one rank on each node


NCCL = '''
import torch
import torch.distributed as dist


def run(ctx):
    x = torch.tensor([float(ctx.rank + 1)], device=ctx.device)
    dist.all_reduce(x)  # 1 + 2 over NCCL, on each rank's own GPU
    ctx.report({"sum": float(x.item()), "nccl": float(dist.get_backend() == "nccl"), "on_cuda": float(x.is_cuda)})
'''


@pytest.mark.gpu
@pytest.mark.slow
def test_a_two_worker_trial_all_reduces_over_nccl_on_gpus(tmp_path):
    import torch

    if torch.cuda.device_count() < 2:  # NCCL refuses two ranks on one GPU ("Duplicate GPU detected")
        pytest.skip("a 2-rank NCCL group needs 2 GPUs: NCCL does not put two ranks on one device")
    root = project(tmp_path, "nccl", trainable="nccltrain:run", seeds=[0], metrics={"primary": {"name": "sum",
                                                                                             "mode": "max"}},
                   resources={"workers_per_trial": 2, "cpus_per_trial": 1, "gpus_per_trial": 1})
    (root / "nccltrain.py").write_text(NCCL)
    result = ablator(root, "launch", "study.yaml", timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    for tid, rec in records(root, "nccl").items():
        assert rec.state == "COMPLETED" and rec.final == {"sum": 3.0, "nccl": 1.0, "on_cuda": 1.0}, (tid, rec.errors)
        assert len({r["gpu_ids"] for r in rec.ranks}) == 2 and all(r["gpu_ids"] for r in rec.ranks), rec.ranks


@pytest.mark.slow
def test_gpu_memory_on_a_cluster_without_gpus_exits_2(tmp_path, ray_address):
    root = project(tmp_path, "gmem", resources={"cpus_per_trial": 1, "gpu_memory_mb": 2000})
    result = ablator(root, "launch", "study.yaml", timeout=120, address=ray_address)
    out = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in out, out
    assert "resources.gpu_memory_mb: a trial asks for 2000 MiB of GPU memory, but the Ray cluster has no GPU" in out


GROWER = '''
import time
from pathlib import Path


def run(ctx):
    cfg = ctx.config
    held = [bytearray(32 * 2**20)]  # every trial holds a little
    met = Path(cfg["rendezvous"])
    grower = met / "grower"
    if cfg["grow"] and ctx.seed == 0:  # the grower: it grows once three trials younger than it run
        grower.write_text(str(time.time()))
        deadline = time.time() + 180
        while len(list(met.glob("*-seed*"))) < 3 and time.time() < deadline:
            time.sleep(0.2)
        while len(held) * 256 < cfg["cap_mb"]:  # fast, in big steps, until Ray's memory monitor kills it
            held.append(bytearray(256 * 2**20))  # zero-filled: the pages are really used
        time.sleep(120)
    elif grower.exists() and time.time() - float(grower.read_text() or "inf") >= 1.0:
        (met / ctx.trial_id).touch()  # started well after the grower, so Ray granted it a younger lease
    for epoch in range(cfg["epochs"]):
        time.sleep(1.0)
        ctx.report({"score": 1.0 + 0.1 * ctx.seed}, checkpoint={"epoch": epoch})
'''


@pytest.mark.slow
def test_a_growing_trial_is_charged_its_oom_kill_and_healthy_trials_beside_it_complete(tmp_path, memory_alone):
    """Ray's real memory monitor, its threshold MARGIN above what the machine uses when the test starts.

    Ray kills the workers whose leases it granted last first, several at once, until enough memory
    would be freed. So that the order is certain (not a race between leases granted at the same
    moment), four trials run at a time in plan order: the grower (baseline, seed 0) and the other
    baseline seeds first, which simply complete; the no-growth trials start only as those end,
    well after the grower. Once three of them run, the grower grows to MARGIN + 3 GiB in 256 MiB
    steps; they hold 32 MiB each. Ray kills them first, beside the grower: each must be re-run
    without counting (max_failures: 0) and name the grower's memory; the grower alone is charged.
    Memory that other processes take during the test eats into MARGIN: on a busy machine keep it
    free of other large jobs.
    """
    import re

    import psutil
    from ray._private.utils import get_used_memory  # the node's use as Ray's memory monitor counts it

    margin = 4.0 * 2**30
    mem = psutil.virtual_memory()
    threshold = (max(mem.total - mem.available, get_used_memory()) + margin) / mem.total
    met = tmp_path / "running"
    met.mkdir()
    root = project(tmp_path, "oom", components={"growth": {"kind": "training", "description": "grows",
                                                           "removal": {"grow": False}}},
                   trainable="grower:run", seeds=[0, 1, 2, 3], metrics={"primary": {"name": "score", "mode": "max"}},
                   baseline={"grow": True, "epochs": 8, "cap_mb": int((margin + 3 * 2**30) / 2**20),
                             "rendezvous": str(met)},
                   resources={"cpus_per_trial": 0.5, "max_concurrent": 4}, fault_tolerance={"max_failures": 0})
    (root / "grower.py").write_text(GROWER)
    result = ablator(root, "launch", "study.yaml", timeout=400, RAY_memory_usage_threshold=f"{threshold:.3f}",
                     RAY_memory_monitor_refresh_ms="100")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    recs = records(root, "oom")
    grower = recs["baseline-seed0"]
    assert grower.state == "FAILED" and grower.attempts == 1 and len(grower.errors) == 1, grower.errors
    error = grower.errors[0]
    used = re.search(r"this trial used ([\d.]+) GB, the most of the study's workers on the node", error.error)
    assert used and float(used[1]) > 0.5 and error.counted, error  # it grew; its own memory, counted
    spared = []
    for tid in sorted(set(recs) - {"baseline-seed0"}):
        healthy = recs[tid]
        assert healthy.state == "COMPLETED" and healthy.final["score"] >= 1.0, (tid, healthy.errors)
        for e in healthy.errors:  # killed beside the grower: re-run, not counted, and says whose memory
            assert not e.counted and "while trial baseline-seed0 used" in e.error, e
            spared.append(f"{tid}: {e.error}")
    print(f"grower: {error.error}", f"healthy attempts killed for its memory: {len(spared)}", *spared, sep="\n")
    assert len(recs) == 8 and len(list(met.glob("no-growth-seed*"))) >= 3  # the grower grew with three younger trials
    # Ray kills the youngest leases first, so it cannot have killed the grower without a healthy trial
    assert spared, "Ray killed only the grower: no healthy trial was killed beside it, attribution untested"


def _rank_of_two(rank: int, master: tuple) -> tuple[list[int], str, int]:
    """Join a 2-rank group at `master`, leave it; (the ranks gathered, MASTER_PORT, this worker's pid)."""
    import os

    from orchestrator.execution import distributed

    placement, _ = distributed.init(rank, 2, master, "cpu", 60)
    distributed.destroy()
    return [p["rank"] for p in placement], os.environ["MASTER_PORT"], os.getpid()


@pytest.mark.slow
def test_the_store_in_an_actor_serves_one_group_after_another(ray_cluster):
    """Through Ray Client the driver is not on a cluster node, so the rendezvous store lives in an actor
    (`rendezvous.Host`, as the driver hosts it otherwise): two attempts of a 2-rank group meet there,
    each under its own key prefix."""
    import ray

    from orchestrator.execution import rendezvous

    host = ray.remote(num_cpus=0)(rendezvous.Host).remote()
    address = ray.get(host.address.remote())
    rank = ray.remote(num_cpus=0)(_rank_of_two)
    for attempt in (1, 2):
        master = (*address, rendezvous.prefix(f"t/attempt{attempt}"))
        got = ray.get([rank.remote(r, master) for r in (0, 1)], timeout=300)
        assert [g[:2] for g in got] == [([0, 1], str(address[1]))] * 2, got
        assert got[0][2] != got[1][2]  # two processes
    ray.kill(host)
