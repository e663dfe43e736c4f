"""Alternatives and factors: the baseline's choice against each alternative, and each factor's effect.

Orientation: the metric is oriented so that higher is better (``orient``). An alternative's
effect is the baseline's choice minus the alternative (positive: the baseline's choice is
better), judged with the components' statistics (stats.py: ``compare_paired``,
``summarise_estimate``, ``decide_family``) and carrying the same fields: ``essential`` (the
baseline's choice wins by more than min_effect, a shifted one-sided t-test), ``harmful``
(the alternative wins by more than min_effect), ``negligible`` (TOST: equivalent within
±min_effect), else ``inconclusive``; Holm across the study's alternatives. A factor's
effect is the oriented metric's change per unit of a numeric factor (per doubling with ``log: true``),
or per categorical level against the baseline's value; its p tests all its levels at once (F-test), Holm across factors.

one_at_a_time: each alternative is paired with the baseline on seeds; each factor is fitted
on the baseline and its own variants with seed fixed effects. random/full_factorial: one
least-squares fit over every trial of the group with seed fixed effects, a removal and an
alternative column per component, a column per numeric factor, a column per categorical level.
A numeric factor whose trend bends (a squared term significant at alpha) gets a warning.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np

from .. import levels as lv
from .. import space_sampling
from ..config import StudyConfig
from ..ledger.verdicts_json import Comparison, Factor, FactorInteraction, FactorLevel, SecondaryEffect
from ..paths import get_path
from ..plan import variant_key
from .blas import one_blas_thread
from .flags import flag, secondary_flags
from .intervals import MIN_BOOTSTRAP_N, bootstrap_ci
from .numbers import TIE_RTOL, finite, t_quantile
from .records import GroupData
from .stats import INCONCLUSIVE, compare_paired, decide_family, holm, judge, short, summarise_estimate

NAN = float("nan")


# ---------------------------------------------------------------- one estimate


def estimate(effect: float, se: float, df: float, alpha: float, min_effect: float, seeds, ys) -> dict:
    """The components' tests, t interval, mde and seeds needed of an estimate from a fit to (seeds, ys)."""
    tol = TIE_RTOL * float(np.max(np.abs(ys))) if len(ys) else 0.0
    return summarise_estimate(effect, se, int(df), alpha, min_effect, max(len(set(seeds)), 1), tol)


# ---------------------------------------------------------------- least squares


class Fit:
    """OLS with seed fixed effects over (row features, seed, y); named columns of interest."""

    def __init__(self, columns: list[str], rows: list[dict], seeds: list, y: list[float], ols: bool = True):
        uniq = sorted(set(seeds), key=str)
        fe = np.array([[float(s == u) for u in uniq[1:]] for s in seeds]).reshape(len(seeds), len(uniq) - 1)
        feats = np.array([[r.get(c, 0.0) for c in columns] for r in rows], dtype=float).reshape(len(rows), -1)
        self.columns = columns
        self.X = np.hstack([np.ones((len(y), 1)), feats, fe])
        self.y = np.asarray(y, dtype=float)
        self.n = len(y)
        rank = np.linalg.matrix_rank(self.X) if self.n else 0
        self.df = self.n - rank
        # imported here: statsmodels (with pandas) is a third of a second of every command's start, and only
        # studies with factors or alternatives fit a model
        from statsmodels.regression.linear_model import OLS
        from statsmodels.tools.sm_exceptions import SingularMatrixWarning

        with warnings.catch_warnings():  # a rank-deficient design is expected: ``estimable`` says what is
            warnings.simplefilter("ignore", SingularMatrixWarning)
            self.res = OLS(self.y, self.X).fit() if ols and self.n and self.df >= 1 else None
        proj = np.linalg.pinv(self.X) @ self.X if self.n else np.zeros((1, 1))
        self.estimable = {c: bool(self.n and abs(proj[1 + i, 1 + i] - 1) < 1e-8) for i, c in enumerate(columns)}

    def coef(self, column: str) -> tuple[float, float]:
        """(estimate, standard error) of a column; NaN when it cannot be estimated."""
        if self.res is None or not self.estimable[column]:
            return NAN, NAN
        i = 1 + self.columns.index(column)
        return float(self.res.params[i]), float(self.res.bse[i])

    def partial(self, columns: list[str]) -> np.ndarray | None:
        """Partial residuals: residuals plus these columns' fitted part (None without a fit)."""
        if self.res is None:
            return None
        idx = [1 + self.columns.index(c) for c in columns if self.estimable.get(c)]
        return self.res.resid + self.X[:, idx] @ self.res.params[idx]

    def joint_p(self, columns: list[str]) -> float:
        """F-test that all these columns are zero."""
        cols = [c for c in columns if self.estimable.get(c)]
        if self.res is None or not cols:
            return NAN
        R = np.zeros((len(cols), self.X.shape[1]))
        for k, c in enumerate(cols):
            R[k, 1 + self.columns.index(c)] = 1.0
        return float(np.squeeze(self.res.f_test(R).pvalue))


