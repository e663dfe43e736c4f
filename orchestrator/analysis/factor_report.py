"""Alternatives and factors in the report: tables (markdown, console, W&B) and one plot per factor.

The plot follows ABLATOR's: the primary metric by the factor's value, a box and the trials'
dots per level for a categorical factor, the trials, per-value means and the fitted line for a
numeric one. The interval drawn is the one the factor's Holm decision was made at (each level's
effect for a categorical factor, a band from the slope's interval for a numeric one), and the
caption says so: it excludes 0 exactly when the factor is significant.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import levels as lv
from ..ledger.verdicts_json import Factor
from . import plots
from .model import Analysis, GroupAnalysis
from .numbers import finite
from .tables import ci_text, deciding_text, delta_text, mean_std, p_text, signed, verdict_text

ALTERNATIVE_HEADER = ["component", "alternative", "baseline's choice", "alternative (mean ± std)",
                      "delta [simultaneous CI]", "deciding test: p (Holm)", "verdict"]
FACTOR_HEADER = ["rank", "factor", "levels", "effect [CI]", "unit", "importance", "p (Holm)", "note"]


def alternative_rows(group: GroupAnalysis) -> list[list[str]]:
    rows = []
    for c, by_alt in group.alternatives.items():
        for a, r in by_alt.items():
            rows.append([c, a, mean_std(r.baseline), mean_std(r.variant),
                         delta_text(r), deciding_text(r), verdict_text(r)])
    return rows


def factor_rows(group: GroupAnalysis, config) -> list[list[str]]:
    rows = []
    factors = group.factors
    known = lv.factors(config)
    for path in sorted(factors, key=lambda p: factors[p].rank):
        r = factors[path]
        span = known[path].span() if path in known else ""
        effect = f"{signed(r.effect)} {ci_text(r.shown_ci)}".strip()
        unit = r.unit
        if r.kind == "categorical":
            parts = [f"{k}: {signed(v.effect)} {ci_text(v.shown_ci)}".strip() for k, v in r.levels.items()]
            effect = "; ".join(parts) or effect
        note = r.fit_note or r.note
        if r.negligible:
            note = "; ".join(x for x in (f"negligible: moves the metric less than ±min_effect over its range or "
                                         f"levels (TOST, Holm p {r.p_negligible_holm:.3g})", note) if x)
        rows.append([str(r.rank), path, span, effect, unit, signed(r.importance).lstrip("+"),
                     p_text(r.p, r.p_holm), note])
    return rows


def markdown_lines(group: GroupAnalysis, config) -> list[str]:
    """The alternatives and factors sections of one group in report.md."""
    from .tables import markdown

    out: list[str] = []
    if group.alternatives:
        out += ["### Alternatives", "",
                ("delta is the baseline's choice minus the alternative on the oriented metric: positive means the "
                 "baseline's choice is better. **essential**: it wins by more than min_effect; **harmful**: the "
                 "alternative wins; **negligible**: equivalent within ±min_effect (TOST); Holm across alternatives."),
                "", markdown(ALTERNATIVE_HEADER, alternative_rows(group)), ""]
    if group.factors:
        out += ["### Factors (ranked by importance)", "",
                ("effect: the oriented metric's change (positive = better) per unit of a numeric factor, per doubling "
                 "with log: true, or per level against the baseline's value; importance: the metric's spread over "
                 "the factor's range or levels; p tests the factor as a whole (Holm across factors). CI: BCa bootstrap "
                 "of the per-seed estimates with 10 or more seeds, else t (95%, unadjusted); the plots draw the "
                 "interval at each factor's Holm step. A range inside a branch (`path[branch].key`) is estimated on "
                 "that branch's trials only."),
                "", markdown(FACTOR_HEADER, factor_rows(group, config)), ""]
    if group.factor_interactions:
        rows = [[pair, p_text(r.p, r.p_holm), "interaction" if r.significant else "-"]
                for pair, r in group.factor_interactions.items()]
        out += ["### Factor interactions", "",
                ("Each pair's products of its own columns added to the main-effects fit and F-tested together, Holm "
                 "across the pairs; an interaction means each factor's main effect is an average over the other's "
                 "levels."), "", markdown(["pair", "p (Holm)", "result"], rows), ""]
    return out


def console_tables(group: GroupAnalysis, config, suffix: str) -> list:
    from .tables import rich_table

    out = []
    if group.alternatives:
        out.append(rich_table(f"Alternatives{suffix}", ALTERNATIVE_HEADER, alternative_rows(group), verdict_col=6))
    if group.factors:
        out.append(rich_table(f"Factors{suffix}", FACTOR_HEADER, factor_rows(group, config)))
    return out


# ---------------------------------------------------------------- plots


def factor_plots(group: GroupAnalysis, analysis: Analysis, plot_dir: Path, label_suffix: str) -> dict[str, str]:
    """One PNG per factor: the primary metric by the factor's value."""
    out = {}
    for path, r in group.factors.items():
        name = f"factor_{plots.safe(path)}{label_suffix}"
        out[name] = str(factor_plot(path, r, analysis, plot_dir / f"{name}.png"))
    return out


