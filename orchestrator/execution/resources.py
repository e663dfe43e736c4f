"""What one trial asks of Ray, how many fit, and a fast refusal when no node can ever run one."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..config import Resources
from ..errors import ResourceError

GIB = 1024**3


def request(res: Resources) -> dict:
    """The Ray task options of one trial."""
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


def capacity(res: Resources, total: dict) -> int:
    """How many trials the cluster's total resources hold at once (at least 1)."""
    return max(1, min(int(total.get(name, 0) // amount) for _, name, amount in _asks(res)))


def shortfall(res: Resources, nodes: list[dict]) -> str | None:
    """Why no alive node can run one trial (None when one can)."""
    alive = [n["Resources"] for n in nodes if n.get("Alive")]
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