# ---------------------------------------------------------------- the analysis


@one_blas_thread
def analyse_levels(group: GroupData, config: StudyConfig, alpha: float, min_effect: float,
                   n_bootstrap: int = 0) -> dict:
    """{'alternatives': {component: {alt: result}}, 'factors': {name: result}, 'factor_interactions': {...},
    'factor_flags': [...]}."""
    metric, mode = config.metrics.primary.name, config.metrics.primary.mode
    if config.design.type == "one_at_a_time":
        alts = _paired_alternatives(group, config, metric, mode, alpha, min_effect, n_bootstrap)
        interactions: dict = {}
    else:
        alts = _joint_alternatives(group, config, metric, mode, alpha, min_effect)
        interactions = factor_interactions(group, config, metric, mode, alpha)
    factors = factor_effects(group, config, metric, mode, alpha, n_bootstrap)
    decide_family({f"{c}={a}": r for c, by_alt in alts.items() for a, r in by_alt.items()}, alpha, None, min_effect)
    _rank(factors, alpha)
    equivalence(factors, config, min_effect)
    decide_negligible(factors, alpha)
    flags = [flag("factor_fit", "warning", group.label, p, f"{p}: {r.fit_note}")
             for p, r in factors.items() if r.fit_note]
    for m in config.metrics.secondary:
        for name, r in factor_effects(group, config, m.name, m.mode, alpha, 0).items():
            level = factors[name].effect_level
            own = r.levels.get(level) if level is not None else r
            factors[name].secondary[m.name] = SecondaryEffect(
                effect=NAN, ci=[NAN, NAN], p=NAN, n=r.n, level=level) if own is None else SecondaryEffect(
                effect=own.effect, ci=own.ci, p=own.p, n=r.n, level=level)
    flags += secondary_flags(group.label, factors, metric,
                             lambda r, s: f"level {s.level}" if s.level is not None else r.unit)
    flags += [flag("interaction", "warning", group.label, pair,
                   f"{pair}: the factors interact on {metric} (Holm p {r.p_holm:.2g}): each one's main effect is "
                   "averaged over the other's levels; read them together (the pair's plots, or a grid over both)")
              for pair, r in interactions.items() if r.significant]
    return {"alternatives": alts, "factors": factors, "factor_interactions": interactions, "factor_flags": flags}


def level_tests(group: GroupData, config: StudyConfig) -> dict:
    """The nominal p-values of a look at this group (a prefix of seeds: sequential seeds' earlier looks):
    {'alternatives': {"c=a": judge()} (regression designs; a paired alternative's looks come from its own
    seeds), 'factors': {name: {'p', 'p_negligible'}}}."""
    a, primary = config.analysis, config.metrics.primary
    alts = {} if config.design.type == "one_at_a_time" else {
        f"{c}={alt}": {"p": r.p, "p_essential": r.p_essential, "p_harmful": r.p_harmful,
                       "p_negligible": r.p_negligible}
        for c, by_alt in _joint_alternatives(group, config, primary.name, primary.mode, a.alpha,
                                             a.min_effect).items() for alt, r in by_alt.items()}
    found = factor_effects(group, config, primary.name, primary.mode, a.alpha, 0)
    equivalence(found, config, a.min_effect)
    return {"alternatives": alts, "factors": {n: {"p": r.p, "p_negligible": r.p_negligible} for n, r in found.items()}}