def factor_plot(path: str, r: Factor, analysis: Analysis, file: Path) -> Path:
    """Trials by the factor's value, and the interval the factor's decision was made at (the caption says which)."""
    prim = analysis.primary.name
    alpha = analysis.alpha
    pts = [(v, y) for v, y in r.points if finite(y)]
    sign = 1.0 if analysis.primary.mode == "max" else -1.0
    fig = plots.figure((6.0, 4.8))
    ax = fig.add_subplot()
    base = float(np.mean([y for v, y in pts if str(v) == str(r.baseline_value)] or [np.nan])) \
        if r.kind == "categorical" else np.nan
    if r.kind == "categorical":
        names = [str(r.baseline_value)] + [k for k in r.levels if k != str(r.baseline_value)]
        data = [[y for v, y in pts if str(v) == n] for n in names]
        keep = [i for i, d in enumerate(data) if d]
        ax.boxplot([data[i] for i in keep], positions=keep, widths=0.5, showfliers=False)
        rng = np.random.default_rng(0)
        for i in keep:
            ax.scatter(i + rng.uniform(-0.1, 0.1, len(data[i])), data[i], s=10, alpha=0.5, color=plots.NEUTRAL)
        for i, n in enumerate(names[1:], 1):  # the baseline's mean plus the level's effect, its decision interval
            lv = r.levels.get(n)
            lo, hi = (lv and lv.ci_decision) or [np.nan, np.nan]
            if finite(base) and finite(lo) and finite(hi):
                mid, ends = base + sign * lv.effect, sorted([base + sign * lo, base + sign * hi])
                ax.errorbar([i + 0.3], [mid], yerr=[[mid - ends[0]], [ends[1] - mid]], fmt="D", color="#1c7ed6",
                            ms=4, capsize=3)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([n + (" (baseline)" if i == 0 else "") for i, n in enumerate(names)], rotation=20)
    else:
        xs = np.array([float(v) for v, _ in pts])
        ys = np.array([y for _, y in pts])
        ax.scatter(xs, ys, s=10, alpha=0.4, color=plots.NEUTRAL, label="trials")
        uniq = np.unique(xs)
        if 0 < len(uniq) <= 12:  # a grid of levels: the mean per value
            ax.scatter(uniq, [ys[xs == u].mean() for u in uniq], marker="_", s=200, color="k", label="mean per value")
        lo, hi = r.ci_decision or [np.nan, np.nan]
        if len(uniq) and finite(r.effect) and finite(lo) and finite(hi):
            log = r.unit == "per doubling"
            scale = np.log2(xs) if log else xs
            grid = np.log2(uniq) if log else uniq
            centre = float(np.mean(scale))
            line = float(np.mean(ys)) + sign * r.effect * (grid - centre)
            ax.plot(uniq, line, color="#1c7ed6", lw=2, label="fitted slope")
            ends = [float(np.mean(ys)) + sign * s_ * (grid - centre) for s_ in (lo, hi)]
            ax.fill_between(uniq, np.minimum(*ends), np.maximum(*ends), color="#1c7ed6", alpha=0.2,
                            label="slope's decision interval")
        ax.axvline(float(r.baseline_value), color="k", ls=":", lw=1,
                   label="reference" if r.branch else "baseline")
        if r.unit == "per doubling":
            ax.set_xscale("log", base=2)
        ax.legend(fontsize=7)
    what = (f"{r.effect_level} vs {r.baseline_value}" if r.kind == "categorical" else r.unit)
    title = f"{path}: {what} {signed(r.effect)} {ci_text(r.shown_ci)} (oriented: + is better)"
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(path)
    ax.set_ylabel(f"{prim} (adjusted for seeds and other columns)" if r.adjusted else prim, fontsize=8)
    fig.text(0.01, 0.01, decision_caption(r, alpha), fontsize=6.5, wrap=True)
    fig.subplots_adjust(bottom=0.3)
    return plots._save(fig, file)


def decision_caption(r: Factor, alpha: float) -> str:
    """Which interval a factor plot draws: the one its Holm decision was made at."""
    k, m = r.decision_k, r.decision_m
    if not k:
        return "No interval drawn: the factor could not be tested."
    verdict = "significant" if r.significant else "not significant"
    where = ("blue bars: each level's effect (baseline's mean + effect) with its t interval at "
             f"1 - {alpha:g}/({k} x {len(r.levels)} levels)") if r.kind == "categorical" else \
        f"blue band: the slope's t interval at 1 - {alpha:g}/{k}"
    return (f"{where}, the level of this factor's Holm step ({k} of {m} factors left); Holm across the {m} factors "
            f"says {verdict} (p_holm {r.p_holm:.3g}). Title interval: {r.ci_method} "
            f"{1 - alpha:.0%} CI, unadjusted.")
