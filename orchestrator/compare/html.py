"""``ablator compare --html``: one self-contained page in the report's style, one plot per row kind with both
studies' effects and intervals (changed rows first)."""

from __future__ import annotations

import html
import tempfile
from pathlib import Path

from ..analysis.html import SCRIPT, STYLE, render
from ..analysis.numbers import finite
from .model import RowComparison, StudyComparison
from .show import markdown


def effects_plot(rows: list[RowComparison], min_effect: float, path: Path) -> Path:
    """Both studies' effects with their intervals, one line per row (top first), ±min_effect dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * len(rows)))
    for i, r in enumerate(rows):
        y = len(rows) - 1 - i
        for side, dy, color, mark in ((r.old, 0.12, "#1971c2", "o"), (r.new, -0.12, "#e8590c", "s")):
            if not finite(side.effect):
                continue
            lo, hi = side.ci
            err = ([[side.effect - lo], [hi - side.effect]] if finite(lo) and finite(hi) else None)
            ax.errorbar(side.effect, y + dy, xerr=err, fmt=mark, color=color, capsize=3,
                        label=("old" if color == "#1971c2" else "new") if i == 0 else None)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r.name} ({r.call})" + (f" [{r.group}]" if r.group != "default" else "")
                        for r in reversed(rows)])
    ax.axvline(0, color="#495057", lw=0.8)
    for x in (-min_effect, min_effect):
        if min_effect > 0:
            ax.axvline(x, color="#adb5bd", ls="--", lw=0.8)
    ax.set_xlabel("effect (positive = the part helps), (1 - alpha) intervals")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_html(c: StudyComparison, path: str | Path) -> Path:
    """The page, written to `path` (plots embedded as data URIs)."""
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        plots = {}
        for kind in dict.fromkeys(r.kind for r in c.rows):
            rows = [r for r in c.rows if r.kind == kind]
            plots[kind] = effects_plot(rows, c.min_effect, base / f"{kind}.png").name
        body = render(markdown(c, plots), base)
    title = f"Comparison: {c.old.name} -> {c.new.name}"
    for call, style in (("changed", "v-harmful"), ("same", "v-negligible")):
        body = body.replace(f"<td>{call}", f'<td class="{style}">{call}')
    path.write_text("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                    f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n{body}\n"
                    f"<script>{SCRIPT}</script>\n</body></html>\n")
    return path
