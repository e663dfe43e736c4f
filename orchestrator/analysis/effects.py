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
variance (df = trials - rank). The main-effects model is checked: every unlisted pair is
tested on its own (Holm across pairs) and a lack-of-fit F test compares it with one mean
per variant; pairs found join the model and are warned about ("a x b"), so a component
in one is judged in the baseline's context rather than by an average over variants where
its partner is gone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import stats as st

from ..ledger.verdicts_json import (
    INTERACTION,
    AverageEffect,
    Comparison,
    Deciding,
    FitCheck,
    LackOfFit,
    PairTest,
    SecondaryEffect,
)
from .blas import one_blas_thread
from .intervals import MIN_BOOTSTRAP_N, bootstrap_ci
from .numbers import TIE_RTOL, describe, finite, fnum, orient, snap_ties, sort_seeds, t_quantile
from .records import GroupData
from .sequential import Design, adaptive_design
from .stats import (
    INCONCLUSIVE,
    decide_family,
    holm,
    judge,
    pair_values,
    pairing_note,
    short,
    summarise_diffs,
    summarise_estimate,
)


class Sequential:
    """Sequential seeds (adaptive, or an interim look at fixed seeds): every row's tests become repeated
    p-values of the design (sequential.py), valid however the looks were timed. ``name``: adaptive seeds'
    named design (sequential.DESIGNS: its final weight and futility); None for an interim look at fixed seeds."""

    def __init__(self, initial: int, maximum: int, alpha: float, min_effect: float = 0.0, name: str | None = None):
        self.initial, self.maximum, self.alpha, self.min_effect, self.name = initial, maximum, alpha, min_effect, name
        self.design = adaptive_design(initial, maximum, name) if name else Design(initial, maximum)

    def adjust_level(self, n: int) -> float:
        """The two-sided level a look at n tests at (twice the one-sided boundary at alpha / 2)."""
        return 2 * self.design.boundary(n, self.alpha / 2)

    def row(self, r: Comparison, earlier: list[tuple[int, dict]] | None = None) -> dict[str, float]:
        """A row's repeated p-values {p, essential, harmful, negligible} (doubled like the raw ones) and
        ``factor``, the ratio of alpha to the look's two-sided level (for its simultaneous interval).

        The running minimum over the row's looks, so a decided row stays decided as seeds arrive: a paired
        row's looks are its first k seeds (seed order); a regression row's are ``earlier`` (its model
        refitted on the study's first k seeds: ``prefix_looks``) and the current one; other rows use their
        current look."""
        n = r.n if r.n_seeds is None else r.n_seeds
        looks = [(k, judge_prefix(r, k, self.min_effect)) for k in range(self.design.first, r.n + 1)] \
            if r.method == "paired" and len(r.diffs) == r.n == len(r.seeds) else []
        if not looks:
            looks = [*(earlier or []), (n, {"p": r.p, "p_essential": r.p_essential, "p_harmful": r.p_harmful,
                                            "p_negligible": r.p_negligible})]
        def rep(key: str, sides: int) -> float:
            return self.repeated([(k, j[key]) for k, j in looks], sides)

        level = self.adjust_level(n)
        return {"p": rep("p", 2), "essential": rep("p_essential", 2), "harmful": rep("p_harmful", 2),
                "negligible": rep("p_negligible", 1), "factor": self.alpha / level if level > 0 else math.inf}

    def repeated(self, looks: list[tuple[int, float]], sides: int = 2) -> float:
        """The repeated p-value of one test after its looks [(seeds, nominal p)] (``sides``: 2 for a doubled
        one-sided or a two-sided p): the running minimum over the looks, so it never rises as seeds arrive."""
        q = self.design.repeated_min([p / sides for _, p in looks], [k for k, _ in looks])
        return q if not finite(q) else min(1.0, sides * q)


def judge_prefix(r: Comparison, k: int, min_effect: float) -> dict:
    """judge() on a paired row's first k differences (seed order): the row's look at k seeds."""
    d = describe([r.diffs[str(s)] for s in r.seeds[:k]])
    return judge(d["mean"], d["sem"], k - 1, 0.05, min_effect)


