"""Plots (PNG or SVG, no display needed): effects and alternatives with simultaneous intervals and
per-seed dots, metric distributions per variant, and for sweeps each variant's primary metric against
the sweep value."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..ledger.verdicts_json import INCONCLUSIVE, INTERACTION
from .numbers import finite
from .records import DEFAULT_GROUP
from .stats import ESSENTIAL, HARMFUL, NEGLIGIBLE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..ledger.verdicts_json import Comparison
    from .model import Analysis, GroupAnalysis

COLORS = {ESSENTIAL: "#2b8a3e", HARMFUL: "#c92a2a", NEGLIGIBLE: "#1971c2", INTERACTION: "#e67700"}
NEUTRAL = "#868e96"


def safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", label).strip("_") or "group"


def suffix(label: str) -> str:
    return "" if label == DEFAULT_GROUP else "_" + safe(label)


def figure(figsize: tuple[float, float]) -> Figure:
    """A new figure (matplotlib is imported here: reading results never loads it)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def _save(fig: Figure, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path




#: the caption of every interval plot: which interval is drawn (the one that matches the verdicts)
INTERVAL_CAPTION = ("bars: simultaneous t intervals (Bonferroni: level 1 − alpha/m, m rows); colour: verdict; "
                    "band: ±min_effect; dots: per-seed differences")


def interval_plot(items: list[tuple[str, Comparison]], analysis: Analysis, title: str, ylabel: str, path: Path) -> Path:
    """Effect per row with its simultaneous interval (``ci_sim``), coloured by verdict, the ±min_effect band
    shaded and per-seed dots: an interval clear of the band is a decided row."""
    fig = figure((min(max(4.0, 0.45 * len(items) + 2), 16), 4.4))
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    dots: dict[str, tuple[list, list]] = {}  # colour -> per-seed dots (x, y)
    bars: dict[str, list] = {}
    for i, (_name, r) in enumerate(items):
        color = COLORS.get(r.verdict, NEUTRAL)
        diffs = [float(v) for v in r.diffs.values() if finite(v)]
        xs, ys = dots.setdefault(color, ([], []))
        xs.append(i + rng.uniform(-0.12, 0.12, len(diffs)))
        ys.append(np.asarray(diffs))
        e = r.effect
        lo, hi = r.ci_sim
        if finite(e):
            b = bars.setdefault(color, [[], [], [], []])
            b[0].append(i)
            b[1].append(e)
            b[2].append(e - lo if finite(lo) else 0.0)
            b[3].append(hi - e if finite(hi) else 0.0)
    for color, (xs, ys) in dots.items():  # one call per colour, with arrays: fast for thousands of seeds
        ax.scatter(np.concatenate(xs), np.concatenate(ys), s=12, color=color, alpha=0.45, zorder=2)
    for color, (x, y, lo, hi) in bars.items():  # one call per colour: fast for many components
        ax.errorbar(x, y, yerr=[lo, hi], fmt="o", color=color, capsize=4, lw=2, zorder=3)
    ax.axhline(0, color="black", lw=0.8)
    me = analysis.min_effect
    if me:
        ax.axhspan(-me, me, color=NEUTRAL, alpha=0.15, lw=0, zorder=1)
        for y in (me, -me):
            ax.axhline(y, color=NEUTRAL, lw=0.8, ls="--")
    ax.set_xticks(range(len(items)))
    many = len(items) >= 15
    ax.set_xticklabels([n for n, _ in items], rotation=90 if many else 30, ha="center" if many else "right",
                       fontsize=7 if many else 9)
    ax.set_ylabel(ylabel)
    ax.set_title(title + "\n" + INTERVAL_CAPTION, fontsize=9)
    from matplotlib.lines import Line2D

    shown = [v for v in (ESSENTIAL, HARMFUL, NEGLIGIBLE, INTERACTION) if COLORS[v] in bars or COLORS[v] in dots]
    handles = [Line2D([], [], color=COLORS[v], marker="o", ls="", label=v) for v in shown]
    if NEUTRAL in bars or NEUTRAL in dots:
        handles.append(Line2D([], [], color=NEUTRAL, marker="o", ls="", label=INCONCLUSIVE))
    ax.legend(handles=handles, fontsize=7, loc="best")
    return _save(fig, path)


def effects_plot(group: GroupAnalysis, analysis: Analysis, path: Path) -> Path:
    """Effect per component (and pair interaction): ``interval_plot`` of the group's rows."""
    items = [(c, r) for c, r in group.components.items()]
    items += [("× " + k, r) for k, r in group.interactions.items()]
    title = "Component effects" + ("" if group.label == DEFAULT_GROUP else f" — {group.label}")
    return interval_plot(items, analysis, title, f"effect on {analysis.primary.name} (+ = component helps)",
                         path)


def alternatives_plot(group: GroupAnalysis, analysis: Analysis, path: Path) -> Path:
    """The baseline's choice against each alternative: ``interval_plot`` of the alternatives' rows."""
    items = [(f"{c}={a}", r) for c, by_alt in group.alternatives.items() for a, r in by_alt.items()]
    title = "Alternatives" + ("" if group.label == DEFAULT_GROUP else f" — {group.label}")
    return interval_plot(items, analysis, title,
                         f"effect on {analysis.primary.name} (+ = the baseline's choice is better)", path)


def distributions_plot(group: GroupAnalysis, analysis: Analysis, path: Path) -> Path:
    """Per variant: every seed's value (dots) and mean ± std, one panel per primary/secondary metric."""
    metrics = [analysis.primary.name] + [m.name for m in analysis.secondary]
    variants = list(group.variants)
    fig = figure((min(max(4.0, 0.45 * len(variants) + 2), 16), 3.4 * len(metrics)))
    rng = np.random.default_rng(1)
    for k, m in enumerate(metrics):
        ax = fig.add_subplot(len(metrics), 1, k + 1)
        xs, ys, mx, my, ms = [], [], [], [], []
        for i, v in enumerate(variants):
            d = group.variants[v].metrics.get(m)
            if not d or not d.n:
                continue
            vals = _values(group, v, m)
            xs += list(i + rng.uniform(-0.1, 0.1, len(vals)))
            ys += vals
            mx.append(i)
            my.append(d.mean)
            ms.append(d.std if finite(d.std) else 0.0)
        if xs:
            ax.scatter(xs, ys, s=12, color=NEUTRAL, alpha=0.6)
            ax.errorbar(mx, my, yerr=ms, fmt="s", color="black", capsize=4)
        ax.set_xticks(range(len(variants)))
        many = len(variants) >= 15
        ax.set_xticklabels(variants, rotation=90 if many else 30, ha="center" if many else "right",
                           fontsize=7 if many else 9)
        ax.set_ylabel(m)
        if k == 0:
            ax.set_title("Per-variant distribution over seeds (mean ± std)"
                         + ("" if group.label == DEFAULT_GROUP else f" — {group.label}"), fontsize=10)
    fig.subplots_adjust(hspace=0.6 if len(variants) < 15 else 0.9)
    return _save(fig, path)


def _values(group: GroupAnalysis, variant: str, metric: str) -> list[float]:
    stats = group.variants[variant].metrics.get(metric)
    return list(stats.values) if stats else []


def sweep_plot(analysis: Analysis, sweep_path: str, tier: str | None, path: Path) -> Path | None:
    """Primary metric per variant against the sweep value: where each variant breaks."""
    groups = [g for g in analysis.groups.values() if g.tier == tier and g.sweep_value is not None]
    if len(groups) < 1:
        return None
    prim = analysis.primary.name
    xs_raw = [g.sweep_value for g in groups]
    numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs_raw)
    xs = [float(x) for x in xs_raw] if numeric else list(range(len(xs_raw)))
    variants: list[str] = []
    for g in groups:
        for v in g.variants:
            if v not in variants:
                variants.append(v)
    fig = figure((6.5, 4.2))
    ax = fig.add_subplot()
    for v in variants:
        m, s, xv = [], [], []
        for x, g in zip(xs, groups):
            d = g.variants[v].metrics.get(prim) if v in g.variants else None
            if d and d.n:
                xv.append(x)
                m.append(d.mean)
                s.append(d.std if finite(d.std) else 0.0)
        if xv:
            order = np.argsort(xv)
            xv, m, s = np.asarray(xv)[order], np.asarray(m)[order], np.asarray(s)[order]
            lw = 2.5 if v == "baseline" else 1.3
            ax.plot(xv, m, marker="o", lw=lw, label=v)
            ax.fill_between(xv, m - s, m + s, alpha=0.12)
    if not numeric:
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs_raw])
    ax.set_xlabel(sweep_path)
    ax.set_ylabel(f"{prim} (mean ± std over seeds)")
    ax.set_title("Where each variant breaks" + (f" — tier {tier}" if tier else ""), fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)
