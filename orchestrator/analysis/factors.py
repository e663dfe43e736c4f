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

import numpy as np
from statsmodels.regression.linear_model import OLS

from ..config import StudyConfig
from ..levels import same
from ..paths import get_path
from ..plan import variant_key
from .flags import flag
from .records import GroupData
from .stats import (
    TIE_RTOL,
    compare_paired,
    decide_family,
    describe,
    finite,
    fnum,
    holm,
    summarise_estimate,
)

NAN = float("nan")


# ---------------------------------------------------------------- one estimate


def estimate(effect: float, se: float, df: float, alpha: float, min_effect: float, seeds, ys) -> dict:
    """The components' tests, t interval, mde and seeds needed of an estimate from a fit to (seeds, ys)."""
    tol = TIE_RTOL * float(np.max(np.abs(ys))) if len(ys) else 0.0
    return summarise_estimate(effect, se, int(df), alpha, min_effect, max(len(set(seeds)), 1), tol)


# ---------------------------------------------------------------- least squares


class Fit:
    """OLS with seed fixed effects over (row features, seed, y); named columns of interest."""

    def __init__(self, columns: list[str], rows: list[dict], seeds: list, y: list[float]):
        uniq = sorted(set(seeds), key=str)
        fe = np.array([[float(s == u) for u in uniq[1:]] for s in seeds]).reshape(len(seeds), len(uniq) - 1)
        feats = np.array([[r.get(c, 0.0) for c in columns] for r in rows], dtype=float).reshape(len(rows), -1)
        self.columns = columns
        self.X = np.hstack([np.ones((len(y), 1)), feats, fe])
        self.y = np.asarray(y, dtype=float)
        self.n = len(y)
        rank = np.linalg.matrix_rank(self.X) if self.n else 0
        self.df = self.n - rank
        self.res = OLS(self.y, self.X).fit() if self.n and self.df >= 1 else None
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


def analyse_levels(group: GroupData, config: StudyConfig, alpha: float, min_effect: float,
                   n_bootstrap: int = 0) -> dict:
    """{'alternatives': {component: {alt: result}}, 'factors': {path: result}, 'flags': [...]}."""
    metric, mode = config.metrics.primary.name, config.metrics.primary.mode
    if config.design.type == "one_at_a_time":
        alts = _paired_alternatives(group, config, metric, mode, alpha, min_effect, n_bootstrap)
        factors = {p: _one_factor(group, config, p, metric, mode, alpha) for p in config.factors}
    else:
        alts, factors = _joint(group, config, metric, mode, alpha, min_effect)
    decide_family({f"{c}={a}": r for c, by_alt in alts.items() for a, r in by_alt.items()}, alpha, None, min_effect)
    _rank(factors, alpha)
    flags = [flag("factor_fit", "warning", group.label, p, f"{p}: {r['fit_note']}")
             for p, r in factors.items() if r.get("fit_note")]
    return {"alternatives": alts, "factors": factors, "factor_flags": flags}


def _paired_alternatives(group, config, metric, mode, alpha, min_effect, n_bootstrap) -> dict:
    """one_at_a_time: the baseline against each alternative, paired on seeds (``compare_paired``)."""
    base = group.baseline
    out: dict[str, dict] = {}
    for c, comp in config.components.items():
        for a in comp.alternatives:
            var = group.get(variant_key((), {c: a}))
            if base is None or var is None:
                r = _empty(f"cannot conclude: no {'baseline' if base is None else c + '=' + a} trials in this group")
            else:
                r = compare_paired(base.values(metric), var.values(metric), mode, alpha, min_effect, n_bootstrap,
                                   bootstrap=n_bootstrap > 0)
                r["alternative"] = r.pop("other")
                r["method"] = "paired"
            r.update(kind=getattr(comp, "kind", None), overrides=comp.alternatives[a])
            out.setdefault(c, {})[a] = r
    return out


def _x(config: StudyConfig, path: str, value) -> float:
    """A numeric level on the factor's scale: units from the baseline, or doublings with log: true."""
    base = float(get_path(config.baseline, path))
    return math.log2(float(value) / base) if config.factors[path].log else float(value) - base


def _one_factor(group, config, path, metric, mode, alpha) -> dict:
    """one_at_a_time: the baseline and this factor's variants, seed fixed effects."""
    base_value = get_path(config.baseline, path)
    pool = [v for v in group.variants.values()
            if not v.removed and not v.alternatives and set(v.levels) <= {path}]
    rows, seeds, ys = [], [], []
    for v in pool:
        value = v.levels.get(path, base_value)
        for s, y in v.values(metric).items():
            rows.append({"__value": value})
            seeds.append(s)
            ys.append(y if mode == "max" else -y)
    return _factor_result(config, path, rows, seeds, ys, [], alpha, 1.0 if mode == "max" else -1.0)