@one_blas_thread
def factor_effects(group: GroupData, config: StudyConfig, metric: str, mode: str, alpha: float,
                   n_bootstrap: int) -> dict[str, Factor]:
    """Every factor's effect on one metric (oriented by its mode): one_at_a_time alone, else one joint fit."""
    sign = 1.0 if mode == "max" else -1.0
    if config.design.type == "one_at_a_time":
        return {name: _one_factor(group, config, f, metric, mode, alpha, n_bootstrap)
                for name, f in lv.factors(config).items()}
    rows, seeds, ys, values = _joint_rows(group, config, metric, mode)
    columns = sorted({k for r in rows for k in r})
    out = {}
    for name, f in lv.factors(config).items():
        own = (f"f:{name}", f"f:{name}=")
        frows = [{**r, "__value": f.level(_value(config, v, f.path))} for r, (v, _) in zip(rows, values)]
        others = [c for c in columns if not (c == own[0] or c.startswith(own[1]))]
        out[name] = _factor_result(f, frows, seeds, ys, others, alpha, sign, n_bootstrap)
    return out


@one_blas_thread
def factor_interactions(group: GroupData, config: StudyConfig, metric: str, mode: str, alpha: float
                        ) -> dict[str, FactorInteraction]:
    """random/full_factorial: each pair of factors' interaction columns (products of their own columns)
    added to the main-effects fit, F-tested together; Holm across the pairs. A range inside a branch
    is an interaction with its branch already, so a factor is not paired with its own nested ranges."""
    rows, seeds, ys, _ = _joint_rows(group, config, metric, mode)
    columns = sorted({k for r in rows for k in r})
    known = lv.factors(config)
    own = {name: [c for c in columns if c == f"f:{name}" or c.startswith(f"f:{name}=")] for name in known}
    out: dict[str, FactorInteraction] = {}
    names = list(known)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if known[a].path == known[b].path or not (own[a] and own[b]):
                continue
            cols = [f"{ca}*{cb}" for ca in own[a] for cb in own[b]]
            extended = [{**r, **{f"{ca}*{cb}": r.get(ca, 0.0) * r.get(cb, 0.0) for ca in own[a] for cb in own[b]}}
                        for r in rows]
            fit = Fit(columns + cols, extended, seeds, ys)
            out[f"{a} x {b}"] = FactorInteraction(p=fit.joint_p(cols), columns=len(cols))
    adj = holm([r.p if finite(r.p) else np.nan for r in out.values()])
    for r, pa in zip(out.values(), adj):
        r.p_holm = float(pa)
        r.significant = bool(finite(pa) and pa < alpha)
    return out


def _paired_alternatives(group, config, metric, mode, alpha, min_effect, n_bootstrap
                         ) -> dict[str, dict[str, Comparison]]:
    """one_at_a_time: the baseline against each alternative, paired on seeds (``compare_paired``)."""
    base = group.baseline
    out: dict[str, dict[str, Comparison]] = {}
    for c, comp in config.components.items():
        for a in comp.alternatives:
            var = group.get(variant_key((), {c: a}))
            if base is None or var is None:
                r = _empty(f"cannot conclude: no {'baseline' if base is None else c + '=' + a} trials in this group")
            else:
                r = compare_paired(base.values(metric), var.values(metric), mode, alpha, min_effect,
                                   n_bootstrap, bootstrap=n_bootstrap > 0)
            r.kind, r.overrides = getattr(comp, "kind", None), comp.alternatives[a]
            out.setdefault(c, {})[a] = r
    return out


def _value(config: StudyConfig, v, path: str):
    """A variant's value at a factor's path (the baseline's where it does not set it)."""
    return v.levels.get(path, get_path(config.baseline, path))


