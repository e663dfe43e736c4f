"""Flags: everything a reader must know before trusting a verdict.

Each flag is a ``Flag`` (kind, severity, group, subject, message); ``severity`` is
``error`` (a result is void or missing), ``warning`` (a result needs care) or ``info``.

Kinds: ``seed_variance`` (seed std larger than the effect), ``secondary``
(a secondary metric moves against the primary beyond noise), ``missing`` (failed,
pending or absent seeds, and which ones), ``nonfinite`` (NaN/inf metrics),
``cannot_conclude`` (fewer than 2 paired seeds), ``zero_variance`` (identical results
across seeds: seeding may not reach the trainable), ``reference`` (a published single
run in the tail of the retrained baseline), ``contamination`` (train and
evaluation items overlap), ``incomplete`` (trials still pending or running),
``interaction`` (random/factorial designs: a pair nobody listed interacts, or the
main-effects model does not fit), ``power`` (the study cannot detect min_effect),
``determinism`` (the same baseline seed run twice gave different results).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..ledger import FAILED, PENDING, RUNNING, TrialRecord
from ..ledger.verdicts_json import Comparison, Factor, FitCheck, Flag, SecondaryEffect
from .intervals import prediction_interval
from .model import ContaminationCheck, ReferenceCheck
from .numbers import describe, finite, sort_seeds
from .records import GroupData
from .stats import INCONCLUSIVE


def flag(kind: str, severity: str, group: str | None, subject: str | None, message: str) -> Flag:
    return Flag(kind=kind, severity=severity, group=group, subject=subject, message=message)


def _fmt(x: float, digits: int = 4) -> str:
    return f"{x:.{digits}g}" if finite(x) else str(x)


def _seeds(seeds: Iterable) -> str:
    return ", ".join(str(s) for s in seeds)


# ---------------------------------------------------------------- per-component flags


def effect_flags(label: str, results: dict[str, Comparison], primary: str, is_interaction: bool = False
                 ) -> list[Flag]:
    out = []
    for name, r in results.items():
        what = f"pair {name}" if is_interaction else name
        if not r.estimable:
            out.append(flag("cannot_conclude", "warning", label, name,
                            f"{what}: {r.note or 'cannot conclude'} - verdict stays 'inconclusive'"))
            continue
        if r.zero_variance:
            out.append(flag("zero_variance", "warning", label, name,
                            f"{what}: every seed gave exactly the same {primary} difference; check that the seed "
                            "reaches the trainable (or the variant is deterministic)"))
        if is_interaction:
            continue
        sd, eff = r.seed_std, r.effect
        if finite(sd) and finite(eff) and sd > abs(eff):
            tail = ("the verdict rests on pairing by seed" if r.verdict != INCONCLUSIVE
                    else "the difference is within seed noise")
            out.append(flag("seed_variance", "warning", label, name,
                            f"{name}: seed std of {primary} ({_fmt(sd)}) is larger than the effect "
                            f"({_fmt(eff)}); {tail}"))
    return out


def fit_flags(label: str, check: FitCheck | None, primary: str) -> list[Flag]:
    """The main-effects model left out a pair that interacts, or does not fit the variant means."""
    if check is None:
        return []
    out = []
    for key in check.found:
        r = check.pairs[key]
        aliases = check.aliases.get(key)
        alias = f"; this design cannot tell it apart from {', '.join(aliases)}" if aliases else ""
        out.append(flag("interaction", "warning", label, key,
                        f"{key}: interaction on {primary} (contrast {_fmt(r.effect)}, Holm p "
                        f"{_fmt(r.p_holm, 2)}) not listed in design.pairs; the pair was added to the model "
                        f"and both components are judged in the baseline's context{alias}"))
    lof = check.lack_of_fit
    if lof and lof.p < 0.05:
        names = ", ".join(check.found) or "no single pair explains it"
        out.append(flag("interaction", "warning", label, None,
                        f"the main-effects model does not fit the variant means of {primary} (lack of fit F = "
                        f"{_fmt(lof.F)}, p = {_fmt(lof.p, 2)}; {names}): effects averaged over variants "
                        "may not hold in the baseline"))
    return out


def secondary_flags(label: str, rows: dict[str, Comparison] | dict[str, Factor], primary: str,
                    what: Callable[[Any, SecondaryEffect], str] = lambda r, s: "the component") -> list[Flag]:
    """A secondary metric whose CI excludes 0 on the side opposite to a row's primary effect.

    Each row (a component, an alternative, a factor) carries its secondary metrics' effects under
    ``secondary``; ``what(row, effect)`` names what the primary metric judges ("the component", a factor's
    unit or level)."""
    out = []
    for name, r in rows.items():
        pe = r.effect
        for metric, s in r.secondary.items():
            se_ = s.effect
            lo, hi = s.ci
            if not (finite(pe) and finite(se_) and finite(lo) and finite(hi)) or pe == 0:
                continue
            if (pe > 0 and hi < 0) or (pe < 0 and lo > 0):
                out.append(flag(
                    "secondary", "warning", label, name,
                    f"{name}: {primary} says {what(r, s)} {'helps' if pe > 0 else 'hurts'} (effect {_fmt(pe)}) but "
                    f"{metric} moves the other way beyond noise (effect {_fmt(se_)}, CI [{_fmt(lo)}, {_fmt(hi)}]); "
                    "check for an artifact before trusting the primary metric"))
    return out


# ---------------------------------------------------------------- trials: missing, failed, non-finite


def trial_flags(label: str, group: GroupData, expected_seeds: list, expected_variants: list[tuple[str, tuple]],
                metrics: list[str], primary: str) -> tuple[list[Flag], dict[str, dict]]:
    """Missing/failed/pending seeds per variant, non-finite metrics; plus per-variant seed status."""
    out: list[Flag] = []
    status: dict[str, dict] = {}
    present = set(group.variants)
    for name, removed in expected_variants:
        if frozenset(removed) not in present:
            out.append(flag("missing", "error", label, name,
                            f"{name}: no trials at all in this group (expected seeds {_seeds(expected_seeds)})"))
    for var in group.ordered():
        expected = sort_seeds(set(expected_seeds) | set(var.by_seed))
        ok = var.values(primary)
        failed = var.seeds_in_state(FAILED)
        pending = var.seeds_in_state(PENDING) + var.seeds_in_state(RUNNING)
        nonfinite = var.nonfinite(primary)
        no_metric = var.missing_metric(primary)
        absent = [s for s in expected if s not in var.by_seed]
        status[var.name] = {"expected": expected, "completed": sort_seeds(ok), "failed": failed,
                            "pending": pending, "nonfinite": sort_seeds(nonfinite), "absent": absent,
                            "no_metric": no_metric}
        lacking = [s for s in expected if s not in ok]
        if lacking:
            why = []
            for s in failed:
                why.append(f"seed {s}: FAILED{_error_summary(var.by_seed[s])}")
            for s in pending:
                why.append(f"seed {s}: {var.by_seed[s].state}")
            for s in sort_seeds(nonfinite):
                why.append(f"seed {s}: {primary} = {nonfinite[s]}")
            for s in no_metric:
                why.append(f"seed {s}: completed without reporting {primary}")
            for s in absent:
                why.append(f"seed {s}: never run")
            out.append(flag("missing", "error" if (failed or absent) else "warning", label, var.name,
                            f"{var.name} lacks seed(s) {_seeds(lacking)} of {_seeds(expected)} ({'; '.join(why)}); "
                            f"its comparisons use only the seeds that exist on both sides, "
                            f"never fewer averaged silently"))
        for metric in metrics:
            bad = var.nonfinite(metric)
            if bad:
                where = ", ".join(f"seed {s}: {v}" for s, v in sorted(bad.items(), key=lambda kv: str(kv[0])))
                hint = (" - if removing a component makes training diverge, that component matters more than "
                        "the table can show" if var.removed and metric == primary else "")
                out.append(flag("nonfinite", "error" if metric == primary else "warning", label, var.name,
                                f"{var.name}: non-finite {metric} ({where}); excluded from the statistics{hint}"))
    running = [r for r in group.records() if r.state in (PENDING, RUNNING)]
    if running:
        out.append(flag("incomplete", "warning", label, None,
                        f"{len(running)} trial(s) still pending or running: this report is provisional"))
    return out, status


def _error_summary(rec: TrialRecord) -> str:
    txt = f" after {rec.attempts} attempt(s)" if rec.attempts else ""
    last = (rec.last_error or "").strip().splitlines()
    if last:
        txt += f" - {last[-1][:120]}"
    return txt


# ---------------------------------------------------------------- reference result


def reference_check(label: str, baseline_values: list[float], reference: float | None, mode: str,
                    alpha: float, primary: str) -> tuple[ReferenceCheck | None, list[Flag]]:
    """Where a single published run sits in the retrained baseline's seed distribution."""
    if reference is None:
        return None, []
    x = np.asarray(baseline_values, dtype=float)
    n = x.size
    if n < 2:
        return ReferenceCheck(reference=float(reference), n=int(n)), [flag("reference", "warning", label, "baseline",
                           f"cannot check reference_result {_fmt(reference)}: the retrained baseline has {n} "
                           "seed(s) (need at least 2)")]
    d = describe(x)
    lo, hi = prediction_interval(x, alpha)
    better = (lambda v: v > hi) if mode == "max" else (lambda v: v < lo)
    worse = (lambda v: v < lo) if mode == "max" else (lambda v: v > hi)
    frac_beaten = float(np.mean(x >= reference)) if mode == "max" else float(np.mean(x <= reference))
    tail_q = float(np.quantile(x, 0.95 if mode == "max" else 0.05))  # the empirical 95th (5th for min) percentile
    info = ReferenceCheck(reference=float(reference), n=int(n), mean=d["mean"], std=d["std"],
                          prediction_interval=[lo, hi], tail_quantile=tail_q,
                          z=(reference - d["mean"]) / d["std"] if d["std"] else float("nan"),
                          fraction_at_least_as_good=frac_beaten)
    flags = []
    level = round((1 - alpha) * 100)
    if better(reference):
        flags.append(flag("reference", "warning", label, "baseline",
                          f"reference_result {_fmt(reference)} lies beyond the {level}% prediction interval of the "
                          f"retrained baseline ({primary} {_fmt(d['mean'])} ± {_fmt(d['std'])} over {n} seeds, "
                          f"interval [{_fmt(lo)}, {_fmt(hi)}]): it looks like a lucky run; compare against the "
                          "seed mean, not against it"))
    elif worse(reference):
        flags.append(flag("reference", "warning", label, "baseline",
                          f"the retrained baseline ({_fmt(d['mean'])} ± {_fmt(d['std'])}) is better than "
                          f"reference_result {_fmt(reference)} beyond its {level}% prediction interval: the setup "
                          "probably differs from the published one"))
    else:
        flags.append(flag("reference", "info", label, "baseline",
                          f"reference_result {_fmt(reference)} is within the retrained baseline's {level}% "
                          f"prediction interval [{_fmt(lo)}, {_fmt(hi)}]"))
    return info, flags