def _joint(group, config, metric, mode, alpha, min_effect) -> tuple[dict, dict]:
    """random/full_factorial: one fit over every trial of the group."""
    rows, seeds, ys, values = [], [], [], []
    for v in group.variants.values():
        row = design_row(config, v)
        for s, y in v.values(metric).items():
            rows.append(row)
            seeds.append(s)
            ys.append(y if mode == "max" else -y)
            values.append((v, y))
    columns = sorted({k for r in rows for k in r})
    factors = {}
    for path in config.factors:
        own = (f"f:{path}", f"f:{path}=")
        frows = [{**r, "__value": v.levels.get(path, get_path(config.baseline, path))}
                 for r, (v, _) in zip(rows, values)]
        others = [c for c in columns if not (c == own[0] or c.startswith(own[1]))]
        factors[path] = _factor_result(config, path, frows, seeds, ys, others, alpha, 1.0 if mode == "max" else -1.0)
    alts: dict[str, dict] = {}
    fit = Fit(columns, rows, seeds, ys) if any(c.alternatives for c in config.components.values()) else None
    for c, comp in config.components.items():
        for a in comp.alternatives:
            col = f"alt:{c}={a}"
            n = sum(1 for r in rows if r.get(col))
            est, se = fit.coef(col) if col in columns else (NAN, NAN)
            r = estimate(-est, se, fit.df, alpha, min_effect, seeds, ys)
            at_base = [y for v, y in values if c not in v.removed and c not in v.alternatives]
            r.update(n=n, method="regression", kind=getattr(comp, "kind", None), overrides=comp.alternatives[a],
                     baseline=_short(at_base), seeds=[], diffs={},
                     alternative=_short([y for r_, (_, y) in zip(rows, values) if r_.get(col)]),
                     note="" if finite(se)
                     else f"cannot conclude: '{c}={a}' is not estimable in this group ({n} trials)")
            alts.setdefault(c, {})[a] = r
    return alts, factors


def design_row(config: StudyConfig, v) -> dict:
    """Regression columns of a variant: removals, alternatives, factor levels (numeric scale or level dummy)."""
    row = {f"removed:{c}": 1.0 for c in v.removed}
    row |= {f"alt:{c}={a}": 1.0 for c, a in v.alternatives.items()}
    for p, space in config.factors.items():
        value = v.levels.get(p, get_path(config.baseline, p))
        if space.value_range is not None:
            row[f"f:{p}"] = _x(config, p, value)
        elif not same(value, get_path(config.baseline, p)):
            row[f"f:{p}={json.dumps(value)}"] = 1.0
    return row


def covariates(config: StudyConfig):
    """For the components' regression: a variant's alternative and factor columns (its removals are there)."""
    return lambda v: {k: x for k, x in design_row(config, v).items() if not k.startswith("removed:")}


