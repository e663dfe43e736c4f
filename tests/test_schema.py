"""The JSON Schema of study configs: every field described, and the shipped file current."""

from __future__ import annotations

import json

from orchestrator.config import json_schema
from tests.conftest import REPO

SCHEMA_FILE = REPO / "configs/study.schema.json"


def _fields(schema: dict):
    yield from ((schema.get("title", "StudyConfig"), k, v) for k, v in schema.get("properties", {}).items())
    for name, sub in schema.get("$defs", {}).items():
        yield from ((name, k, v) for k, v in sub.get("properties", {}).items())


def test_every_field_of_the_schema_has_a_description():
    undescribed = [f"{model}.{field}" for model, field, prop in _fields(json_schema())
                   if not prop.get("description")]
    assert undescribed == []


def test_the_schema_file_in_the_repository_is_current():
    # regenerate with: ablator schema > configs/study.schema.json
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema()


def test_example_configs_and_the_docs_turn_the_schema_on():
    for config in sorted((REPO / "configs").glob("*.yaml")):
        assert config.read_text().startswith("# yaml-language-server: $schema=study.schema.json"), config
    page = (REPO / "docs/concepts/study-config.md").read_text()
    assert "# yaml-language-server: $schema=" in page