# ---------------------------------------------------------------- pairing


def batch_bootstrap(diff_sets: Sequence[np.ndarray], alpha: float, n_bootstrap: int, random_state=0) -> list:
    """Bootstrap CIs for many difference vectors: one scipy call per distinct length.

    Rows of equal length share resampling indices, so each row's interval equals
    ``intervals.bootstrap_ci(row, alpha, n_bootstrap, random_state)`` on its own.
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
) -> dict[str, Comparison]:
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
    results: dict[str, Comparison] = {}
    for name, comp in components.items():
        kind = getattr(comp, "kind", None)
        if prepared[name] is None:
            missing = "baseline" if base is None else f"no-{name}"
            results[name] = _empty("paired", f"cannot conclude: no '{missing}' trials in this group", kind=kind)
            continue
        seeds, diffs, b, o, unpaired = prepared[name]
        var = group.get((name,))
        results[name] = Comparison(
            **summarise_diffs(diffs, alpha, min_effect, n_bootstrap, 0, boot_ci=boots[names.index(name)]),
            kind=kind,
            method="paired",
            verdict=INCONCLUSIVE,
            seeds=list(seeds),
            diffs={str(s): float(d) for s, d in zip(seeds, diffs)},
            unpaired=unpaired,
            note=pairing_note(len(seeds), unpaired),
            baseline=short(b),
            variant=short(o),
            seed_std=_nanmax(describe(base_vals.values())["std"], describe(var.values(metric).values())["std"]),
        )
    finish_family(results, alpha, min_effect, sequential)
    return results


def paired_interactions(
    group: GroupData,
    pairs: Iterable[Sequence[str]],
    metric: str,
    mode: str,
    alpha: float,
    n_bootstrap: int,
    sequential: Sequential | None = None,
) -> dict[str, Comparison]:
    """Per listed pair: delta_ab - delta_a - delta_b per seed, Holm across pairs (repeated p-values with
    sequential seeds, as for components)."""
    out: dict[str, Comparison | None] = {}
    contrasts = {}  # key -> (seeds, contrast, dropped seeds, (delta_a, delta_b, delta_ab))
    base = group.baseline
    for a, b in pairs:
        key = f"{a}+{b}"
        va, vb, vab = group.get((a,)), group.get((b,)), group.get((a, b))
        if base is None or va is None or vb is None or vab is None:
            lacking = [n for n, v in (("baseline", base), (f"no-{a}", va), (f"no-{b}", vb), (f"no-{a}+{b}", vab))
                       if v is None]
            out[key] = _empty("paired", f"cannot conclude: no {', '.join(lacking)} trials in this group")
            continue
        vals = [v.values(metric) for v in (base, va, vb, vab)]
        common = sort_seeds(set(vals[0]) & set(vals[1]) & set(vals[2]) & set(vals[3]))
        arr = np.array([[v[s] for s in common] for v in vals], dtype=float).reshape(4, len(common))
        d_a, d_b, d_ab = (orient(arr[0], arr[i], mode) for i in (1, 2, 3))
        contrast = snap_ties(d_ab - d_a - d_b, np.abs(arr).max(axis=0) if common else 0.0)
        allseeds = set().union(*vals)
        dropped = sort_seeds(allseeds - set(common))
        out[key] = None
        contrasts[key] = (common, contrast, dropped, [describe(d)["mean"] for d in (d_a, d_b, d_ab)])
    boots = batch_bootstrap([c[1] for c in contrasts.values()], alpha, n_bootstrap)
    for (key, (common, contrast, dropped, (delta_a, delta_b, delta_ab))), boot in zip(contrasts.items(), boots):
        note = pairing_note(len(common), {})
        if dropped:
            note = "; ".join(x for x in (note, (f"uses seeds where all four variants finished: "
                                         f"{', '.join(map(str, common))}")) if x)
        out[key] = Comparison(
            **summarise_diffs(contrast, alpha, 0.0, n_bootstrap, 0, boot_ci=boot),
            method="paired",
            verdict=INCONCLUSIVE,
            seeds=list(common),
            diffs={str(s): float(d) for s, d in zip(common, contrast)},
            delta_a=delta_a, delta_b=delta_b, delta_ab=delta_ab,
            note=note,
        )
    finish_interactions(out, alpha, sequential)
    return out


# ---------------------------------------------------------------- regression


def _trials(group: GroupData, metric: str, mode: str, extra=None) -> tuple[list[frozenset], list, np.ndarray,
                                                                           np.ndarray]:
    """(removed set, seed, oriented metric, covariates) of every trial of the group with a finite metric.

    ``extra(variant) -> {column: value}`` gives a variant's covariates (alternatives, factor levels);
    the covariate matrix has one column per name any variant uses (0 where a variant lacks it).
    """
    rows, seeds, ys, covs = [], [], [], []
    for var in group.variants.values():
        cov = extra(var) if extra else {}
        for s, v in var.values(metric).items():
            rows.append(frozenset(var.removed))
            seeds.append(s)
            ys.append(v)
            covs.append(cov)
    names = sorted({k for c in covs for k in c})
    C = np.array([[c.get(k, 0.0) for k in names] for c in covs], dtype=float).reshape(len(covs), len(names))
    y = np.asarray(ys, dtype=float)
    return rows, seeds, (y if mode == "max" else -y), C


def _matrix(rows, seeds, columns: Sequence[frozenset], covs: np.ndarray) -> np.ndarray:
    """Intercept, one 0/1 column per set of components ('all of them removed'), seed fixed effects,
    then the covariate columns."""
    uniq = sort_seeds(set(seeds))
    index = {s: i for i, s in enumerate(uniq)}
    X = np.zeros((len(rows), 1 + len(columns) + max(len(uniq) - 1, 0)))
    X[:, 0] = 1.0
    for i, (removed, s) in enumerate(zip(rows, seeds)):
        for j, col in enumerate(columns):
            X[i, 1 + j] = col <= removed
        if index[s] > 0:
            X[i, len(columns) + index[s]] = 1.0
    return np.hstack([X, covs])


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
    *,
    scan: bool = True,
) -> tuple[dict[str, Comparison], dict[str, Comparison], FitCheck | None]:
    """Main effects and pair interactions by least squares with seed fixed effects.

    With ``scan`` the main-effects model is checked (``fit_check``): every unlisted pair is
    tested on its own, Holm across the pairs, and a lack-of-fit F test compares the model
    with one mean per variant. Pairs found are added to the model, so a component in one is
    judged by its effect in the baseline's context (its partner present); its average main
    effect stays beside it as ``average_effect``. ``extra(variant) -> {column: value}`` adds
    covariates (alternatives, factor levels) to every fit, the lack-of-fit one included (its
    cells are then the distinct variants). Returns (mains, interactions, fit check; None without ``scan``).
    """
    names = list(components)
    listed = [tuple(p) for p in pairs]
    rows, seeds, y, covs = _trials(group, metric, mode, extra)
    tol = TIE_RTOL * float(np.max(np.abs(y))) if y.size else 0.0
    mains_cols = [frozenset([c]) for c in names]
    base_fit = _ols(_matrix(rows, seeds, mains_cols + [frozenset(p) for p in listed], covs), y, alpha)
    check = fit_check(rows, seeds, y, covs, names, listed, base_fit, alpha, tol) if scan else None
    found = [tuple(k.split(" x ")) for k in check.found] if check else []
    model_pairs = listed + found
    fit = base_fit if not found else _ols(
        _matrix(rows, seeds, mains_cols + [frozenset(p) for p in model_pairs], covs), y, alpha)
    n_seeds_all = max(len(set(seeds)), 1)
    base_std = describe(group.baseline.values(metric).values() if group.baseline else [])["std"]
    mains: dict[str, Comparison] = {}
    for j, c in enumerate(names):
        with_c = [v for r, v in zip(rows, y) if c not in r]
        without_c = [v for r, v in zip(rows, y) if c in r]
        sign = 1.0 if mode == "max" else -1.0
        res = _coef(fit, 1 + j, f"cannot conclude: '{c}' is never removed in this group" if not without_c else None,
                    alpha, min_effect, tol, n_seeds_all, kind=getattr(components[c], "kind", None),
                    n_removed=len(without_c), n_seeds=len({s for r, s in zip(rows, seeds) if c in r}),
                    baseline=short([sign * v for v in with_c]), variant=short([sign * v for v in without_c]),
                    seed_std=base_std if finite(base_std) else fit["resid_std"])
        partners = [b if a == c else a for a, b in found if c in (a, b)]
        if partners and res.estimable:
            avg = _coef(base_fit, 1 + j, None, alpha, min_effect, tol, n_seeds_all)
            res.average_effect = AverageEffect(effect=avg.effect, ci=avg.ci)
            res.note = (f"judged in the baseline's context ({', '.join(partners)} present): interaction with "
                        f"{', '.join(partners)}; averaged over the design's variants its effect is "
                        f"{avg.effect:+.4g} [{avg.ci[0]:.4g}, {avg.ci[1]:.4g}]")
        mains[c] = res
    columns = mains_cols + [frozenset(p) for p in model_pairs]
    earlier = prefix_looks(rows, seeds, y, covs, columns, sequential, [min_effect] * len(names)
                           + [0.0] * len(model_pairs)) if sequential else [[] for _ in columns]
    finish_family(mains, alpha, min_effect, sequential, dict(zip(names, earlier)))
    inter: dict[str, Comparison] = {}
    for k, (a, b) in enumerate(model_pairs):
        col = 1 + len(names) + k
        both = int(fit["X"][:, col].sum()) if fit["n"] else 0
        inter[f"{a}+{b}"] = _coef(fit, col, f"cannot conclude: '{a}' and '{b}' are never removed together"
                                  if not both else None, alpha, 0.0, tol, n_seeds_all, n_removed=both,
                                  listed=(a, b) in listed)
    finish_interactions(inter, alpha, sequential, dict(zip(inter, earlier[len(names):])))
    return mains, inter, check


def prefix_looks(rows, seeds, y: np.ndarray, covs: np.ndarray, columns: Sequence[frozenset], sequential: Sequential,
                 min_effects: Sequence[float]) -> list[list[tuple[int, dict]]]:
    """Each column's earlier looks: the model refitted on the trials of the study's first k seeds (seed order:
    the data a look at k seeds saw), for each look k before the last; per column [(its seeds then, judge())],
    a look where the column is not estimable left out."""
    uniq = sort_seeds(set(seeds))
    out: list[list[tuple[int, dict]]] = [[] for _ in columns]
    for k in (k for k in sequential.design.looks() if k < len(uniq)):
        keep = set(uniq[:k])
        m = np.array([s in keep for s in seeds])
        sub_rows, sub_seeds = [r for r, i in zip(rows, m) if i], [s for s, i in zip(seeds, m) if i]
        fit = _ols(_matrix(sub_rows, sub_seeds, columns, covs[m]), y[m], 0.05)
        if fit["df"] < 1:
            continue
        for j, col in enumerate(columns):
            if fit["estimable"][1 + j]:
                n = len({s for r, s in zip(sub_rows, sub_seeds) if col <= r})
                out[j].append((n, judge(-float(fit["beta"][1 + j]), float(fit["se"][1 + j]), fit["df"], 0.05,
                                        min_effects[j])))
    return out


def fit_check(rows, seeds, y, covs, names, listed, base_fit: dict, alpha: float, tol: float) -> FitCheck:
    """Is the main-effects model enough? Unlisted pairs by forward selection, and lack of fit.

    Each round tests every unlisted pair added on its own to the current model, Holm across
    the pairs of that round, and adds the most significant one; it stops when none is.
    A pair that stops being estimable once another was added is aliased with it in this
    design (the data cannot tell them apart): ``aliases`` names it. ``pairs`` holds the first round's
    tests ("a x b"), ``found`` the pairs added, ``lack_of_fit`` the F test; a pair's effect is its interaction
    contrast (positive: removing both hurts more than the two removals added up).
    """
    out = FitCheck()
    if base_fit["n"] == 0:
        return out
    cols = [frozenset([c]) for c in names] + [frozenset(p) for p in listed]
    candidates = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
                  if (a, b) not in listed and (b, a) not in listed]
    while candidates:
        tested = {}
        for a, b in candidates:
            fit = _ols(_matrix(rows, seeds, cols + [frozenset((a, b))], covs), y, 0.05)
            if fit["estimable"][len(cols) + 1] and fit["df"] >= 1:
                tested[(a, b)] = _coef(fit, len(cols) + 1, None, 0.05, 0.0, tol, 1)
        if out.found:  # pairs no longer estimable are aliased with the pair found last
            out.aliases[out.found[-1]] = [f"{a} x {b}" for a, b in candidates if (a, b) not in tested]
        if not tested:
            break
        keys = list(tested)
        adj = holm([tested[k].p for k in keys])
        if not out.pairs:
            out.pairs = {f"{a} x {b}": PairTest(effect=tested[(a, b)].effect, ci=tested[(a, b)].ci,
                                                p=tested[(a, b)].p, p_holm=float(pa))
                         for (a, b), pa in zip(keys, adj)}
        best = int(np.argmin(adj))
        if not adj[best] < alpha:
            break
        pair = keys[best]
        out.found.append(f"{pair[0]} x {pair[1]}")
        cols.append(frozenset(pair))
        candidates = [k for k in keys if k != pair]
    cell_of = [(r, tuple(c)) for r, c in zip(rows, covs)]  # a variant: its removals and covariates
    cells = sorted(set(cell_of), key=lambda k: (sorted(k[0]), k[1]))
    dummies = np.array([[float(k == cell) for cell in cells[1:]] for k in cell_of]).reshape(len(y), -1)
    cell_fit = _ols(_matrix(rows, seeds, [], dummies), y, 0.05)
    extra = base_fit["df"] - cell_fit["df"]
    if cell_fit["df"] >= 1 and extra >= 1:
        rss0, rss1 = base_fit["rss"], cell_fit["rss"]
        if rss1 <= tol**2 * len(y):
            p = 0.0 if rss0 > tol**2 * len(y) else 1.0
            f_stat = float("inf") if p == 0.0 else 0.0
        else:
            f_stat = ((rss0 - rss1) / extra) / (rss1 / cell_fit["df"])
            p = float(st.f.sf(f_stat, extra, cell_fit["df"]))
        out.lack_of_fit = LackOfFit(F=float(f_stat), df=[int(extra), int(cell_fit["df"])], p=p)
    return out


@one_blas_thread
def _ols(X: np.ndarray, y: np.ndarray, alpha: float) -> dict:
    n = len(y)
    if n == 0:
        return {"n": 0, "df": 0, "beta": np.zeros(X.shape[1]), "estimable": np.zeros(X.shape[1], bool),
                "se": np.full(X.shape[1], np.nan), "tq": np.nan, "resid_std": np.nan, "rss": np.nan, "X": X}
    beta, _, rank, _sv = np.linalg.lstsq(X, y, rcond=None)
    df = n - int(rank)
    pinv = np.linalg.pinv(X)
    proj = pinv @ X  # identity on the estimable directions
    estimable = np.abs(np.diag(proj) - 1.0) < 1e-8
    resid = y - X @ beta
    rss = float(resid @ resid)
    if df >= 1:
        s2 = rss / df
        cov_diag = np.einsum("ij,ij->i", pinv, pinv) * s2  # diag(pinv pinv^T) s2 = diag((X'X)^+) s2
        se = np.sqrt(np.maximum(cov_diag, 0.0))
        tq = t_quantile(1 - alpha / 2, df)
    else:
        s2, se, tq = np.nan, np.full(X.shape[1], np.nan), np.nan
    return {"n": n, "df": df, "beta": beta, "estimable": estimable, "se": se, "tq": tq, "rss": rss, "X": X,
            "resid_std": float(np.sqrt(s2)) if finite(s2) else float("nan")}


def _coef(fit: dict, col: int, reason: str | None, alpha: float, min_effect: float, tol: float,
          seeds_total: int, **fields) -> Comparison:
    """The removal effect of column ``col`` (minus its coefficient) with its tests, mde and seeds needed, as a
    regression row with these ``fields`` (kind, counts, summaries) before its family's decision."""
    if reason is None and fit["n"] == 0:
        reason = "cannot conclude: no completed trials with a finite metric"
    if reason is None and not fit["estimable"][col]:
        reason = "cannot conclude: not estimable in this design (confounded with other columns)"
    if reason is None and fit["df"] < 1:
        reason = "cannot conclude: no residual degrees of freedom (as many parameters as trials)"
    if reason is not None:
        return _empty("regression", reason, n=fit["n"], **fields)
    res = summarise_estimate(-float(fit["beta"][col]), float(fit["se"][col]), fit["df"], alpha, min_effect,
                             seeds_total, tol)
    return Comparison(n=fit["n"], **res, method="regression", verdict=INCONCLUSIVE, **fields)


