"""What one trial asks of Ray, how many fit, and a fast refusal when no node can ever run one.

A trial of `workers_per_trial` N > 1 is a group: N bundles of the per-worker request, all on
one node (`placement: pack`) or spread over nodes (`placement: spread`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..config import Resources
from ..errors import ResourceError

GIB = 1024**3


def request(res: Resources) -> dict:
    """The Ray task options of one trial (of one worker of a group)."""
    options: dict = {"num_cpus": res.cpus_per_trial, "num_gpus": res.gpus_per_trial}
    if res.memory_per_trial:
        options["memory"] = int(res.memory_per_trial * GIB)
    if res.custom_per_trial:
        options["resources"] = dict(res.custom_per_trial)
    return options


def _asks(res: Resources) -> list[tuple[str, str, float]]:
    """(config field, Ray resource name, amount) of every resource a trial asks for."""
    asks = [("resources.cpus_per_trial", "CPU", res.cpus_per_trial)]
    if res.gpus_per_trial:
        asks.append(("resources.gpus_per_trial", "GPU", res.gpus_per_trial))
    if res.memory_per_trial:
        asks.append(("resources.memory_per_trial", "memory", res.memory_per_trial * GIB))
    asks += [(f"resources.custom_per_trial.{k}", k, v) for k, v in res.custom_per_trial.items()]
    return asks


def bundle(res: Resources) -> dict:
    """One worker's placement-group bundle (Ray resource name -> amount)."""
    return {name: amount for _, name, amount in _asks(res)}


def capacity(res: Resources, total: dict, nodes: Callable[[], list[dict]] | None = None) -> int:
    """How many trials the cluster's resources hold at once (at least 1).

    A group counts whole workers per node (`nodes`: ray.nodes); a single worker the totals.
    """
    if res.workers_per_trial == 1 or nodes is None:
        return max(1, min(int(total.get(name, 0) // amount) for _, name, amount in _asks(res)))
    slots = [_slots(res, n) for n in _alive(nodes())]
    if res.placement == "pack":
        return max(1, sum(s // res.workers_per_trial for s in slots))
    return max(1, sum(slots) // res.workers_per_trial)


def _alive(nodes: list[dict]) -> list[dict]:
    return [n["Resources"] for n in nodes if n.get("Alive")]


def _slots(res: Resources, node: dict) -> int:
    """How many workers of a trial one node holds."""
    return min(int(node.get(name, 0) // amount) for _, name, amount in _asks(res))


def shortfall(res: Resources, nodes: list[dict]) -> str | None:
    """Why the cluster can never run one trial (None when it can)."""
    alive = _alive(nodes)
    why = _worker_shortfall(res, alive)
    if why is None and res.workers_per_trial > 1:
        return _group_shortfall(res, alive)
    return why


def _group_shortfall(res: Resources, alive: list[dict]) -> str | None:
    """Why N workers never fit: on one node (pack) or on the whole cluster (spread)."""
    n = res.workers_per_trial
    slots = [_slots(res, node) for node in alive]
    if res.placement == "pack" and max(slots, default=0) < n:
        return (f"resources.workers_per_trial x per-worker request: a trial asks for {n} workers of "
                f"({_describe(res)}) on one node (resources.placement: pack), but the biggest node of the Ray "
                f"cluster holds {max(slots, default=0)} ({_describe_nodes(alive)}); set resources.placement: "
                "spread to use several nodes")
    if res.placement == "spread" and sum(slots) < n:
        return (f"resources.workers_per_trial x per-worker request: a trial asks for {n} workers of "
                f"({_describe(res)}), but the whole Ray cluster holds {sum(slots)} ({_describe_nodes(alive)})")
    return None


def _describe_nodes(alive: list[dict]) -> str:
    cpus = sum(node.get("CPU", 0) for node in alive)
    gpus = sum(node.get("GPU", 0) for node in alive)
    return f"{len(alive)} node(s), {cpus:g} CPU" + (f", {gpus:g} GPU" if gpus else "") + " in all"


def _worker_shortfall(res: Resources, alive: list[dict]) -> str | None:
    """Why no alive node can run one worker of a trial (None when one can)."""
    for node in alive:
        if all(node.get(name, 0) >= amount for _, name, amount in _asks(res)):
            return None
    for field, name, amount in _asks(res):
        biggest = max((node.get(name, 0) for node in alive), default=0)
        if biggest < amount:
            unit = " GiB" if name == "memory" else ""
            scale = GIB if name == "memory" else 1
            return (f"{field}: a trial asks for {amount / scale:g}{unit} {name}, but the biggest node of the "
                    f"Ray cluster has {biggest / scale:g}{unit} {name} ({len(alive)} node(s))")
    return (f"resources: no single node has everything one trial asks for ({_describe(res)}), "
            f"although each resource alone exists on some node ({len(alive)} node(s))")


def _describe(res: Resources) -> str:
    return ", ".join(f"{name} {amount:g}" for _, name, amount in _asks(res))


def check_feasible(res: Resources, nodes: Callable[[], list[dict]], say: Callable[[str], None]) -> None:
    """Refuse at once (exit 2) a trial no node can run; wait `wait_for_nodes` s for an autoscaler first."""
    why = shortfall(res, nodes())
    if why is None:
        return
    if res.wait_for_nodes:
        say(f"No node fits a trial yet ({why}); waiting up to {res.wait_for_nodes:g} s for the autoscaler "
            "to add one (resources.wait_for_nodes)")
        deadline = time.monotonic() + res.wait_for_nodes
        while time.monotonic() < deadline:
            time.sleep(min(5.0, max(0.1, deadline - time.monotonic())))
            why = shortfall(res, nodes())
            if why is None:
                return
    raise ResourceError(f"Infeasible trial resources: {why}. Lower the request in the study config"
                        + (", or raise resources.wait_for_nodes on an autoscaling cluster" if not res.wait_for_nodes
                           else f"; no node came within {res.wait_for_nodes:g} s"))
