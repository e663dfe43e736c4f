"""A comparison on the console and as markdown (the HTML page renders the markdown)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from ..analysis.numbers import finite
from ..terminal import FitTable
from .model import RowComparison, StudyComparison

CALL_STYLE = {"changed": "bold red", "same": "green", "unclear": "yellow", "not compared": "dim"}
#: provenance keys that differ between any two machines or runs: counted, not listed one by one
NOISY = ("host", "platform", "cpu.", "gpu.", "packages_hash")


def num(x) -> str:
    return f"{x:+.3g}" if finite(x) else "-"


def ci(pair) -> str:
    lo, hi = pair
    return f"[{lo:+.3g}, {hi:+.3g}]" if finite(lo) and finite(hi) else "-"


def p(x) -> str:
    return f"{x:.3g}" if finite(x) else "-"


def call_text(r: RowComparison) -> str:
    if r.call == "changed":
        return "changed" + (" (beyond min_effect)" if r.beyond_min_effect else "")
    return r.call


def label(r: RowComparison) -> str:
    a, b = r.old.verdict or "", r.new.verdict or ""
    return a if a == b else f"{a} -> {b}"


def why(r: RowComparison) -> str:
    return "; ".join(x for x in [r.why, *r.notes] if x)


def cells(r: RowComparison) -> list[str]:
    return [r.title, f"{num(r.old.effect)} {ci(r.old.ci)}", f"{num(r.new.effect)} {ci(r.new.ci)}",
            f"{num(r.diff)} {ci(r.ci)}", p(r.p_changed_holm), p(r.p_same_holm), call_text(r), label(r), why(r)]


HEADERS = ["row", "old effect [CI]", "new effect [CI]", "new - old [CI]", "p changed (Holm)", "p same (Holm)",
           "call", "label", "why"]


def summary(c: StudyComparison) -> str:
    n = {k: len(c.rows_called(k)) for k in ("changed", "same", "unclear", "not compared")}
    return (f"{len(c.rows)} rows compared: {n['changed']} changed, {n['same']} same, {n['unclear']} unclear"
            + (f", {n['not compared']} not compared" if n["not compared"] else ""))


def provenance_lines(c: StudyComparison) -> tuple[list[str], int]:
    shown = [ch for ch in c.provenance if not ch.key.startswith(NOISY)]
    return [f"{ch.key}: {ch.old!r} -> {ch.new!r}" for ch in shown], len(c.provenance) - len(shown)


def print_comparison(c: StudyComparison, console: Console) -> None:
    console.print(f"[bold]old[/bold] {escape(c.old.name)} ({escape(c.old.path)})  "
                  f"[bold]new[/bold] {escape(c.new.name)} ({escape(c.new.path)})")
    console.print(f"{c.old.primary.name} ({c.old.primary.mode}), alpha {c.alpha:g}, min_effect {c.min_effect:g}; "
                  f"{escape(c.pairing_why)}", highlight=False)
    for note in c.notes:
        console.print(f"  - {escape(note)}", highlight=False)
    rows = []
    for r in c.rows:
        row: list[str | Text] = list(cells(r))
        row[6] = Text(row[6], style=CALL_STYLE.get(r.call, ""))
        rows.append(row)
    console.print(FitTable("Rows both studies have (effect: positive = the part helps)", HEADERS, rows))
    for which, names in (("old", c.only_old), ("new", c.only_new)):
        if names:
            console.print(f"only in the {which} study: {escape(', '.join(names))}", highlight=False)
    if c.config:
        console.print("config differences:")
        for ch in c.config:
            console.print(f"  {escape(ch.key)}: {escape(repr(ch.old))} -> {escape(repr(ch.new))}", highlight=False)
    lines, hidden = provenance_lines(c)
    if lines or hidden:
        console.print("provenance differences:" + (f" ({hidden} of host, hardware and environment hash)"
                                                    if hidden else ""))
        for line in lines:
            console.print(f"  {escape(line)}", highlight=False)
    console.print(summary(c))


def markdown(c: StudyComparison, plots: dict[str, str]) -> str:
    """The comparison as markdown: summary, notes, one plot and one table per row kind, differences."""
    out = [f"# Comparison: {c.old.name} -> {c.new.name}", "",
           f"old: `{c.old.path}`  ", f"new: `{c.new.path}`", "",
           f"**{summary(c)}.** {c.old.primary.name} ({c.old.primary.mode}), alpha {c.alpha:g}, "
           f"min_effect {c.min_effect:g}; {c.pairing_why}.", ""]
    out += [f"- {n}" for n in c.notes] + [""]
    kinds = list(dict.fromkeys(r.kind for r in c.rows))
    for kind in kinds:
        rows = [r for r in c.rows if r.kind == kind]
        out += [f"## {kind}s", ""]
        if kind in plots:
            out += [f"![{kind}s: both studies' effects]({plots[kind]})", ""]
        out += ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
        out += ["| " + " | ".join(x.replace("|", "/") for x in cells(r)) + " |" for r in rows] + [""]
    for which, names in (("old", c.only_old), ("new", c.only_new)):
        if names:
            out += [f"## Only in the {which} study", ""] + [f"- {n}" for n in names] + [""]
    if c.config:
        out += ["## Config differences", "", "| key | old | new |", "|---|---|---|"]
        out += [f"| {ch.key} | `{ch.old!r}` | `{ch.new!r}` |" for ch in c.config] + [""]
    lines, hidden = provenance_lines(c)
    if lines or hidden:
        out += ["## Provenance differences", ""] + [f"- `{line}`" for line in lines]
        out += [f"- {hidden} of host, hardware and environment hash"] if hidden else []
    return "\n".join(out) + "\n"