def _one_factor(group, config, f: lv.Factor, metric, mode, alpha, n_bootstrap: int = 0) -> dict:
    """one_at_a_time: the baseline and this factor's variants (of its branch), seed fixed effects."""
    pool = [v for v in group.variants.values()
            if not v.removed and not v.alternatives and set(v.levels) <= {f.path}]
    nested = f"f:{f.path}[" if f.found and f.branch is None else None  # a branch at its ranges' origins
    rows, seeds, ys = [], [], []
    for v in pool:
        level = f.level(_value(config, v, f.path))
        if level is None:
            continue
        inner = {k: x for k, x in design_row(config, v).items() if nested and k.startswith(nested)}
        for s, y in v.values(metric).items():
            rows.append({"__value": level, **inner})
            seeds.append(s)
            ys.append(y if mode == "max" else -y)
    others = sorted({k for r in rows for k in r if nested and k.startswith(nested)})
    return _factor_result(f, rows, seeds, ys, others, alpha, 1.0 if mode == "max" else -1.0, n_bootstrap)


def _joint_rows(group, config, metric, mode) -> tuple[list, list, list, list]:
    """random/full_factorial: every trial of the group as (design row, seed, oriented y, (variant, y))."""
    rows, seeds, ys, values = [], [], [], []
    for v in group.variants.values():
        row = design_row(config, v)
        for s, y in v.values(metric).items():
            rows.append(row)
            seeds.append(s)
            ys.append(y if mode == "max" else -y)
            values.append((v, y))
    return rows, seeds, ys, values


def _joint_alternatives(group, config, metric, mode, alpha, min_effect) -> dict[str, dict[str, Comparison]]:
    """random/full_factorial: each alternative's column in one fit over every trial of the group."""
    rows, seeds, ys, values = _joint_rows(group, config, metric, mode)
    columns = sorted({k for r in rows for k in r})
    alts: dict[str, dict[str, Comparison]] = {}
    fit = Fit(columns, rows, seeds, ys) if any(c.alternatives for c in config.components.values()) else None
    for c, comp in config.components.items():
        for a in comp.alternatives:
            col = f"alt:{c}={a}"
            n = sum(1 for r in rows if r.get(col))
            est, se = fit.coef(col) if col in columns else (NAN, NAN)
            at_base = [y for v, y in values if c not in v.removed and c not in v.alternatives]
            alts.setdefault(c, {})[a] = Comparison(
                **estimate(-est, se, fit.df, alpha, min_effect, seeds, ys), n=n, method="regression",
                verdict=INCONCLUSIVE, kind=getattr(comp, "kind", None), overrides=comp.alternatives[a],
                baseline=short(at_base), variant=short([y for r_, (_, y) in zip(rows, values) if r_.get(col)]),
                note="" if finite(se) else f"cannot conclude: '{c}={a}' is not estimable in this group ({n} trials)")
    return alts


def design_row(config: StudyConfig, v) -> dict:
    """Regression columns of a variant: removals, alternatives, factor levels (numeric scale or level dummy).

    A range inside a branch is a column that is 0 outside its branch: its slope is the branch's own.
    """
    row = {f"removed:{c}": 1.0 for c in v.removed}
    row |= {f"alt:{c}={a}": 1.0 for c, a in v.alternatives.items()}
    for name, f in lv.factors(config).items():
        level = f.level(_value(config, v, f.path))
        if f.numeric:
            row[f"f:{name}"] = f.x(level) if level is not None else 0.0
        elif level is not None and not lv.same(level, f.base_level):
            row[f"f:{name}={json.dumps(level, default=str)}"] = 1.0
    return row


def covariates(config: StudyConfig):
    """For the components' regression: a variant's alternative and factor columns (its removals are there)."""
    return lambda v: {k: x for k, x in design_row(config, v).items() if not k.startswith("removed:")}


