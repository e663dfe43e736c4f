"""Dual-table console output: temporal alignment and chord label quality, per variant.

Rows are per-variant metric dicts (a trial's final metrics, or seed means) with a
``variant`` key. A row whose model decodes with both heads also shows each head
decoded on its own (``ctc_*`` / ``ar_*`` metrics) on the lines under it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.console import Console
from rich.table import Table

ALIGNMENT: dict[str, str] = {
    "frame_acc": "Frame Acc",
    "seg": "Seg",
    "overseg": "OverSeg",
    "underseg": "UnderSeg",
}
LABEL_QUALITY: dict[str, str] = {
    "root": "Root",
    "thirds": "Thirds",
    "majmin": "MajMin",
    "mirex": "MIREX",
}
HEADS: tuple[str, ...] = ("ctc", "ar")


def _pct(value) -> str:
    try:
        return f"{100.0 * float(value):.1f}%"
    except (TypeError, ValueError):
        return "–"


def _heads_of(row: Mapping) -> list[str]:
    return [h for h in HEADS if f"{h}_mirex" in row]


def _table(title: str, columns: Mapping[str, str], rows: Sequence[Mapping]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("Variant")
    table.add_column("Head")
    for label in columns.values():
        table.add_column(label, justify="right")
    show_time = any("time_s" in r for r in rows)
    if show_time:
        table.add_column("Time", justify="right")
    for row in rows:
        heads = _heads_of(row)
        decoder = "+".join(h.upper() for h in heads) if heads else "–"
        cells = [str(row.get("variant", "?")), decoder] + [_pct(row.get(k)) for k in columns]
        if show_time:
            cells.append(f"{float(row['time_s']):.0f}s" if "time_s" in row else "")
        table.add_row(*cells)
        if len(heads) > 1:  # each head decoded on its own, under the fused line
            for h in heads:
                sub = ["", h.upper()] + [_pct(row.get(f"{h}_{k}")) for k in columns]
                table.add_row(*(sub + ([""] if show_time else [])), style="dim")
    return table


def chord_tables(rows: Sequence[Mapping]) -> tuple[Table, Table]:
    """The two rich tables: (temporal alignment, chord label quality)."""
    return (
        _table("Temporal alignment (frame-level)", ALIGNMENT, rows),
        _table("Chord label quality", LABEL_QUALITY, rows),
    )


def print_chord_tables(rows: Sequence[Mapping], console: Console | None = None) -> None:
    """Print both tables, one under the other."""
    console = console or Console()
    for table in chord_tables(rows):
        console.print(table)
