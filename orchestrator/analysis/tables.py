"""Tables: the summary table (markdown and rich), per-variant metric tables, results.csv."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from rich.text import Text

from ..ledger.verdicts_json import INCONCLUSIVE, INTERACTION, Comparison, Summary
from ..terminal import FitTable
from .model import Analysis, GroupAnalysis
from .numbers import finite
from .stats import ESSENTIAL, HARMFUL, NEGLIGIBLE, short_reason

SUMMARY_HEADER = ["component", "kind", "baseline", "ablated (mean ± std)", "delta [simultaneous CI]",
                  "deciding test: p (Holm)", "p vs 0 (Holm)", "MDE", "verdict"]
INTERACTION_HEADER = ["pair", "delta a", "delta b", "delta a+b", "interaction [simultaneous CI]", "p (Holm)", "n",
                      "verdict"]
VERDICT_COL = SUMMARY_HEADER.index("verdict")
VERDICT_STYLE = {ESSENTIAL: "bold green", HARMFUL: "bold red", NEGLIGIBLE: "cyan", INTERACTION: "bold yellow"}


def num(x, digits: int = 4) -> str:
    """A number with `digits` significant digits; '—' for None, 'nan'/'inf' as such."""
    if x is None:
        return "—"
    x = float(x)
    if not finite(x):
        return str(x)
    return f"{x:.{digits}g}"


def signed(x) -> str:
    s = num(x)
    return s if (not finite(x) or s.startswith("-")) else "+" + s


def mean_std(s: Summary | None) -> str:
    if s is None or not s.n:
        return "—"
    if s.n < 2:
        return f"{num(s.mean)} (n=1)"
    return f"{num(s.mean)} ± {num(s.std)} (n={s.n})"


def ci_text(ci) -> str:
    lo, hi = ci
    return f"[{num(lo)}, {num(hi)}]" if finite(lo) and finite(hi) else ""


def p_text(p, p_holm) -> str:
    if not finite(p_holm):
        return "—"
    return f"{_p(p_holm)} (raw {_p(p)})"


def _p(p) -> str:
    if not finite(p):
        return "—"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def deciding_text(r: Comparison) -> str:
    """The test that decides the verdict (the closest one for an inconclusive row), its direction and Holm p."""
    d = r.deciding
    if d is None:
        return "—"
    return f"{d.claim} ({d.test}): {_p(d.p_holm)} (raw {_p(d.p)})"


def verdict_text(r: Comparison) -> str:
    v = r.verdict
    if not r.estimable:
        return f"{v} (cannot conclude: n={r.n})"
    need = r.seeds_needed
    if v == INCONCLUSIVE and need is not None:
        v = f"{v} (~{need} seeds would decide)" if need <= 1000 else f"{v} (>1000 seeds would decide)"
    return f"{v}: {short_reason(r.why)}" if r.why else v


def delta_text(r: Comparison) -> str:
    """Effect, its simultaneous interval, and the per-row BCa bootstrap interval when there is one."""
    delta = signed(r.effect)
    ci = ci_text(r.ci_sim)
    boot = ci_text(r.ci_bootstrap)
    if ci:
        delta += f" {ci}"
    if boot:
        delta += f" ({r.bootstrap_method or 'BCa'} per row {boot})"
    return delta


def summary_rows(group: GroupAnalysis) -> list[list[str]]:
    rows = []
    for name, r in group.components.items():
        rows.append([name, r.kind or "", mean_std(r.baseline), mean_std(r.variant), delta_text(r),
                     deciding_text(r), p_text(r.p, r.p_holm), num(r.mde, 3), verdict_text(r)])
    return rows


def interaction_rows(group: GroupAnalysis) -> list[list[str]]:
    rows = []
    for key, r in group.interactions.items():
        rows.append([key, signed(r.delta_a), signed(r.delta_b), signed(r.delta_ab),
                     delta_text(r), p_text(r.p, r.p_holm), str(r.n), verdict_text(r)])
    return rows


def metric_table_rows(group: GroupAnalysis, metrics: list[str]) -> list[list[str]]:
    rows = []
    for name, v in group.variants.items():
        row = [name]
        for m in metrics:
            d = v.metrics.get(m)
            row.append(mean_std(Summary(n=d.n, mean=d.mean, std=d.std) if d else None))
        rows.append(row)
    return rows


def metric_tables(group: GroupAnalysis, config) -> list[tuple[str, list[str]]]:
    """(title, metrics) per console table: one per metrics.groups entry, else one."""
    if config.metrics.groups:
        return [(title, list(ms)) for title, ms in config.metrics.groups.items()]
    ms = [config.metrics.primary.name] + [m.name for m in config.metrics.secondary]
    return [("metrics", ms)]


# ---------------------------------------------------------------- renderers


def markdown(header: list[str], rows: list[list[str]]) -> str:
    def cell(s):
        return str(s).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def rich_table(title: str, header: list[str], rows: list[list[str]], verdict_col: int | None = None) -> FitTable:
    """A console table that fits the terminal's width (see `orchestrator.terminal`)."""
    def style(i: int, cell: str) -> str:
        return VERDICT_STYLE.get(re.split(r"[ :(]", cell)[0], "") if i == verdict_col else ""

    return FitTable(title, header, [[Text(str(c), style=style(i, str(c))) for i, c in enumerate(row)] for row in rows])


# ---------------------------------------------------------------- results.csv


CSV_HEADER = ["group", "variant", "removed", "metric", "n", "mean", "std", "sem", "min", "max",
              "seeds", "failed", "pending", "nonfinite", "absent"]


def write_results_csv(analysis: Analysis, path: Path) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_HEADER)
        for label, g in analysis.groups.items():
            for vname, v in g.variants.items():
                s = v.seeds
                for m, d in v.metrics.items():
                    w.writerow([label, vname, "+".join(v.removed), m, d.n, _c(d.mean), _c(d.std), _c(d.sem), _c(d.min),
                                _c(d.max), " ".join(map(str, d.seeds)), " ".join(map(str, s.failed)),
                                " ".join(map(str, s.pending)), " ".join(map(str, s.nonfinite)),
                                " ".join(map(str, s.absent))])


def _c(x) -> str:
    return repr(float(x)) if finite(x) else ""
