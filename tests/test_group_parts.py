"""The parts of multi-worker trials that need no cluster: group feasibility, OOM charging, status."""

from __future__ import annotations

import pytest

from orchestrator.cli import _where
from orchestrator.config import Resources, load_config
from orchestrator.errors import ResourceError
from orchestrator.execution import oom
from orchestrator.execution.gpus import with_gpu_fraction
from orchestrator.execution.resources import capacity, shortfall
from orchestrator.ledger import TrialRecord

NODES = [{"Alive": True, "Resources": {"CPU": 4.0}}, {"Alive": True, "Resources": {"CPU": 2.0}}]

# the shape of Ray 2.60's kill report (an excerpt of one seen in tests/test_groups.py's OOM test)
REPORT = """4 worker(s) were killed due to the node running low on memory.
Selected to kill: (Task: task name=a, pid=18235, actual memory used=0.22GB, worker ID=5d)
Selected to kill: (Task: task name=b, pid=17967, actual memory used=1.93GB, worker ID=6d)
]
Top 10 memory users: PID\tMEM(GB)\tCOMMAND
17967\t1.93\tray::oom/ablation/baseline/seed0/attempt1
18235\t0.22\tray::oom/ablation/no-growth/seed0/attempt2
18206\t0.14\tray::Events.put
"""


def test_groups_fit_whole_workers_per_node_pack_on_one_node_spread_over_all():
    pack = Resources(workers_per_trial=3, cpus_per_trial=1)
    spread = Resources(workers_per_trial=3, cpus_per_trial=1, placement="spread")
    assert capacity(pack, {"CPU": 6.0}, lambda: NODES) == 1  # 4 // 3 + 2 // 3
    assert capacity(spread, {"CPU": 6.0}, lambda: NODES) == 2
    assert shortfall(pack, NODES) is None and shortfall(spread, NODES) is None
    big = Resources(workers_per_trial=5, cpus_per_trial=1)
    assert "biggest node of the Ray cluster holds 4" in shortfall(big, NODES)
    assert shortfall(big.model_copy(update={"placement": "spread"}), NODES) is None
    assert "whole Ray cluster holds 6" in shortfall(Resources(workers_per_trial=7, cpus_per_trial=1,
                                                              placement="spread"), NODES)


def test_an_oom_kill_is_charged_to_the_biggest_of_the_studys_workers():
    error, counted = oom.charge(REPORT, {17967}, "vm", {18235: "no-growth-seed0"}, "oom")
    assert counted and "this trial used 1.93 GB, the most of the study's workers on the node" in error
    error, counted = oom.charge(REPORT, {18235}, "vm", {17967: "baseline-seed0"}, "oom")
    assert not counted and "while trial baseline-seed0 used 1.93 GB (this trial used 0.22 GB)" in error
    # a worker the driver has not heard of yet is known by its task name
    error, counted = oom.charge(REPORT, {18235}, "vm", {}, "oom")
    assert not counted and "while task oom/ablation/baseline/seed0/attempt1 used 1.93 GB" in error
    # a bigger process outside the study (another user's job) is never blamed: the study's biggest is charged
    foreign = REPORT.replace("18206\t0.14\tray::Events.put", "999\t9.50\tpython someone_elses_job.py")
    assert oom.charge(foreign, {17967}, "vm", {18235: "no-growth-seed0"}, "oom")[1]
    assert not oom.charge(foreign, {18235}, "vm", {17967: "baseline-seed0"}, "oom")[1]
    # the grower already gone from this report, but charged a kill moments before
    small = REPORT.replace("17967\t1.93\tray::oom/ablation/baseline/seed0/attempt1\n", "").replace(
        "pid=17967, actual memory used=1.93GB", "pid=1, actual memory used=0.01GB")
    assert oom.charge(small, {18235}, "vm", {}, "oom")[1]
    error, counted = oom.charge(small, {18235}, "vm", {17967: "baseline-seed0"}, "oom", {17967: 1.93})
    assert not counted and "while trial baseline-seed0 used 1.93 GB" in error
    # the same trial's earlier attempt, still in the report, is not its rival
    assert oom.charge(REPORT, {18235}, "vm", {}, "oom", task="oom/ablation/baseline/seed0/attempt")[1]
    # an attempt killed before it recorded its start (its pid unknown to the driver) is named by its task
    # (the lines as Ray 2.60 wrote them, in a run where other processes had filled the node)
    unborn = ("1 worker(s) were killed due to the node running low on memory.\n"
              "Selected to kill: (Task: job ID=01000000, lease ID=0200, task name=oom/ablation/no-hog/seed0/attempt2, "
              "required resources={CPU: 1}, pid=4730, actual memory used=0.04GB, worker ID=e8f0)\n]\n"
              "Top 10 memory users: PID\tMEM(GB)\tCOMMAND\n"
              "3837\t0.31\tray::hf-tokens/ablation/baseline/seed1/attempt1\n4330\t0.25\tray::IDLE\n")
    assert oom.memory_use(unborn)[4730] == (0.04, "ray::oom/ablation/no-hog/seed0/attempt2")
    error, counted = oom.charge(unborn, set(), "vm", {}, "oom", task="oom/ablation/no-hog/seed0/attempt")
    assert counted and error.startswith("killed: out of memory on vm (this trial used 0.04 GB"), error
    assert oom.charge("killed", {5}, "vm", {}) == ("killed: out of memory on vm", True)


