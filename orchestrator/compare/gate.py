"""``ablator compare``: the comparison printed (or as JSON, or as a page) and the gate's exit code."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ..errors import UserError
from .model import FAIL_ON
from .show import print_comparison
from .studies import compare_studies


def run(old: Path, new: Path, *, fail_on: list[str], paired: bool, partial: bool, alpha: float | None,
        min_effect: float | None, as_json: bool, html: Path | None, console: Console) -> int:
    """Compare, show, and return the exit code: 1 when a row fails the gate (``--fail-on``), else 0."""
    unknown = [f for f in fail_on if f not in FAIL_ON]
    if unknown:
        raise UserError(f"--fail-on {unknown[0]}: choose from {', '.join(FAIL_ON)}")
    c = compare_studies(old, new, paired=paired, partial=partial, alpha=alpha, min_effect=min_effect)
    failing = c.failing(fail_on)
    if as_json:
        sys.stdout.write(c.model_dump_json(indent=2) + "\n")
    else:
        print_comparison(c, console)
    if html is not None:
        from .html import write_html

        written = write_html(c, html)
        (console if not as_json else Console(stderr=True)).print(f"page: {escape(str(written))}")
    out = Console(stderr=True) if as_json else console
    if failing:
        out.print(f"[red]FAIL[/red] ({', '.join(fail_on)}): " + escape(", ".join(r.title for r in failing)))
        return 1
    out.print(f"[green]PASS[/green] ({', '.join(fail_on)}): no row fails the gate")
    return 0
