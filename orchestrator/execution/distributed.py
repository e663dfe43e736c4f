"""torch.distributed for the workers of one trial (a group of `workers_per_trial` ranks).

Runs inside the workers: every rank joins the trial's process group through the driver's
rendezvous store (`rendezvous`), under the attempt's own key prefix, over one connection to the
store that the worker keeps for every attempt it serves; the process group is set up before the
trainable (NCCL on GPU, gloo on CPU, the usual MASTER_ADDR, MASTER_PORT (the store's address),
RANK, LOCAL_RANK, WORLD_SIZE variables) and destroyed after, and a failed rank's error is sent to
the driver, which records the attempt of the whole group.
"""

from __future__ import annotations

import os
import platform
import sys
import threading
import time
from datetime import timedelta

#: how long the ranks wait for each other at the rendezvous when no trial_timeout is set
RENDEZVOUS_S = 600.0
#: with a trial_timeout, how much longer a rank waits for the others (at the rendezvous, in a
#: collective): a rank stuck waiting for a hung one is ended by rank 0's watchdog, as timed out
PAST_TIMEOUT_S = 5.0

_clients: dict[tuple[str, int], object] = {}  # (host, port) -> this worker's connection to a store
_teardown: threading.Thread | None = None  # the last process group's teardown


def init(rank: int, world_size: int, master: tuple[str, int, str], device: str | None,
         timeout: float | None) -> tuple[list[dict], int]:
    """Join the trial's process group; return where every rank runs and this rank's local rank.

    `master`: the rendezvous store's host and port, and the attempt's key prefix there.

    The gathering of where every rank runs is the group's first collective: no rank passes it
    before every rank got there. Ray gives each worker its own GPU(s) (CUDA_VISIBLE_DEVICES),
    so a rank's device is cuda:0.
    """
    import ray
    import torch
    import torch.distributed as dist

    host, port, prefix = master
    if _teardown is not None:
        _teardown.join()  # the last group's teardown (see `destroy`)
    os.environ.update(MASTER_ADDR=host, MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size))
    wait = _patience(timeout)
    store = _clients.get((host, port))
    if store is None:
        store = _clients[host, port] = dist.TCPStore(host, port, is_master=False, timeout=wait)
    store.set_timeout(wait)
    if device == "cuda":
        torch.cuda.set_device(0)
    dist.init_process_group("nccl" if device == "cuda" else "gloo", store=dist.PrefixStore(prefix, store),
                            rank=rank, world_size=world_size, timeout=wait)
    here = {"rank": rank, "host": platform.node(), "node_id": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(), "gpu_ids": os.environ.get("CUDA_VISIBLE_DEVICES") if device == "cuda" else None}
    placement: list = [None] * world_size
    dist.all_gather_object(placement, here)
    local = [p["rank"] for p in placement if p["node_id"] == here["node_id"]]
    os.environ.update(LOCAL_RANK=str(local.index(rank)), LOCAL_WORLD_SIZE=str(len(local)))
    return placement, local.index(rank)


def _patience(timeout: float | None) -> timedelta:
    """How long a rank waits for the others (`timeout`: the trial_timeout)."""
    return timedelta(seconds=timeout + PAST_TIMEOUT_S if timeout else RENDEZVOUS_S)


def destroy() -> None:
    """Leave the process group (after the trainable, so the worker can serve another trial).

    The group is gone at once; what takes time is its backend's teardown (gloo joins its network
    loop, which wakes every 10 ms), run when the last reference goes: that reference is dropped on
    a thread of its own (torch lets go of the GIL there), which this worker's next attempt waits for
    before it joins its next group.
    """
    global _teardown
    dist = sys.modules.get("torch.distributed")  # not imported: no group to leave (nor torch to load for it)
    if dist is not None and dist.is_available() and dist.is_initialized():
        last = [dist.group.WORLD]
        dist.destroy_process_group()
        _teardown = threading.Thread(target=last.clear, daemon=True, name="ablator-teardown")
        _teardown.start()


def report_failure(events, trial_id: str, attempt: int, rank: int, error: str, traceback: str | None,
                   retryable: bool = True) -> None:
    """Tell the driver why this rank failed, before the worker ends itself (the driver records it)."""
    import ray

    item = {"failure": trial_id, "attempt": attempt, "rank": rank, "error": error, "traceback": traceback,
            "retryable": retryable, "time": time.time()}
    try:
        ray.get(events.put.remote(item), timeout=10)
    except Exception:  # the events actor is gone: the driver records that the rank died
        pass