# ---------------------------------------------------------------- contamination


def contamination_flags(records: Iterable[TrialRecord], study_path: str | Path | None
                        ) -> tuple[list[Flag], ContaminationCheck]:
    """Overlap of training items with evaluation items, per trial (cached by data hash).

    Splits whose name contains 'train' are training data; every other split is evaluation
    data. Equal split hashes mean identical data; otherwise the item hashes in
    ``trials/<id>/data_<split>.json`` are intersected (when the study dir is available).
    """
    trials_dir = Path(study_path) / "trials" if study_path is not None else None
    items_cache: dict[str, set | int] = {}
    pair_cache: dict[tuple, int | None] = {}
    tries: dict[tuple, int] = {}
    hits: dict[tuple, list[str]] = {}
    sizes: dict[tuple, int | None] = {}
    checked = 0
    unchecked = 0
    for rec in records:
        fps = rec.data_fingerprints
        if not fps:
            continue
        train = [s for s in fps if "train" in s.lower()]
        evals = [s for s in fps if "train" not in s.lower()]
        for tr in train:
            for ev in evals:
                ht, he = (fps[tr] or {}).get("hash"), (fps[ev] or {}).get("hash")
                if ht is None or he is None:
                    continue
                key = (tr, ht, ev, he)
                if key in pair_cache:
                    overlap = pair_cache[key]
                else:
                    overlap = _overlap(rec, tr, ht, ev, he, fps, trials_dir, items_cache)
                    tries[key] = tries.get(key, 0) + 1
                    if overlap is not None or tries[key] >= MAX_MISSES:
                        pair_cache[key] = overlap
                if overlap is None:
                    unchecked += 1
                    continue
                checked += 1
                if overlap > 0:
                    hits.setdefault(key, []).append(rec.trial_id)
                    sizes.setdefault(key, (fps[ev] or {}).get("n"))
    out = []
    for (tr, ht, ev, he), trials in hits.items():
        n_ev = sizes.get((tr, ht, ev, he))
        k = pair_cache[(tr, ht, ev, he)]
        sample = ", ".join(trials[:5]) + (f" and {len(trials) - 5} more" if len(trials) > 5 else "")
        out.append(flag("contamination", "error", None, ev,
                        f"contamination: {k}{'' if n_ev is None else f' of {n_ev}'} '{ev}' items also appear in "
                        f"'{tr}' ({len(trials)} trial(s): {sample}); every result evaluated on '{ev}' is void"))
    return out, ContaminationCheck(checked_pairs=checked, unchecked_pairs=unchecked,
                                   contaminated_trials=sum(map(len, hits.values())))


def _overlap(rec: TrialRecord, tr, ht, ev, he, fps, trials_dir, cache) -> int | None:
    if ht == he and (fps[tr] or {}).get("n", 1):
        return int((fps[ev] or {}).get("n") or 1)
    a = _items(rec, tr, ht, trials_dir, cache)
    b = _items(rec, ev, he, trials_dir, cache)
    if a is None or b is None:
        return None
    return len(a & b)


MAX_MISSES = 3  # trials tried for a data hash's item list before giving up on it


def _items(rec: TrialRecord, split, h, trials_dir, cache) -> set | None:
    """The item hashes of a split with data hash h (read once per hash, from any trial that has them)."""
    hit = cache.get(h)
    if isinstance(hit, set):
        return hit
    misses = hit or 0
    if trials_dir is None or not rec.trial_id or misses >= MAX_MISSES:
        return None
    path = trials_dir / rec.trial_id / f"data_{split}.json"
    try:
        with open(path) as fh:
            items = set(json.load(fh).get("items") or [])
    except (OSError, ValueError):
        cache[h] = misses + 1
        return None
    cache[h] = items
    return items