def test_status_names_every_ranks_node_and_gpus():
    one = TrialRecord(trial_id="t", host="a", gpu_ids="0")
    assert _where(one) == {"node": "a", "gpu": "0"}
    group = one.model_copy(update={"ranks": [{"rank": 0, "host": "a", "gpu_ids": "0"},
                                             {"rank": 1, "host": "b", "gpu_ids": "3"}]})
    assert _where(group) == {"node": "0:a 1:b", "gpu": "0:0 1:3"}


def test_gpu_memory_becomes_a_fraction_of_the_smallest_gpu_and_is_refused_where_it_cannot_be():
    res = Resources(gpu_memory_mb=10000)
    mixed = {"a": [81559.0, 81559.0], "b": [40960.0]}  # mixed sizes: the smallest decides
    assert with_gpu_fraction(res, mixed, 2).gpus_per_trial == 0.2442  # 10000 / 40960 = 0.24414.. rounded up
    assert with_gpu_fraction(res, {"a": [81559.0]}, 1).gpus_per_trial == 0.1227
    assert with_gpu_fraction(Resources(gpu_memory_mb=40960), mixed, 2).gpus_per_trial == 1.0
    with pytest.raises(ResourceError, match=r"gpu_memory_mb: a trial asks for 10000 MiB .* has no GPU \(3 node"):
        with_gpu_fraction(res, {}, 3)
    with pytest.raises(ResourceError, match="smallest GPU of the Ray cluster has 40960 MiB"):
        with_gpu_fraction(Resources(gpu_memory_mb=50000), mixed, 2)


@pytest.mark.parametrize("resources, why", [
    ("{gpu_memory_mb: 1000, gpus_per_trial: 0.5}", "either gpu_memory_mb or gpus_per_trial"),
    ("{gpu_memory_mb: 1000, workers_per_trial: 2}", "gpu_memory_mb is for single-worker trials"),
    ("{gpus_per_trial: 0.5, workers_per_trial: 2}", "each rank needs a GPU of its own")])
def test_gpu_requests_that_cannot_work_are_config_errors(tmp_path, resources, why):
    path = tmp_path / "study.yaml"
    path.write_text("name: g\ntrainable: t:run\nmetrics: {primary: {name: m, mode: max}}\nbaseline: {a: 1}\n"
                    "components: {c: {kind: training, description: c, removal: {a: 0}}}\nseeds: [0, 1]\n"
                    f"resources: {resources}\n")
    with pytest.raises(Exception) as info:
        load_config(path)
    assert "resources" in str(info.value) and why in str(info.value) and f"{path}:" in str(info.value), info.value