def _factor_result(config, path, rows, seeds, ys, others, alpha, sign) -> dict:
    """Effect (numeric: slope; categorical: per level vs the baseline's value), joint p, fit check.

    ``points`` are (value, metric) per trial for the plot: partial residuals (the metric with the
    seeds' and the other columns' fitted parts taken out, around its mean) when the fit exists.
    """
    space = config.factors[path]
    base_value = get_path(config.baseline, path)
    res: dict = {"n": len(ys), "baseline_value": base_value, "fit_note": "", "note": ""}
    if space.value_range is not None:
        res.update(kind="numeric", unit="per doubling" if space.log else "per unit")
        for r in rows:
            r["__x"] = _x(config, path, r["__value"])
        fit = Fit(["__x"] + others, rows, seeds, ys)
        est, se = fit.coef("__x")
        res.update(estimate(est, se, fit.df, alpha, 0.0, seeds, ys))
        xs = [r["__x"] for r in rows]
        if len({round(x, 12) for x in xs}) >= 3:
            centre = float(np.mean(xs))
            for r in rows:
                r["__x2"] = (r["__x"] - centre) ** 2
            curved = Fit(["__x", "__x2"] + others, rows, seeds, ys)
            q, qse = curved.coef("__x2")
            qp = estimate(q, qse, curved.df, alpha, 0.0, seeds, ys)["p"]
            res["curvature_p"] = qp
            if finite(qp) and qp < alpha:
                res["fit_note"] = (f"the straight-line fit is poor (squared term p = {qp:.3g}): the metric bends "
                                   f"over the range, read the plot rather than the slope")
        lo, hi = space.value_range
        span = (math.log2(hi / lo) if space.log else hi - lo)
        res["importance"] = abs(est) * span if finite(est) else NAN
        own = ["__x"]
    else:
        res.update(kind="categorical", unit="vs the baseline's value")
        names = {}
        for r in rows:
            if not same(r["__value"], base_value):
                col = f"level:{json.dumps(r['__value'])}"
                names[col] = r["__value"]
                r[col] = 1.0
        cols = list(names)
        fit = Fit(cols + others, rows, seeds, ys)
        levels = {}
        for col, value in names.items():
            est, se = fit.coef(col)
            levels[str(value)] = estimate(est, se, fit.df, alpha, 0.0, seeds, ys) | {
                "n": sum(1 for r in rows if r.get(col))}
        adj = holm([lv["p"] if finite(lv["p"]) else np.nan for lv in levels.values()])
        for lv, pa in zip(levels.values(), adj):
            lv["p_holm"] = float(pa)
        effects = [lv["effect"] for lv in levels.values() if finite(lv["effect"])]
        best = max(levels.values(), key=lambda lv: abs(lv["effect"]) if finite(lv["effect"]) else -1, default=None)
        res.update(estimate(NAN, NAN, 0, alpha, 0.0, [], []))
        if best is not None:
            res.update(effect=best["effect"], ci=best["ci"], se=best["se"], df=best["df"],
                       effect_level=next(k for k, lv in levels.items() if lv is best))
        res["p"] = fit.joint_p(cols)
        res["levels"] = levels
        res["importance"] = (max(effects + [0.0]) - min(effects + [0.0])) if effects else NAN
        own = cols
    part = fit.partial(own)
    res["adjusted"] = part is not None
    ys_plot = np.asarray(ys) if part is None else float(np.mean(ys)) + part - float(np.mean(part))
    res["points"] = [[r["__value"], float(sign * y)] for r, y in zip(rows, ys_plot)]
    if not finite(res.get("p")):
        res["note"] = "cannot conclude: too few trials at other levels to estimate this factor"
    return res


def _rank(factors: dict[str, dict], alpha: float) -> None:
    """Holm across factors; rank by importance (the metric's spread over the factor's levels or range)."""
    names = list(factors)
    adj = holm([factors[p]["p"] if finite(factors[p].get("p")) else np.nan for p in names])
    for p, pa in zip(names, adj):
        factors[p]["p_holm"] = float(pa)
        factors[p]["significant"] = bool(finite(pa) and pa < alpha)
    order = sorted(names, key=lambda p: -factors[p]["importance"] if finite(factors[p]["importance"]) else math.inf)
    for i, p in enumerate(order, 1):
        factors[p]["rank"] = i


def _empty(note: str) -> dict:
    return estimate(NAN, NAN, 0, 0.05, 0.0, [], []) | {"n": 0, "method": "paired", "note": note, "seeds": [],
                                                  "diffs": {}, "baseline": _short([]), "alternative": _short([])}


def _short(values) -> dict:
    d = describe(values)
    return {"n": d["n"], "mean": d["mean"], "std": d["std"]}


# ---------------------------------------------------------------- verdicts.json


def factor_payload(r: dict) -> dict:
    out = {"kind": r["kind"], "unit": r["unit"], "effect": fnum(r.get("effect")), "ci": [fnum(x) for x in r["ci"]],
           "p": fnum(r.get("p")), "p_holm": fnum(r.get("p_holm")), "significant": r.get("significant", False),
           "importance": fnum(r.get("importance")), "rank": r.get("rank"), "n": r["n"],
           "baseline_value": r["baseline_value"], "fit_note": r.get("fit_note", ""), "note": r.get("note", "")}
    if r["kind"] == "categorical":
        out["effect_level"] = r.get("effect_level")
        out["levels"] = {k: {"effect": fnum(v["effect"]), "ci": [fnum(x) for x in v["ci"]], "p": fnum(v["p"]),
                             "p_holm": fnum(v.get("p_holm")), "n": v["n"]} for k, v in r["levels"].items()}
    return out


def add_to_payload(group_payload: dict, g: dict, component_payload) -> None:
    """verdicts.json: components.<name>.alternatives.<alt> (``component_payload``'s fields, and the
    alternative's overrides) and factors.<path> of one group."""
    for c, by_alt in g.get("alternatives", {}).items():
        if c in group_payload["components"]:
            group_payload["components"][c]["alternatives"] = {
                a: component_payload(r) | {"overrides": r.get("overrides", {})} for a, r in by_alt.items()}
    if g.get("factors"):
        group_payload["factors"] = {p: factor_payload(r) for p, r in g["factors"].items()}
