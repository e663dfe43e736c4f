"""Reproducibility: which mode the trials ran in, and the determinism check.

``analysis.check_determinism: true`` runs the baseline's first seed a second time (purpose
``determinism``); ``check`` compares the two runs' final metrics and per-step history bit
for bit and flags any difference. Each trial record says whether it ran with
``reproducibility.deterministic`` (``record.reproducibility``, written by the worker).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ..config import StudyConfig
from ..ledger import COMPLETED, DETERMINISM, TrialRecord
from .flags import flag


def repeat_spec(config: StudyConfig, tier: str | None = None):
    """The second run of the baseline's first seed (in the last tier's first group)."""
    from .. import plan as planning

    first = planning.ablation_trials(config, seeds=config.seed_list[:1], only=[planning.Variant()], tier=tier)[0]
    first.trial_id, first.purpose = f"{first.trial_id}-repeat", DETERMINISM
    return first


def mode(records: Iterable[TrialRecord]) -> dict:
    """{deterministic: True | False | "mixed" | None, trials: {on, off}} over the trials that ran."""
    on = off = 0
    for r in records:
        rep = r.reproducibility
        if rep is None:
            continue
        on += bool(rep.get("deterministic"))
        off += not rep.get("deterministic")
    value = None if on + off == 0 else True if off == 0 else False if on == 0 else "mixed"
    return {"deterministic": value, "trials": {"on": on, "off": off}}


def check(records: Iterable[TrialRecord], history) -> tuple[dict | None, list[dict]]:
    """Compare each determinism repeat with its original run: (result, flags).

    ``history(trial_id)`` gives a trial's per-step metrics. Differences are exact: any bit
    that differs is reported, with the largest absolute difference.
    """
    records = list(records)
    by_id = {r.trial_id: r for r in records}
    result, flags = None, []
    for rep in records:
        if rep.purpose != DETERMINISM:
            continue
        orig = by_id.get(rep.trial_id.removesuffix("-repeat"))
        if orig is None or rep.state != COMPLETED or orig.state != COMPLETED:
            result = {"trial": rep.trial_id, "identical": None,
                      "note": "the repeat or its original did not complete"}
            flags.append(flag("determinism", "warning", rep.group, orig and orig.trial_id,
                              f"determinism check could not run: {result['note']}"))
            continue
        diffs = _differences(orig.final or {}, rep.final or {})
        steps = [_row(x) for x in history(orig.trial_id)], [_row(x) for x in history(rep.trial_id)]
        hist_same = _dedupe(steps[0]) == _dedupe(steps[1])
        identical = not diffs and hist_same
        result = {"trial": orig.trial_id, "seed": orig.seed, "identical": identical,
                  "final_differences": diffs, "history_identical": hist_same}
        if not identical:
            worst = max((abs(d["a"] - d["b"]) for d in diffs.values() if None not in (d["a"], d["b"])),
                        default=0.0)
            what = ", ".join(diffs) or "per-step metrics"
            flags.append(flag("determinism", "warning", rep.group, orig.trial_id,
                              f"the baseline's seed {orig.seed} run twice gave different results ({what}; "
                              f"largest difference {worst:.3g}): same-seed results are not reproducible here; "
                              "consider reproducibility.deterministic: true"))
    return result, flags


def _differences(a: dict, b: dict) -> dict:
    out = {}
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k), b.get(k)
        if x != y and not (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)):
            out[k] = {"a": x, "b": y}
    return out


def _row(x: dict) -> dict:
    return {k: v for k, v in x.items() if k not in ("time", "attempt")}


def _dedupe(rows: list[dict]) -> list[dict]:
    """The last row reported for each step (a restart may repeat a step)."""
    last = {r.get("step"): r for r in rows}
    return [last[k] for k in sorted(last, key=lambda s: (s is None, s))]
