"""The rendezvous store of multi-worker trials: one torch TCPStore server for the whole driver.

The driver (on a cluster node) hosts it from its first multi-worker study on, and every attempt's
ranks join their process group through it, each attempt under a key prefix of its own, so no two
attempts' keys meet. A worker keeps its connection to the store for every attempt it serves
(`distributed.init`): no rank waits for a store to open, and none connects to a freshly opened
one (torch's client then stalls 5 s now and then). The store lives as long as the driver: a
driver that dies takes it along (its ranks fail; Ray ends a dead driver's workers anyway) and
`ablator resume` opens a new one. Through Ray Client the driver is not on a cluster node: the
store then lives in a small actor of the driver's job instead.
"""

from __future__ import annotations

import itertools
import threading

import ray

#: set by the first study of several workers per trial
_opening: threading.Thread | None = None
_store = None  # this process's TCPStore server
_actor = None  # the store's actor, through Ray Client
_address: tuple[str, int] | None = None
_prefixes = itertools.count()


class Host:
    """A TCPStore server in this process, on a port the OS picks (it listens on every interface)."""

    def __init__(self):
        import torch.distributed as dist

        self.store = dist.TCPStore("0.0.0.0", 0, is_master=True, wait_for_workers=False)

    def address(self) -> tuple[str, int]:
        return ray.util.get_node_ip_address(), self.store.port


def prepare() -> None:
    """Start opening the store in the background (importing torch costs the driver ~1.5 CPU-s), so
    the first attempt does not wait for it; the store's address is taken once Ray is up."""
    global _opening
    if _opening is None:
        _opening = threading.Thread(target=_open, daemon=True, name="ablator-rendezvous")
        _opening.start()


def _open() -> None:
    global _store
    try:
        _store = Host()
    except Exception as exc:  # raised where the address is asked for
        _store = exc


def address() -> tuple[str, int]:
    """The store's host and port (opened now if `prepare` was not called)."""
    global _address, _actor
    if _address is None:
        if ray.util.client.ray.is_connected():
            _actor = ray.remote(num_cpus=0)(Host).remote()
            _address = ray.get(_actor.address.remote())
        else:
            prepare()
            _opening.join()
            if isinstance(_store, Exception):
                raise _store
            _address = _store.address()
    return _address


def prefix(name: str) -> str:
    """The key prefix of one attempt's process group (`name`: its task name), never given twice."""
    return f"{name}#{next(_prefixes)}/"