def _factor_result(f: lv.Factor, rows, seeds, ys, others, alpha, sign, n_bootstrap: int = 0) -> Factor:
    """Effect (numeric: slope; categorical: per level vs the baseline's value), joint p, fit check.

    A row's ``__value`` is its level of this factor (None: a trial of another branch, where a
    range inside a branch is 0 and takes no part in its estimate or plot).
    ``points`` are (value, metric) per trial for the plot: partial residuals (the metric with the
    seeds' and the other columns' fitted parts taken out, around its mean) when the fit exists.
    """
    inside = [r["__value"] is not None for r in rows]
    base_value = f.origin if f.branch else f.base_level
    where = {"n": sum(inside), "baseline_value": base_value, "path": f.path, "branch": f.branch}
    if f.numeric:
        for r in rows:
            r["__x"] = f.x(r["__value"]) if r["__value"] is not None else 0.0
        fit = Fit(["__x"] + others, rows, seeds, ys)
        est, se = fit.coef("__x")
        res = Factor(**estimate(est, se, fit.df, alpha, 0.0, seeds, ys), **where, kind="numeric", unit=f.unit)
        _use_bootstrap(res, ["__x"] + others, rows, seeds, ys, "__x", alpha, n_bootstrap)
        xs = [r["__x"] for r, ok in zip(rows, inside) if ok]
        if len({round(x, 12) for x in xs}) >= 3:
            centre = float(np.mean(xs))
            for r, ok in zip(rows, inside):
                r["__x2"] = (r["__x"] - centre) ** 2 if ok else 0.0
            curved = Fit(["__x", "__x2"] + others, rows, seeds, ys)
            q, qse = curved.coef("__x2")
            qp = estimate(q, qse, curved.df, alpha, 0.0, seeds, ys)["p"]
            res.curvature_p = qp
            if finite(qp) and qp < alpha:
                res.fit_note = (f"the straight-line fit is poor (squared term p = {qp:.3g}): the metric bends "
                                   f"over the range, read the plot rather than the slope")
        lo, hi, log = space_sampling.bounds(f.space)
        span = (math.log2(hi / lo) if log else hi - lo)
        res.importance = abs(est) * span if finite(est) else NAN
        own = ["__x"]
    else:
        names = {}
        for r in rows:
            if r["__value"] is not None and not lv.same(r["__value"], base_value):
                col = f"level:{json.dumps(r['__value'])}"
                names[col] = r["__value"]
                r[col] = 1.0
        cols = list(names)
        fit = Fit(cols + others, rows, seeds, ys)
        levels = {}
        for col, value in names.items():
            est, se = fit.coef(col)
            levels[str(value)] = FactorLevel(**estimate(est, se, fit.df, alpha, 0.0, seeds, ys),
                                             n=sum(1 for r in rows if r.get(col)))
            _use_bootstrap(levels[str(value)], cols + others, rows, seeds, ys, col, alpha, n_bootstrap)
        adj = holm([lr.p if finite(lr.p) else np.nan for lr in levels.values()])
        for lr, pa in zip(levels.values(), adj):
            lr.p_holm = float(pa)
        effects = [lr.effect for lr in levels.values() if finite(lr.effect)]
        best = max(levels.values(), key=lambda lr: abs(lr.effect) if finite(lr.effect) else -1, default=None)
        res = Factor(**estimate(NAN, NAN, 0, alpha, 0.0, [], []), **where, kind="categorical",
                     unit="vs the baseline's value")
        if best is not None:
            res.effect, res.ci, res.se, res.df = best.effect, best.ci, best.se, best.df
            res.ci_method, res.ci_bootstrap = best.ci_method, best.ci_bootstrap
            res.effect_level = next(k for k, lr in levels.items() if lr is best)
        res.p = fit.joint_p(cols)
        res.levels = levels
        res.importance = (max(effects + [0.0]) - min(effects + [0.0])) if effects else NAN
        own = cols
    part = fit.partial(own)
    res.adjusted = part is not None
    ys_plot = np.asarray(ys) if part is None else float(np.mean(ys)) + part - float(np.mean(part))
    res.points = [(r["__value"], float(sign * y)) for r, y, ok in zip(rows, ys_plot, inside) if ok]
    if not finite(res.p):
        res.note = "cannot conclude: too few trials at other levels to estimate this factor"
    return res


def _use_bootstrap(res: Factor | FactorLevel, columns, rows, seeds, ys, column, alpha, n_bootstrap) -> None:
    """With >= MIN_BOOTSTRAP_N seeds: the BCa interval (the components' ``bootstrap_ci``) of the column's
    per-seed coefficients (``ci_bootstrap``) becomes the interval shown (``ci_method`` says which; ``ci``
    stays t). Every variant runs every seed, so each seed's fit has the same design and their mean is the
    pooled estimate."""
    uniq = sorted(set(seeds), key=str)
    if n_bootstrap <= 0 or len(uniq) < MIN_BOOTSTRAP_N or not finite(res.effect):
        return
    coefs = []
    for s in uniq:
        idx = [i for i, x in enumerate(seeds) if x == s]
        fit = Fit(columns, [rows[i] for i in idx], [s] * len(idx), [ys[i] for i in idx], ols=False)
        if not fit.estimable.get(column):
            return
        coefs.append(float(np.linalg.lstsq(fit.X, fit.y, rcond=None)[0][1 + columns.index(column)]))
    lo, hi = bootstrap_ci(coefs, alpha, n_bootstrap)
    if finite(lo) and finite(hi):
        res.ci_bootstrap, res.ci_method = [float(lo), float(hi)], "BCa"


