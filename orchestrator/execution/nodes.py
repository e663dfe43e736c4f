"""The Ray node a driver runs on, lost under it: told by name, trials kept, exit 75 (NodeLost).

When a node's raylet ends (killed, out of memory, the machine lost), Ray's calls in the driver
fail in ways that name something else (``ActorDiedError`` for the driver's own actor, "The
current node timed out during startup" while Ray starts). The cluster's control store says
which node died; this module asks it and turns the failure into one readable NodeLost.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ray

from ..errors import NodeLost

#: how long the driver waits for the cluster to mark its node dead (Ray's heartbeat timeout is shorter)
MARKED_DEAD_WAIT_S = 45.0


def lost_node(wait_s: float = MARKED_DEAD_WAIT_S) -> dict | None:
    """The driver's own node when the cluster has marked it dead (waiting up to `wait_s` for that), else None."""
    try:
        me = ray.get_runtime_context().get_node_id()
        deadline = time.monotonic() + wait_s
        while True:
            node = next((n for n in ray.nodes() if n.get("NodeID") == me), None)
            if node is not None and not node.get("Alive", True):
                return node
            if time.monotonic() > deadline:
                return None
            time.sleep(1.0)
    except Exception:  # a cluster that cannot say: the original error stands
        return None


def describe(node: dict) -> str:
    """A node as the user knows it: its address (and name when it differs), and its short id."""
    addr, name = node.get("NodeManagerAddress", "?"), node.get("NodeName")
    return f"{addr}{f' ({name})' if name and name != addr else ''}, node id {node.get('NodeID', '?')[:12]}"


def died_under(message: str) -> str:
    """The error of an attempt whose node died under it (Ray's NodeDiedError message), naming the node."""
    found = re.search(r"Node IP: ([^,\s]+), node ID: ([0-9a-f]+)", message)
    where = f"{found[1]}, node id {found[2][:12]}" if found else "its node"
    return (f"node lost: {where} died under this attempt (its raylet ended); restarted from the last checkpoint, "
            "not counted toward max_failures")


def node_lost(where: str, study_path: Path | str, stopped: int = 0, why: str = "") -> NodeLost:
    kept = f"{stopped} running trial(s) stay PENDING; " if stopped else ""
    return NodeLost(f"Lost the Ray node this driver runs on: {where}{why}; its raylet ended (killed, out of "
                    f"memory, or the machine's node died).\n  {kept}finished trials are kept; continue with "
                    f"`ablator resume {study_path}`")


@contextmanager
def stop_on_node_loss(executor) -> Iterator[None]:
    """Turn a Ray failure that comes from the driver's node dying into NodeLost; the executor's
    running trials are left PENDING (not failed), without asking Ray."""
    try:
        yield
    except ray.exceptions.RayError:
        node = lost_node()
        if node is None:
            raise
        stopped = executor.pause_all()
        raise node_lost(describe(node), executor.study.path, len(stopped)) from None
