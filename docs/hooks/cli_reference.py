"""mkdocs hook: the CLI reference page gets every `ablator` command, rendered from the command's own help.

Typer's docs generator renders the command tree (typer carries its own click, which click-based
renderers cannot read), so a new command or option is in the reference without an edit here.
"""

from __future__ import annotations

import typer
from typer.cli import get_docs_for_click

MARKER = "<!-- every ablator command -->"


def cli_markdown() -> str:
    """Markdown of every command of `ablator`: usage, arguments and options (headings from level 2)."""
    from orchestrator.cli import app

    command = typer.main.get_command(app)
    return get_docs_for_click(obj=command, ctx=typer.Context(command), name="ablator", indent=1)


def on_page_markdown(markdown: str, page, **_) -> str:
    return markdown.replace(MARKER, cli_markdown()) if MARKER in markdown else markdown
