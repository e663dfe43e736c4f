"""Alternatives and factors in the report: tables (markdown, console, W&B) and one plot per factor.

The plot follows ABLATOR's: the primary metric by the factor's value, a box and the trials'
dots per level for a categorical factor, the per-value mean with a band (mean ± t CI) and
the fitted line for a numeric one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from . import plots
from .stats import finite, t_quantile
from .tables import ci_text, deciding_text, delta_text, mean_std, p_text, signed, verdict_text

ALTERNATIVE_HEADER = ["component", "alternative", "baseline's choice", "alternative (mean ± std)",
                      "delta [simultaneous CI]", "deciding test: p (Holm)", "verdict"]
FACTOR_HEADER = ["rank", "factor", "levels", "effect [CI]", "unit", "importance", "p (Holm)", "note"]


def alternative_rows(group: dict) -> list[list[str]]:
    rows = []
    for c, by_alt in group.get("alternatives", {}).items():
        for a, r in by_alt.items():
            rows.append([c, a, mean_std(r.get("baseline")), mean_std(r.get("alternative")),
                         delta_text(r), deciding_text(r), verdict_text(r)])
    return rows


def factor_rows(group: dict, config) -> list[list[str]]:
    rows = []
    factors = group.get("factors", {})
    for path in sorted(factors, key=lambda p: factors[p]["rank"]):
        r = factors[path]
        space = config.factors[path]
        span = (f"{space.value_range[0]:g}..{space.value_range[1]:g}" + (" (log)" if space.log else "")
                if space.value_range is not None else ", ".join(map(str, space.categorical_values)))
        effect = f"{signed(r.get('effect'))} {ci_text(r['ci'])}".strip()
        unit = r["unit"]
        if r["kind"] == "categorical":
            parts = [f"{k}: {signed(v['effect'])} {ci_text(v['ci'])}".strip() for k, v in r["levels"].items()]
            effect = "; ".join(parts) or effect
        rows.append([str(r["rank"]), path, span, effect, unit, signed(r.get("importance")).lstrip("+"),
                     p_text(r.get("p"), r.get("p_holm")), r.get("fit_note") or r.get("note") or ""])
    return rows


def markdown_lines(group: dict, config) -> list[str]:
    """The alternatives and factors sections of one group in report.md."""
    from .tables import markdown

    out: list[str] = []
    if group.get("alternatives"):
        out += ["### Alternatives", "",
                ("delta is the baseline's choice minus the alternative on the oriented metric: positive means the "
                 "baseline's choice is better. **essential**: it wins by more than min_effect; **harmful**: the "
                 "alternative wins; **negligible**: equivalent within ±min_effect (TOST); Holm across alternatives."),
                "", markdown(ALTERNATIVE_HEADER, alternative_rows(group)), ""]
    if group.get("factors"):
        out += ["### Factors (ranked by importance)", "",
                ("effect: the oriented metric's change (positive = better) per unit of a numeric factor, per doubling "
                 "with log: true, or per level against the baseline's value; importance: the metric's spread over "
                 "the factor's range or levels; p tests the factor as a whole (Holm across factors)."),
                "", markdown(FACTOR_HEADER, factor_rows(group, config)), ""]
    return out


def console_tables(group: dict, config, suffix: str) -> list:
    from .tables import rich_table

    out = []
    if group.get("alternatives"):
        out.append(rich_table(f"Alternatives{suffix}", ALTERNATIVE_HEADER, alternative_rows(group), verdict_col=6))
    if group.get("factors"):
        out.append(rich_table(f"Factors{suffix}", FACTOR_HEADER, factor_rows(group, config)))
    return out


# ---------------------------------------------------------------- plots


def factor_plots(group: dict, analysis: dict, plot_dir: Path, label_suffix: str) -> dict[str, str]:
    """One PNG per factor: the primary metric by the factor's value."""
    out = {}
    for path, r in group.get("factors", {}).items():
        name = f"factor_{plots.safe(path)}{label_suffix}"
        out[name] = str(factor_plot(path, r, analysis, plot_dir / f"{name}.png"))
    return out


def factor_plot(path: str, r: dict, analysis: dict, file: Path) -> Path:
    prim = analysis["primary"]["name"]
    alpha = analysis["alpha"]
    pts = [(v, y) for v, y in r["points"] if finite(y)]
    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.add_subplot()
    if r["kind"] == "categorical":
        names = [str(r["baseline_value"])] + [k for k in r["levels"] if k != str(r["baseline_value"])]
        data = [[y for v, y in pts if str(v) == n] for n in names]
        keep = [i for i, d in enumerate(data) if d]
        ax.boxplot([data[i] for i in keep], positions=keep, widths=0.5, showfliers=False)
        rng = np.random.default_rng(0)
        for i in keep:
            ax.scatter(i + rng.uniform(-0.1, 0.1, len(data[i])), data[i], s=10, alpha=0.5, color=plots.NEUTRAL)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([n + (" (baseline)" if i == 0 else "") for i, n in enumerate(names)], rotation=20)
    else:
        xs = np.array([float(v) for v, _ in pts])
        ys = np.array([y for _, y in pts])
        ax.scatter(xs, ys, s=10, alpha=0.4, color=plots.NEUTRAL, label="trials")
        uniq = np.unique(xs)
        sign = 1.0 if analysis["primary"]["mode"] == "max" else -1.0
        if len(uniq) <= 12:  # a grid of levels: mean with a t band per level
            means = np.array([ys[xs == u].mean() for u in uniq])
            half = np.array([t_quantile(1 - alpha / 2, max((xs == u).sum() - 1, 1)) * ys[xs == u].std(ddof=1)
                             / np.sqrt((xs == u).sum()) if (xs == u).sum() > 1 else 0.0 for u in uniq])
            label = "mean per value"
        else:  # sampled values: the fitted line, its band from the slope's CI
            scale = np.log2(xs) if r["unit"] == "per doubling" else xs
            uniq = np.sort(xs)
            grid = np.log2(uniq) if r["unit"] == "per doubling" else uniq
            centre = float(np.mean(scale))
            means = float(np.mean(ys)) + sign * r["effect"] * (grid - centre)
            half = np.abs(grid - centre) * (r["ci"][1] - r["ci"][0]) / 2
            label = "fitted line"
        ax.plot(uniq, means, color="#1c7ed6", lw=2, label=label)
        ax.fill_between(uniq, means - half, means + half, color="#1c7ed6", alpha=0.2, label=f"{1 - alpha:.0%} CI")
        ax.axvline(float(r["baseline_value"]), color="k", ls=":", lw=1, label="baseline")
        if r["unit"] == "per doubling":
            ax.set_xscale("log", base=2)
        ax.legend(fontsize=8)
    what = (f"{r.get('effect_level')} vs {r['baseline_value']}" if r["kind"] == "categorical" else r["unit"])
    title = f"{path}: {what} {signed(r.get('effect'))} {ci_text(r['ci'])} (oriented: + is better)"
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(path)
    ax.set_ylabel(f"{prim} (adjusted for seeds and other columns)" if r.get("adjusted") else prim, fontsize=8)
    return plots._save(fig, file)
