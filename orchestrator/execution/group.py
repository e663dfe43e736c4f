"""The driver side of a trial of several workers: its ranks run in a placement group.

Each attempt runs in a placement group of `workers_per_trial` bundles reserved together
(STRICT_PACK for `placement: pack`, SPREAD for `placement: spread`), so no rank waits for
another that cannot be placed. Every rank joins the attempt's process group through the
driver's rendezvous store (`rendezvous`), under a key prefix of the attempt's own; rank 0 runs
``run_attempt`` (it records the trial), ranks 1.. run ``run_rank``.

An attempt whose every rank ended well hands its placement group back to the executor's
`Groups`, and the next attempt runs in it: creating and removing a group per attempt is most
of a small group's start-up. A failed attempt (a rank that raised, died, hung or was
cancelled) has its group removed, which stops every rank still running, so none is left
waiting in a collective and none of its workers serves the restart, which gets a fresh group.
"""

from __future__ import annotations

import ray
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from ..config import Resources
from . import rendezvous
from .resources import bundle, request
from .worker import Attempt, run_attempt, run_rank

STRATEGY = {"pack": "STRICT_PACK", "spread": "SPREAD"}
#: how long the driver waits for the other ranks to end after one failed, so it can tell
#: the rank that caused the failure (killed, raised first) from ranks that failed with it
SETTLE_S = 3.0

_rank0 = ray.remote(run_attempt)
_rank = ray.remote(run_rank)


class Group:
    """The ranks of one attempt and the placement group they run in."""

    def __init__(self, res: Resources, name: str, attempt: Attempt, pg: PlacementGroup | None = None):
        """`pg`: a kept group (None: a new one)."""
        n = res.workers_per_trial
        self.pg = pg or placement_group([bundle(res)] * n, strategy=STRATEGY[res.placement], name=name)
        on = [PlacementGroupSchedulingStrategy(self.pg, placement_group_bundle_index=k) for k in range(n)]
        master = (*rendezvous.address(), rendezvous.prefix(name))
        opts = {**request(res), "max_retries": 0, "retry_exceptions": False}
        self.head = _rank0.options(**opts, scheduling_strategy=on[0], name=f"{name}/rank0").remote(attempt, master)
        self.others = [
            _rank.options(**opts, scheduling_strategy=on[k], name=f"{name}/rank{k}").remote(attempt, k, master)
            for k in range(1, n)]
        self.attempt = attempt

    @property
    def refs(self) -> list[ray.ObjectRef]:
        return [self.head, *self.others]

    def outcomes(self, settle: float = SETTLE_S) -> dict[int, Exception | None]:
        """Each rank that has ended: None when it ended well, else its Ray error (waits up to `settle` s)."""
        refs = self.refs
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=settle)
        out: dict[int, Exception | None] = {}
        for rank, ref in enumerate(refs):
            if ref in ready:
                try:
                    ray.get(ref)
                    out[rank] = None
                except ray.exceptions.RayError as exc:
                    out[rank] = exc
        return out

    def ended_well(self, outcomes: dict[int, Exception | None]) -> bool:
        """Every rank ended without an error (`outcomes`: from `outcomes()`)."""
        return len(outcomes) == len(self.refs) and all(exc is None for exc in outcomes.values())

    def stop(self) -> None:
        """Stop every rank still running and release the group's resources.

        Ranks that have ended are not cancelled: force-cancelling a finished task can crash
        the driver's Ray core ("Tried to complete task that was not pending", Ray 2.60).
        """
        _, running = ray.wait(self.refs, num_returns=len(self.refs), timeout=0)
        for ref in running:
            ray.cancel(ref, force=True)
        remove_placement_group(self.pg)


class Groups:
    """The placement groups of an executor's healthy attempts that have ended, kept for the next ones."""

    def __init__(self):
        self.idle: list[PlacementGroup] = []

    def __len__(self) -> int:
        return len(self.idle)

    def take(self) -> PlacementGroup | None:
        """An idle group for a new attempt (None: the attempt creates its own)."""
        return self.idle.pop() if self.idle else None

    def keep(self, pg: PlacementGroup) -> None:
        self.idle.append(pg)

    def release(self) -> None:
        """Remove every idle group (its resources go back to the cluster)."""
        while self.idle:
            remove_placement_group(self.idle.pop())


def cause(outcomes: dict[int, Exception | None], reports: dict[int, dict]) -> tuple[int, Exception | None] | None:
    """The rank whose failure ended the attempt: one killed by the memory monitor, else one that
    died without a word (SIGKILL, lost node), else the first to report an exception; None if none failed.

    `reports`: rank -> what a rank that raised sent before ending itself (distributed.report_failure).
    """
    died = {r: exc for r, exc in outcomes.items() if exc is not None and r not in reports}
    for rank, exc in sorted(died.items()):
        if isinstance(exc, ray.exceptions.OutOfMemoryError):
            return rank, exc
    if died:
        return min(died), died[min(died)]
    if reports:
        rank = min(reports, key=lambda r: reports[r]["time"])
        return rank, outcomes.get(rank)
    return None
