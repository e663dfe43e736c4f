"""Tables for a terminal or a log file: fit the width without breaking a word or a number.

`FitTable` decides when it is printed, from the console's width (80 when stdout is not a
terminal, unless COLUMNS says otherwise): a boxed table when every cell fits on a line or
two, else a compact table without borders, else one block per row (the first cell as its
heading, then one `header  value` line per column). Cells break only at spaces and after a
`+` (variant names of random designs); a word wider than the whole line stays whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

#: where a word may break besides a space: after a `+` inside a variant name (`no-a+b=x`), never
#: inside a number (`+0.25`, `1e+05`)
_AFTER_PLUS = re.compile(r"(?<=.\+)(?=[A-Za-z_])")
_LAYOUTS = (
    # (Table options, width taken by borders and padding for n columns)
    ({"box": box.HEAVY_HEAD, "padding": (0, 1)}, lambda n: 3 * n + 1),
    ({"box": None, "padding": (0, 1), "pad_edge": False}, lambda n: 2 * (n - 1)),
)


def _words(text: str) -> list[list[str]]:
    """Each word of `text` as the pieces it may break into."""
    return [_AFTER_PLUS.split(word) for word in text.split()]


def widest_piece(text: str) -> int:
    return max((cell_len(p) for word in _words(text) for p in word), default=0)


def wrap(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` cells, broken at spaces and after `+` only."""
    lines: list[str] = []
    for para in text.split("\n"):
        line = ""
        for word in _words(para):
            for i, piece in enumerate(word):
                sep = " " if i == 0 and line else ""
                if line and cell_len(line) + len(sep) + cell_len(piece) > width:
                    lines.append(line)
                    line = piece
                else:
                    line += sep + piece
        lines.append(line)
    return lines


class FitTable:
    """A table that fits the console it is printed to. Cells are plain strings, or rich `Text`
    whose style colours the whole cell; `justify` per column ("left" or "right")."""

    def __init__(self, title: str, header: Sequence[str], rows: Sequence[Sequence[str | Text]],
                 justify: Sequence[str] | None = None, max_lines: int = 2):
        self.title, self.header = title, [str(h) for h in header]
        self.rows = [[c if isinstance(c, Text) else Text(str(c)) for c in row] for row in rows]
        self.justify = list(justify or ["left"] * len(header))
        self.max_lines = max_lines

    def _columns(self) -> list[list[str]]:
        return [[h] + [row[i].plain for row in self.rows] for i, h in enumerate(self.header)]

    def widths(self, width: int, overhead: int) -> list[int] | None:
        """Each column's width, or None when some word does not fit or a cell would take more
        than `max_lines` lines."""
        columns = self._columns()
        need = [max(widest_piece(c) for c in col) for col in columns]
        full = [max(cell_len(line) for c in col for line in c.split("\n")) for col in columns]
        spare = width - overhead - sum(need)
        if spare < 0:
            return None
        widths = list(need)
        for i in sorted(range(len(widths)), key=lambda i: full[i] - need[i]):  # the nearly whole first
            more = min(spare, full[i] - widths[i])
            widths[i] += more
            spare -= more
        if any(len(wrap(c, w)) > self.max_lines for col, w in zip(columns, widths) for c in col):
            return None
        return widths

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        for table_options, overhead in _LAYOUTS:
            widths = self.widths(width, overhead(len(self.header)))
            if widths is not None:
                yield self._table(table_options, widths)
                return
        yield from self._blocks(width)

    def _table(self, table_options: dict, widths: list[int]) -> Table:
        table = Table(title=Text(self.title), title_justify="left", header_style="bold", **table_options)
        for h, w, justify in zip(self.header, widths, self.justify):
            table.add_column(Text("\n".join(wrap(h, w))), width=w, no_wrap=True, justify=justify)
        for row in self.rows:
            table.add_row(*(Text("\n".join(wrap(c.plain, w)), style=c.style) for c, w in zip(row, widths)))
        return table

    def _blocks(self, width: int) -> RenderResult:
        label = min(max((cell_len(h) for h in self.header[1:]), default=0), max(8, width // 3))
        indent = 2 + label + 2
        yield Text(self.title, style="italic")
        for row in self.rows:
            head = row[0]
            yield Text("\n".join(wrap(f"{self.header[0]} {head.plain}", width)), style=head.style or "bold")
            for h, cell in zip(self.header[1:], row[1:]):
                lead = f"  {h}"
                if cell_len(lead) > indent - 2:  # a long header takes a line of its own
                    yield Text(lead, no_wrap=True, overflow="ignore")
                    lead = ""
                for line in wrap(cell.plain, max(width - indent, 1)):
                    yield Text.assemble(lead + " " * (indent - cell_len(lead)), Text(line, style=cell.style),
                                        no_wrap=True, overflow="ignore")
                    lead = ""
