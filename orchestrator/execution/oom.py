"""Whose memory it was: read Ray's memory-monitor kill report to charge an OOM kill to the right trial.

Ray's memory monitor may kill several workers at once, among them trials that used little
(see the report's "Selected to kill" entries and its "Top 10 memory users"). A trial whose
processes used less than half of what the node's biggest user held was killed for another's
memory, or than a trial charged a kill on the same node moments before (whose memory the node
may not have freed yet): its attempt is re-run without counting toward max_failures (at most INNOCENT_RERUNS
times, so that a node short of memory for every trial cannot loop for ever).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

INNOCENT_RERUNS = 3
_SELECTED = re.compile(r"pid=(\d+), (?:actual )?memory used=([\d.]+)\s*GB")
_TOP = re.compile(r"^(\d+)\t([\d.]+)\t(.*)$", re.MULTILINE)


def memory_use(report: str) -> dict[int, tuple[float, str]]:
    """pid -> (GB used, command or '') of every process the kill report names."""
    use = {int(pid): (float(gb), cmd.strip()) for pid, gb, cmd in _TOP.findall(report)}
    for pid, gb in _SELECTED.findall(report):
        use.setdefault(int(pid), (float(gb), ""))
    return use


def charge(report: str, pids: Iterable[int], host: str, owner: dict[int, str],
           recent: dict[int, float] | None = None) -> tuple[str, bool]:
    """(the attempt's error, whether it counts toward max_failures) for a trial killed for memory.

    `pids`: the trial's processes (every rank); `owner`: pid -> trial id of the running trials;
    `recent`: pid -> GB of processes charged a kill on this node moments before.
    """
    use = memory_use(report)
    pids = set(pids)
    own = max((use[p][0] for p in pids if p in use), default=None)
    others = {p: u for p, u in use.items() if p not in pids}
    for pid, gb in (recent or {}).items():
        if pid not in pids and gb > others.get(pid, (0.0, ""))[0]:
            others[pid] = (gb, "")
    top = max(others, key=lambda p: others[p][0], default=None)
    if own is None or top is None:
        return f"killed: out of memory on {host}", True
    if own >= 0.5 * others[top][0]:
        return f"killed: out of memory on {host} (this trial used {own:.2f} GB, the most on the node)", True
    whose = f"trial {owner[top]}" if top in owner else f"process {top} ({others[top][1] or 'not a trial'})"
    return (f"killed: out of memory on {host} while {whose} used {others[top][0]:.2f} GB (this trial used "
            f"{own:.2f} GB): not its own memory, re-run without counting toward max_failures"), False
