"""Effects of components: paired per-seed differences (one-at-a-time) or regression
(random and full-factorial designs), pair interactions, Holm-corrected verdicts.

Every effect is oriented so that positive means "the component helps" (see stats.py).

Paired (one_at_a_time): effect of c = mean over seeds of the oriented difference between
``baseline`` and ``no-c`` on the seeds both completed with a finite metric. Interaction of
a listed pair (a, b): per seed ``delta_ab - delta_a - delta_b`` (the extra loss from removing
both beyond the sum of the single removals; positive = a and b cover for each other,
negative = each one matters only while the other is present), on the seeds where all four
variants exist.

Regression (random, full_factorial): ordinary least squares over every completed trial of
the group with an intercept, one 0/1 "removed" column per component, one product column
per listed pair, and seed fixed effects (so comparisons stay within seeds, i.e. paired).
The main effect of c is minus its coefficient on the oriented metric: the drop from
removing c while the components of any pair it belongs to stay present, averaged over the
other components' states otherwise. CIs and p-values are t-based from the residual
variance (df = trials - rank).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import stats as st

from .records import GroupData
from .stats import (
    MIN_BOOTSTRAP_N,
    NO_EVIDENCE,
    _summarise_diffs,
    bootstrap_ci,
    describe,
    finite,
    holm,
    orient,
    pair_values,
    pairing_note,
    sequential_level,
    sequential_p,
    sort_seeds,
    t_quantile,
    verdict,
)

INTERACTION = "interaction"


class Sequential:
    """Adaptive-seeds settings: p-values are made valid under optional stopping."""

    def __init__(self, initial: int, maximum: int, alpha: float, interim_share: float):
        self.initial, self.maximum, self.alpha, self.interim_share = initial, maximum, alpha, interim_share

    def adjust(self, p: float, n: int) -> float:
        return sequential_p(p, n, self.initial, self.maximum, self.alpha, self.interim_share)

    def adjust_level(self, n: int) -> float:
        return sequential_level(n, self.initial, self.maximum, self.alpha, self.interim_share)


# ---------------------------------------------------------------- pairing


def batch_bootstrap(diff_sets: Sequence[np.ndarray], alpha: float, n_bootstrap: int, random_state=0) -> list:
    """Bootstrap CIs for many difference vectors: one scipy call per distinct length.

    Rows of equal length share resampling indices, so each row's interval equals
    ``stats.bootstrap_ci(row, alpha, n_bootstrap, random_state)`` on its own.
    """
    out = [(float("nan"), float("nan"))] * len(diff_sets)
    if not n_bootstrap:
        return out
    by_n: dict[int, list[int]] = {}
    for i, d in enumerate(diff_sets):
        if len(d) >= MIN_BOOTSTRAP_N:
            by_n.setdefault(len(d), []).append(i)
    for idx in by_n.values():
        lo, hi = bootstrap_ci(np.vstack([diff_sets[i] for i in idx]), alpha, n_bootstrap, random_state)
        for k, i in enumerate(idx):
            out[i] = (float(lo[k]), float(hi[k]))
    return out


# ---------------------------------------------------------------- one at a time


def paired_effects(
    group: GroupData,
    components: dict,
    metric: str,
    mode: str,
    alpha: float,
    min_effect: float,
    n_bootstrap: int,
    sequential: Sequential | None = None,
) -> dict[str, dict]:
    """Per component: baseline vs no-<c> paired on seeds, Holm across components."""
    base = group.baseline
    base_vals = base.values(metric) if base else {}
    prepared = {}
    for name in components:
        var = group.get((name,))
        if var is None or base is None:
            prepared[name] = None
            continue
        prepared[name] = pair_values(base_vals, var.values(metric), mode)
    names = [n for n, v in prepared.items() if v is not None]
    boots = batch_bootstrap([prepared[n][1] for n in names], alpha, n_bootstrap)
    results: dict[str, dict] = {}
    for name, comp in components.items():
        kind = getattr(comp, "kind", None)
        if prepared[name] is None:
            missing = "baseline" if base is None else f"no-{name}"
            results[name] = _empty(kind, "paired", f"cannot conclude: no '{missing}' trials in this group")
            continue
        seeds, diffs, b, o, unpaired = prepared[name]
        res = _summarise_diffs(diffs, alpha, n_bootstrap, 0, boot_ci=boots[names.index(name)])
        var = group.get((name,))
        res.update(
            kind=kind,
            method="paired",
            seeds=list(seeds),
            diffs={str(s): float(d) for s, d in zip(seeds, diffs)},
            unpaired=unpaired,
            note=pairing_note(res["n"], unpaired),
            baseline=_short(describe(b)),
            ablated=_short(describe(o)),
            seed_std=_nanmax(describe(base_vals.values())["std"], describe(var.values(metric).values())["std"]),
        )
        results[name] = res
    finish_family(results, alpha, min_effect, sequential)
    return results


def paired_interactions(
    group: GroupData,
    pairs: Iterable[Sequence[str]],
    metric: str,
    mode: str,
    alpha: float,
    n_bootstrap: int,
) -> dict[str, dict]:
    """Per listed pair: delta_ab - delta_a - delta_b per seed, Holm across pairs."""
    out: dict[str, dict] = {}
    sets = []
    keys = []
    base = group.baseline
    for a, b in pairs:
        key = f"{a}+{b}"
        va, vb, vab = group.get((a,)), group.get((b,)), group.get((a, b))
        if base is None or va is None or vb is None or vab is None:
            lacking = [n for n, v in (("baseline", base), (f"no-{a}", va), (f"no-{b}", vb), (f"no-{a}+{b}", vab)) if v is None]
            out[key] = _empty(None, "paired", f"cannot conclude: no {', '.join(lacking)} trials in this group")
            out[key].pop("kind")
            continue
        vals = [v.values(metric) for v in (base, va, vb, vab)]
        common = sort_seeds(set(vals[0]) & set(vals[1]) & set(vals[2]) & set(vals[3]))
        arr = np.array([[v[s] for s in common] for v in vals], dtype=float).reshape(4, len(common))
        d_a, d_b, d_ab = (orient(arr[0], arr[i], mode) for i in (1, 2, 3))
        contrast = d_ab - d_a - d_b
        allseeds = set().union(*vals)
        dropped = sort_seeds(allseeds - set(common))
        res = {"_seeds": common, "_contrast": contrast, "_dropped": dropped,
               "delta_a": describe(d_a)["mean"], "delta_b": describe(d_b)["mean"], "delta_ab": describe(d_ab)["mean"]}
        out[key] = res
        sets.append(contrast)
        keys.append(key)
    boots = batch_bootstrap(sets, alpha, n_bootstrap)
    for key, boot in zip(keys, boots):
        pre = out[key]
        res = _summarise_diffs(pre["_contrast"], alpha, n_bootstrap, 0, boot_ci=boot)
        note = pairing_note(res["n"], {})
        if pre["_dropped"]:
            note = "; ".join(x for x in (note, (f"uses seeds where all four variants finished: "
                                         f"{', '.join(map(str, pre['_seeds']))}")) if x)
        res.update(
            method="paired",
            seeds=list(pre["_seeds"]),
            diffs={str(s): float(d) for s, d in zip(pre["_seeds"], pre["_contrast"])},
            delta_a=pre["delta_a"], delta_b=pre["delta_b"], delta_ab=pre["delta_ab"],
            note=note,
        )
        out[key] = res
    finish_interactions(out, alpha)
    return out


# ---------------------------------------------------------------- regression


def regression_effects(
    group: GroupData,
    components: dict,
    pairs: Iterable[Sequence[str]],
    metric: str,
    mode: str,
    alpha: float,
    min_effect: float,
    sequential: Sequential | None = None,
    extra=None,
) -> tuple[dict[str, dict], dict[str, dict]]:
    """Main effects (and pair interactions) by least squares with seed fixed effects.

    ``extra(variant) -> {column: value}`` adds covariates (alternatives, factor levels) to the fit.
    """
    names = list(components)
    pairs = [tuple(p) for p in pairs]
    rows, ys, seeds, covs = [], [], [], []
    for var in group.variants.values():
        removed = set(var.removed)
        cov = extra(var) if extra else {}
        for s, v in var.values(metric).items():
            rows.append(removed)
            ys.append(v)
            seeds.append(s)
            covs.append(cov)
    n = len(ys)
    uniq = sort_seeds(set(seeds))
    seed_index = {s: i for i, s in enumerate(uniq)}
    p_main = len(names)
    cov_cols = sorted({k for c in covs for k in c})
    X = np.zeros((n, 1 + p_main + len(pairs) + max(len(uniq) - 1, 0) + len(cov_cols)))
    for i, cov in enumerate(covs):
        for k, col in enumerate(cov_cols):
            X[i, -len(cov_cols) + k] = cov.get(col, 0.0)
    X[:, 0] = 1.0
    for i, (removed, s) in enumerate(zip(rows, seeds)):
        for j, c in enumerate(names):
            X[i, 1 + j] = c in removed
        for k, (a, b) in enumerate(pairs):
            X[i, 1 + p_main + k] = (a in removed) and (b in removed)
        si = seed_index[s]
        if si > 0:
            X[i, 1 + p_main + len(pairs) + si - 1] = 1.0
    y = np.asarray(ys, dtype=float)
    y = y if mode == "max" else -y
    fit = _ols(X, y, alpha)
    base = group.baseline
    base_vals = base.values(metric) if base else {}
    base_std = describe(base_vals.values())["std"]
    mains: dict[str, dict] = {}
    for j, c in enumerate(names):
        col = 1 + j
        with_c = [v for r, v in zip(rows, ys) if c not in r]
        without_c = [v for r, v in zip(rows, ys) if c in r]
        res = _coef(fit, col, f"cannot conclude: '{c}' is never removed in this group" if not without_c else None)
        res.update(
            kind=getattr(components[c], "kind", None),
            method="regression",
            n_removed=len(without_c),
            n_seeds=len({s for r, s in zip(rows, seeds) if c in r}),
            baseline=_short(describe(with_c)),
            ablated=_short(describe(without_c)),
            seed_std=base_std if finite(base_std) else fit["resid_std"],
        )
        mains[c] = res
    finish_family(mains, alpha, min_effect, sequential)
    inter: dict[str, dict] = {}
    for k, (a, b) in enumerate(pairs):
        col = 1 + p_main + k
        both = int(X[:, col].sum())
        res = _coef(fit, col, f"cannot conclude: '{a}' and '{b}' are never removed together" if not both else None)
        res.update(method="regression", n_removed=both)
        inter[f"{a}+{b}"] = res
    finish_interactions(inter, alpha)
    return mains, inter


def _ols(X: np.ndarray, y: np.ndarray, alpha: float) -> dict:
    n = len(y)
    if n == 0:
        return {"n": 0, "df": 0, "beta": np.zeros(X.shape[1]), "estimable": np.zeros(X.shape[1], bool),
                "se": np.full(X.shape[1], np.nan), "tq": np.nan, "resid_std": np.nan}
    beta, _, rank, _sv = np.linalg.lstsq(X, y, rcond=None)
    df = n - int(rank)
    pinv = np.linalg.pinv(X)
    proj = pinv @ X  # identity on the estimable directions
    estimable = np.abs(np.diag(proj) - 1.0) < 1e-8
    if df >= 1:
        resid = y - X @ beta
        s2 = float(resid @ resid) / df
        cov_diag = np.einsum("ij,ij->i", pinv, pinv) * s2  # diag(pinv pinv^T) s2 = diag((X'X)^+) s2
        se = np.sqrt(np.maximum(cov_diag, 0.0))
        tq = t_quantile(1 - alpha / 2, df)
    else:
        s2, se, tq = np.nan, np.full(X.shape[1], np.nan), np.nan
    return {"n": n, "df": df, "beta": beta, "estimable": estimable, "se": se, "tq": tq,
            "resid_std": float(np.sqrt(s2)) if finite(s2) else float("nan")}


def _coef(fit: dict, col: int, reason: str | None) -> dict:
    nan = float("nan")
    if reason is None and fit["n"] == 0:
        reason = "cannot conclude: no completed trials with a finite metric"
    if reason is None and not fit["estimable"][col]:
        reason = "cannot conclude: not estimable in this design (confounded with other columns)"
    if reason is None and fit["df"] < 1:
        reason = "cannot conclude: no residual degrees of freedom (as many parameters as trials)"
    if reason is not None:
        res = _empty(None, "regression", reason)
        res.pop("kind")
        res["n"] = fit["n"]
        return res
    effect = -float(fit["beta"][col])
    se = float(fit["se"][col])
    if se > 0:
        tstat = effect / se
        p = float(2 * st.t.sf(abs(tstat), fit["df"]))
    else:
        tstat, p = (0.0, 1.0) if effect == 0 else (np.copysign(np.inf, effect), 0.0)
    half = fit["tq"] * se
    ci = [effect - half, effect + half]
    return {"n": fit["n"], "df": fit["df"], "effect": effect, "std": nan, "se": se, "ci": ci, "ci_t": ci,
            "ci_bootstrap": [nan, nan], "t": float(tstat), "p": p, "conclusive": True,
            "zero_variance": bool(se == 0), "note": "", "seeds": [], "diffs": {}}


# ---------------------------------------------------------------- families


def finish_family(results: dict[str, dict], alpha: float, min_effect: float, sequential: Sequential | None) -> None:
    """Holm across the family (after the adaptive-seeds adjustment), then verdicts."""
    names = list(results)
    ps = []
    for name in names:
        r = results[name]
        p = r.get("p", float("nan"))
        if sequential is not None and finite(p):
            r["p_seq"] = sequential.adjust(p, r.get("n_seeds", r["n"]))
            p = r["p_seq"]
        ps.append(p if finite(p) else np.nan)
    adj = holm(ps)
    for name, pa in zip(names, adj):
        r = results[name]
        r["p_holm"] = float(pa)
        r["verdict"] = verdict(r.get("effect"), [tuple(r["ci_t"]), tuple(r["ci_bootstrap"])], pa, alpha, min_effect)


def finish_interactions(results: dict[str, dict], alpha: float) -> None:
    names = list(results)
    adj = holm([results[n].get("p", np.nan) if finite(results[n].get("p")) else np.nan for n in names])
    for name, pa in zip(names, adj):
        r = results[name]
        r["p_holm"] = float(pa)
        v = verdict(r.get("effect"), [tuple(r["ci_t"]), tuple(r["ci_bootstrap"])], pa, alpha, 0.0)
        r["verdict"] = NO_EVIDENCE if v == NO_EVIDENCE else INTERACTION
        if r["verdict"] == INTERACTION:
            r["reading"] = ("removing both hurts more than the two removals added up: each covers for the other"
                            if r["effect"] > 0 else
                            "removing both hurts less than the two removals added up: each matters mainly "
                            "while the other is present")


def _empty(kind, method: str, note: str) -> dict:
    nan = float("nan")
    return {"kind": kind, "method": method, "n": 0, "effect": nan, "std": nan, "se": nan,
            "ci": [nan, nan], "ci_t": [nan, nan], "ci_bootstrap": [nan, nan], "t": nan, "p": nan,
            "p_holm": nan, "verdict": NO_EVIDENCE, "conclusive": False, "zero_variance": False,
            "note": note, "seeds": [], "diffs": {}, "baseline": _short(describe([])), "ablated": _short(describe([])),
            "seed_std": nan}


def _short(d: dict) -> dict:
    return {"n": d["n"], "mean": d["mean"], "std": d["std"]}


def _nanmax(*xs: float) -> float:
    vals = [x for x in xs if finite(x)]
    return max(vals) if vals else float("nan")


# ---------------------------------------------------------------- secondary metrics


def secondary_effects(
    group: GroupData,
    components: dict,
    pairs,
    metric: str,
    mode: str,
    alpha: float,
    design: str,
) -> dict[str, dict]:
    """Effect of each component on a secondary metric (oriented by its own mode), t-based."""
    if design == "one_at_a_time":
        res = paired_effects(group, components, metric, mode, alpha, 0.0, 0)
    else:
        res, _ = regression_effects(group, components, pairs, metric, mode, alpha, 0.0)
    return {c: {"effect": r["effect"], "ci": r["ci_t"], "p": r["p"], "n": r["n"]} for c, r in res.items()}
