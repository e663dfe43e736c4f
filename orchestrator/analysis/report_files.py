"""The one writer of report.md and report.html: composed from sections, written atomically.

Sections come in order: the analysis's own, then any the caller adds (the study session adds
the tuning stage's section when that stage has results; the analysis knows nothing of tuning).
report.html is rendered from the same text, so the two always agree. Each file is written to
a temporary file and renamed (``ledger.write_text``): a reader, or a writer killed halfway,
leaves the previous report whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..ledger import write_text
from .html import build_html

REPORT_MD, REPORT_HTML = "report.md", "report.html"


def compose(sections: Iterable[str]) -> str:
    """report.md's text: the non-empty sections, one blank line between them."""
    return "\n\n".join(s.strip("\n") for s in sections if s and s.strip()) + "\n"


def write_report_files(study_dir: str | Path, sections: Iterable[str]) -> tuple[Path, Path]:
    """Write report.md and report.html of a study directory; return their paths."""
    study_dir = Path(study_dir)
    text = compose(sections)
    page = build_html(study_dir, text)  # both rendered before either is written
    md, html = study_dir / REPORT_MD, study_dir / REPORT_HTML
    write_text(md, text)
    write_text(html, page)
    return md, html