def _rank(factors: dict[str, Factor], alpha: float) -> None:
    """Holm across factors; rank by importance (the metric's spread over the factor's levels or range).

    Each factor also gets the interval its Holm decision was made at (``ci_decision``, t-based at
    1 - alpha/k, ``decision_k`` the factors left at its step of the step-down; past the first
    factor Holm keeps, the k of that step): it excludes 0 exactly when the factor is significant
    (a categorical factor's levels: at alpha/k shared by its levels, Bonferroni within it).
    """
    names = list(factors)
    adj = holm([factors[p].p if finite(factors[p].p) else np.nan for p in names])
    for p, pa in zip(names, adj):
        factors[p].p_holm = float(pa)
        factors[p].significant = bool(finite(pa) and pa < alpha)
    tested = sorted((p for p in names if finite(factors[p].p)), key=lambda p: factors[p].p)
    stop = next((i for i, p in enumerate(tested) if not factors[p].significant), len(tested))
    for i, p in enumerate(tested):
        r = factors[p]
        k = len(tested) - min(i, stop)
        r.decision_k, r.decision_m = k, len(tested)
        targets = [r] if r.kind == "numeric" else list(r.levels.values())
        for t in targets:
            half = t_quantile(1 - alpha / k / len(targets) / 2, t.df) * t.se if finite(t.se) else NAN
            t.ci_decision = [t.effect - half, t.effect + half]
    order = sorted(names, key=lambda p: -factors[p].importance if finite(factors[p].importance) else math.inf)
    for i, p in enumerate(order, 1):
        factors[p].rank = i


def equivalence(factors: dict[str, Factor], config: StudyConfig, min_effect: float) -> None:
    """Each factor's equivalence test (TOST, ``p_negligible``): the metric moves less than min_effect over the
    factor's whole range (a numeric factor's slope within +-min_effect / its span) or at every level
    against the baseline's value (a categorical factor: the largest of its levels' TOST p-values, an
    intersection-union test). NaN when min_effect is 0."""
    if min_effect <= 0:
        return
    found = lv.factors(config)
    for name, r in factors.items():
        if r.kind == "numeric":
            lo, hi, log = space_sampling.bounds(found[name].space)
            span = math.log2(hi / lo) if log else hi - lo
            if span > 0:
                r.p_negligible = judge(r.effect, r.se, r.df or 0, 0.05, min_effect / span)["p_negligible"]
        elif r.levels:
            ps = [judge(lr.effect, lr.se, lr.df or 0, 0.05, min_effect)["p_negligible"] for lr in r.levels.values()]
            r.p_negligible = max(ps) if all(finite(p) for p in ps) else NAN


def decide_negligible(factors: dict[str, Factor], alpha: float, adjust=None) -> None:
    """Holm across the factors' equivalence tests (``adjust(p, name)`` first: sequential seeds); sets
    ``p_negligible_holm`` and ``negligible``."""
    names = list(factors)
    ps = [factors[p].p_negligible for p in names]
    adj = holm([(adjust(q, p) if adjust else q) if finite(q) else np.nan for p, q in zip(names, ps)])
    for p, pa in zip(names, adj):
        factors[p].p_negligible_holm = float(pa)
        factors[p].negligible = bool(finite(pa) and pa < alpha)


def _empty(note: str) -> Comparison:
    """An alternative that cannot be compared (no trials): NaN numbers, ``inconclusive``."""
    return Comparison(**estimate(NAN, NAN, 0, 0.05, 0.0, [], []), n=0, method="paired", verdict=INCONCLUSIVE,
                      note=note, baseline=short([]), variant=short([]))