# ---------------------------------------------------------------- families


def _repeated(results: dict[str, Comparison], sequential: Sequential | None, earlier: dict[str, list] | None):
    """decide_family's ``adjust``: each row's repeated p-values, given its earlier looks."""
    if sequential is None:
        return None
    by_row = {id(r): (earlier or {}).get(name) for name, r in results.items()}
    return lambda r: sequential.row(r, by_row[id(r)])


def finish_family(results: dict[str, Comparison], alpha: float, min_effect: float,
                  sequential: Sequential | None, earlier: dict[str, list] | None = None) -> None:
    """Holm across the family for each test (on the rows' repeated p-values with sequential seeds: ``earlier``,
    a row's earlier looks by name where ``Sequential.row`` cannot read them from the row), then verdicts."""
    decide_family(results, alpha, _repeated(results, sequential, earlier), min_effect)


def finish_interactions(results: dict[str, Comparison], alpha: float, sequential: Sequential | None,
                        earlier: dict[str, list] | None = None) -> None:
    """Holm across the pairs; a pair is an ``interaction`` when its two-sided test is significant (on its
    repeated p-value with sequential seeds: pairs are looked at whenever components are)."""
    decide_family(results, alpha, _repeated(results, sequential, earlier))
    for r in results.values():
        r.verdict = INTERACTION if r.significant else INCONCLUSIVE
        r.deciding = None if not finite(r.p_holm) else Deciding(
            test=INTERACTION, claim="interaction != 0 (two-sided)", p_holm=r.p_holm, p=fnum(r.p))
        r.why = (f"p < {alpha:g} before Holm only (p {r.p:.3g}, Holm-adjusted {r.p_holm:.3g})"
                 if r.verdict == INCONCLUSIVE and finite(r.p) and r.p < alpha else "")
        if r.verdict == INTERACTION:
            r.reading = ("removing both hurts more than the two removals added up: each covers for the other"
                         if r.effect > 0 else
                         "removing both hurts less than the two removals added up: each matters mainly "
                         "while the other is present")


def _empty(method: str, note: str, **fields) -> Comparison:
    """A row that cannot be estimated: NaN numbers, ``inconclusive``; ``fields`` set the rest (kind, counts)."""
    nan = float("nan")
    row = {"n": 0, "effect": nan, "std": nan, "se": nan, "ci": [nan, nan], "ci_bootstrap": [nan, nan], "t": nan,
           "p": nan, "p_essential": nan, "p_harmful": nan, "p_negligible": nan, "mde": nan, "baseline": short([]),
           "variant": short([]), "seed_std": nan}
    return Comparison(**(row | fields), method=method, verdict=INCONCLUSIVE, note=note)


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
    extra=None,
) -> dict[str, SecondaryEffect]:
    """Effect of each component on a secondary metric (oriented by its own mode), t-based."""
    if design == "one_at_a_time":
        res = paired_effects(group, components, metric, mode, alpha, 0.0, 0)
    else:
        res, _, _ = regression_effects(group, components, pairs, metric, mode, alpha, 0.0, None, extra, scan=False)
    return {c: SecondaryEffect(effect=r.effect, ci=r.ci, p=r.p, n=r.n) for c, r in res.items()}
