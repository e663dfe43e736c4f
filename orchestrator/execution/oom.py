"""Whose memory it was: read Ray's memory-monitor kill report to charge an OOM kill to the right trial.

Ray's memory monitor (by default since Ray 2.56) kills the workers whose tasks started last,
several at once, until the node is below its threshold, so the trials killed are often not
the one whose memory filled the node. Its report names each killed worker's memory ("Selected
to kill ... memory used=") and the node's "Top 10 memory users" (every process, not only
Ray's). The rule: among the study's workers in the report (and a trial charged a kill on the
same node moments before, whose memory the node may not have freed yet), the trial that used
the most is charged; a trial that used less than another of the study's trials was killed for
that trial's memory, and its attempt is re-run without counting toward max_failures (at most
INNOCENT_RERUNS times, so that a node short of memory for every trial cannot loop for ever).
Processes outside the study (another user's job, Ray's own daemons) are never the culprit
named, since no trial of the study could be blamed for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

INNOCENT_RERUNS = 3
_SELECTED = re.compile(r"(?:task name=([^,\n]+),[^\n]*?)?pid=(\d+), (?:actual )?memory used=([\d.]+)\s*GB")
_TOP = re.compile(r"^(\d+)\t([\d.]+)\t(.*)$", re.MULTILINE)


def memory_use(report: str) -> dict[int, tuple[float, str]]:
    """pid -> (GB used, command or '') of every process the kill report names (a killed task's
    command is ``ray::<its task name>`` when only its "Selected to kill" line names it)."""
    use = {int(pid): (float(gb), cmd.strip()) for pid, gb, cmd in _TOP.findall(report)}
    for name, pid, gb in _SELECTED.findall(report):
        use.setdefault(int(pid), (float(gb), f"ray::{name}" if name else ""))
    return use


def charge(report: str, pids: Iterable[int], host: str, owner: dict[int, str], study: str = "",
           recent: dict[int, float] | None = None, task: str | None = None) -> tuple[str, bool]:
    """(the attempt's error, whether it counts toward max_failures) for a trial killed for memory.

    `pids`: the trial's processes (every rank); `owner`: pid -> trial id of the study's running
    trials; `study`: the study's name (its tasks run as ``ray::<study>/...``, a worker the driver
    has not heard of yet); `recent`: pid -> GB of processes charged a kill on this node moments before;
    `task`: this trial's task name up to its attempt number: its processes the report names by task are
    its own (an attempt killed before it recorded its start, its earlier attempts), never its rivals.
    """
    use = memory_use(report)
    pids = set(pids) | {p for p, (_, cmd) in use.items() if task and cmd.startswith(f"ray::{task}")}
    own = max((use[p][0] for p in pids if p in use), default=None)
    if own is None:
        return f"killed: out of memory on {host}", True
    rivals = {p: (gb, owner.get(p) or cmd.removeprefix("ray::")) for p, (gb, cmd) in use.items()
              if p not in pids and (p in owner or (study and cmd.startswith(f"ray::{study}/")))}
    for pid, gb in (recent or {}).items():
        if pid not in pids and gb > rivals.get(pid, (0.0, ""))[0]:
            rivals[pid] = (gb, owner.get(pid, f"process {pid}"))
    top = max(rivals, key=lambda p: rivals[p][0], default=None)
    if top is None or own >= rivals[top][0]:
        return (f"killed: out of memory on {host} (this trial used {own:.2f} GB, the most of the study's "
                "workers on the node)"), True
    gb, whose = rivals[top]
    whose = f"trial {whose}" if top in owner else f"task {whose}"
    return (f"killed: out of memory on {host} while {whose} used {gb:.2f} GB (this trial used "
            f"{own:.2f} GB): not its own memory, re-run without counting toward max_failures"), False
