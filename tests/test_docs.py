"""The documentation site: the reference pages list every CLI command and the public Python API, and
`mkdocs build --strict` (no broken link or anchor) renders them. Needs the docs extra (`.[docs]`)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import pytest
import typer

import orchestrator
import orchestrator.blocks
from orchestrator.cli import app
from tests.conftest import REPO

COMMANDS = sorted(typer.main.get_command(app).commands)
API_PAGE = REPO / "docs/reference/api.md"
#: the public API: what a trainable imports
PUBLIC = ([f"orchestrator.{name}" for name in orchestrator.__all__]
          + [f"orchestrator.blocks.{name}" for name in orchestrator.blocks.__all__]
          + ["orchestrator.integrations.lightning.AblatorCallback",
             "orchestrator.integrations.huggingface.AblatorTrainerCallback"])


def _hook():
    spec = importlib.util.spec_from_file_location("cli_reference", REPO / "docs/hooks/cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_has_every_command_with_its_options():
    hook = _hook()
    page = (REPO / "docs/reference/cli.md").read_text()
    assert hook.MARKER in page
    markdown = hook.cli_markdown()
    assert sorted(re.findall(r"^### `ablator (\S+)`$", markdown, re.MULTILINE)) == COMMANDS
    assert "`--launch <list[str]>`" in markdown and "`--dry-run`" in markdown


def test_the_api_reference_names_the_public_api():
    directives = set(re.findall(r"^::: (\S+)$", API_PAGE.read_text(), re.MULTILINE))
    blocks = "orchestrator.blocks" in directives  # the module's page documents its __all__
    missing = [name for name in PUBLIC
               if not (blocks and name.startswith("orchestrator.blocks."))
               and name not in directives and _defined_at(name) not in directives]
    assert missing == []


def _defined_at(name: str) -> str:
    """Where a public name is defined (`orchestrator.TrialContext` is imported lazily from `orchestrator.trial`,
    which is where the reference's generator finds it)."""
    module, attr = name.rsplit(".", 1)
    obj = getattr(importlib.import_module(module), attr)
    return f"{obj.__module__}.{obj.__qualname__}"


@pytest.mark.slow
def test_mkdocs_build_strict_renders_every_command_and_the_api(tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cli = (site / "reference/cli/index.html").read_text()
    assert [c for c in COMMANDS if f'id="ablator-{c}"' not in cli] == []
    assert "every planned trial COMPLETED" in cli, "the exit codes (from README.md) are missing"
    ids = set(re.findall(r'id="(orchestrator[\w.]*)"', (site / "reference/api/index.html").read_text()))
    # a name is documented where it is defined or where its package exports it
    assert [name for name in PUBLIC if not any(
        i == name or (i.startswith(name.rsplit(".", 1)[0] + ".") and i.endswith("." + name.rsplit(".", 1)[1]))
        for i in ids)] == []
