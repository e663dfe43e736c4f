"""The rows two studies' analyses share, matched by group label, kind and name, and compared.

A study's rows: per group its components, their alternatives ("component=alternative"), its pairs'
interactions, its numeric factors (the slope) and its categorical factors' levels ("path=level").
"""

from __future__ import annotations

from ..analysis.stats import ESSENTIAL
from ..ledger.verdicts_json import Comparison, Estimate, Factor, Verdicts
from .model import RowComparison, RowSide, row_title
from .stats import CHANGED, Side, decide, difference, look_weight

Key = tuple[str, str, str]  # group, kind, name


def rows_of(v: Verdicts) -> dict[Key, Estimate]:
    """Every row of a study's analysis by (group, kind, name)."""
    out: dict[Key, Estimate] = {}
    for label, g in v.groups.items():
        for c, r in g.components.items():
            out[(label, "component", c)] = r
            for a, ar in r.alternatives.items():
                out[(label, "alternative", f"{c}={a}")] = ar
        for k, r in g.interactions.items():
            out[(label, "interaction", k)] = r
        for path, f in g.factors.items():
            if f.kind == "numeric":
                out[(label, "factor", path)] = f
            for level, lv in f.levels.items():
                out[(label, "level", f"{path}={level}")] = lv
    return out


def _side(r: Estimate, v: Verdicts, sign: float) -> Side:
    diffs = {s: sign * d for s, d in r.diffs.items()} if isinstance(r, Comparison) else {}
    return Side(sign * _num(r.effect), _num(r.se), _num(r.df), r.n, diffs, look_weight(v.adaptive))


def _num(x) -> float:
    return float("nan") if x is None else float(x)


def _row_side(r: Estimate, sign: float) -> RowSide:
    lo, hi = r.ci
    ci = [None if x is None else sign * x for x in (lo, hi)]
    if sign < 0:
        ci.reverse()
    return RowSide(effect=None if r.effect is None else sign * r.effect, ci=ci, n=r.n,
                   verdict=getattr(r, "verdict", None), method=getattr(r, "method", None))


def _notes(kind: str, old: Estimate, new: Estimate) -> list[str]:
    """What the reader must know about a row: another method, another unit, seeds left out."""
    notes = []
    if isinstance(old, Comparison) and isinstance(new, Comparison) and old.method != new.method:
        notes.append(f"estimated by {old.method} in the old study, by {new.method} in the new: with interacting "
                     "components these estimate different things")
    if isinstance(old, Factor) and isinstance(new, Factor):
        if old.unit != new.unit:
            notes.append(f"slope per {old.unit} in the old study, per {new.unit} in the new")
        if old.baseline_value != new.baseline_value:
            notes.append(f"baseline value {old.baseline_value!r} -> {new.baseline_value!r}")
    for which, r in (("old", old), ("new", new)):
        left = {k: v for k, v in (getattr(r, "unpaired", None) or {}).items() if v}
        if left.get("nonfinite"):
            notes.append(f"{which}: seed(s) {', '.join(map(str, left['nonfinite']))} non-finite, left out")
        missing = left.get("only_baseline", []) + left.get("only_other", [])
        if missing:
            notes.append(f"{which}: seed(s) {', '.join(map(str, missing))} lack one side of the pair "
                         "(failed, missing or not run), left out")
    return notes


def compare_rows(old: Verdicts, new: Verdicts, *, alpha: float, min_effect: float, pair: bool
                 ) -> tuple[list[RowComparison], list[str], list[str]]:
    """The rows both studies have, compared (changed rows first), and the rows only in the old / new study."""
    a, b = rows_of(old), rows_of(new)
    sign = 1.0 if old.primary.mode == new.primary.mode else -1.0
    shared = [k for k in a if k in b]
    raw = []
    for key in shared:
        ro, rn = a[key], b[key]
        so, sn = _side(ro, old, 1.0), _side(rn, new, sign)
        notes = _notes(key[1], ro, rn)
        use_pair = pair and len(set(so.diffs) & set(sn.diffs)) >= 2
        if pair and not use_pair:
            notes.append("compared unpaired: fewer than 2 shared seeds with a per-seed difference in both "
                         "studies (other seeds, or a regression or factor estimate)")
        d = difference(so, sn, pair=use_pair, alpha=alpha, min_effect=min_effect)
        d["weight"] = so.weight * sn.weight
        raw.append((key, ro, rn, d, notes))
    decide([d for *_, d, _ in raw], alpha)
    rows = [_row(key, ro, rn, d, notes, sign, alpha, min_effect) for key, ro, rn, d, notes in raw]
    order = {CHANGED: 0, "unclear": 1, "not compared": 2, "same": 3}
    rows.sort(key=lambda r: (order[r.call], not r.beyond_min_effect, -abs(r.diff or 0.0)))
    return rows, [row_title(*k) for k in a if k not in b], [row_title(*k) for k in b if k not in a]


def _row(key: Key, ro: Estimate, rn: Estimate, d: dict, notes: list[str], sign: float, alpha: float,
         min_effect: float) -> RowComparison:
    old, new = _row_side(ro, 1.0), _row_side(rn, sign)
    flip = old.verdict is not None and new.verdict is not None and old.verdict != new.verdict
    changed = d["call"] == CHANGED
    why = d["reason"]
    if flip and not changed:
        why = (f"not a change: the label moved {old.verdict} -> {new.verdict}, but the difference of the effects is "
               f"{d['call']} (Holm p {d['p_changed_holm']:.3g}); each study's own test sits near its threshold")
    elif d["call"] == "unclear" and min_effect == 0:
        why = "`same` needs min_effect > 0 (TOST within ±min_effect)"
    if d["weight"] < 1:
        notes.append(f"adaptive seeds: tested at {d['weight']:.3g} of alpha (1 / the looks each study could "
                     "have stopped it at)")
    return RowComparison(
        group=key[0], kind=key[1], name=key[2], old=old, new=new, diff=d["diff"], se=d["se"], df=d["df"],
        ci=d["ci"], pairing=d["pairing"], n_shared=d["n_shared"], weight=d["weight"], p_changed=d["p_changed"],
        p_changed_holm=d["p_changed_holm"], p_beyond_holm=d["p_beyond_holm"], p_same_holm=d["p_same_holm"],
        call=d["call"], beyond_min_effect=d["beyond_min_effect"], label_flip=flip,
        essential_lost=changed and old.verdict == ESSENTIAL and new.verdict != ESSENTIAL, why=why, notes=notes)
