"""The study's report as `ablator report`, launch and tune write it: the analysis, then the tuning section."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from ..ledger.verdicts_json import Verdicts


def write_report(study_path: Path, console: Console) -> Verdicts:
    """The study's report.md and report.html: the analysis's sections, then the tuning stage's when it
    has results. Composed here, above both layers: the analysis knows nothing of tuning."""
    from ..analysis import build_report
    from ..tuning.report import study_section

    tuning = study_section(study_path)
    return build_report(study_path, console=console, sections=[tuning] if tuning else [])
