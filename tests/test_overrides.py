"""Command-line overrides: `ablator launch study.yaml key.path=value ...`."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml
from rich.console import Console

from orchestrator.config import load_config
from orchestrator.errors import ConfigError
from orchestrator.overrides import parse
from orchestrator.session import launch
from tests.conftest import REPO, write_study

QUICKSTART = REPO / "configs/quickstart.yaml"


def test_values_are_yaml_and_dotted_keys_resolve():
    cfg = load_config(QUICKSTART, parse([
        "seeds=[0,1]",
        "analysis.min_effect=0.02",
        "analysis.n_bootstrap=1000",  # a schema field the YAML does not spell out
        "components.dropout.removal.model.dropout=0.05",  # 'model.dropout' is one key
        "+baseline.model.extra=true",
        "tuning.schedule=manual",
    ]))
    assert cfg.seeds == [0, 1]
    assert cfg.analysis.min_effect == 0.02 and cfg.analysis.n_bootstrap == 1000
    assert cfg.components["dropout"].removal == {"model.dropout": 0.05}
    assert cfg.baseline["model"]["extra"] is True
    assert cfg.tuning.schedule == "manual"


def test_deleting_a_key_restores_its_default():
    cfg = load_config(QUICKSTART, parse(["~analysis"]))
    assert cfg.analysis.min_effect == 0.0


@pytest.mark.parametrize("arg, field, message", [
    ("baseline.train.lrr=0.1", "baseline.train.lrr", "no key 'lrr'"),
    ("~nothing", "nothing", "no key 'nothing'"),
    ("baseline.train.lr.x=1", "baseline.train.lr.x", "is not a mapping"),
])
def test_a_path_that_does_not_exist_names_the_argument(arg, field, message):
    with pytest.raises(ConfigError) as err:
        load_config(QUICKSTART, parse([arg]))
    assert err.value.problems[0][:2] == (field, f"argument '{arg}'")
    assert message in err.value.problems[0][2]


def test_schema_errors_point_at_the_argument_not_the_file_line():
    with pytest.raises(ConfigError) as err:
        load_config(QUICKSTART, parse(["analysis.alpha=2", "analysis.min_efect=0.1"]))
    where = {field: line for field, line, _ in err.value.problems}
    assert where["analysis.alpha"] == "argument 'analysis.alpha=2'"
    assert where["analysis.min_efect"] == "argument 'analysis.min_efect=0.1'"


@pytest.mark.slow
def test_cli_rejects_a_malformed_override_with_exit_2():
    proc = subprocess.run(["ablator", "validate", str(QUICKSTART), "seeds"], capture_output=True,
                          text=True, cwd=REPO)
    assert proc.returncode == 2
    assert "argument 'seeds'" in proc.stderr and "key.path=value" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = subprocess.run(["ablator", "validate", str(QUICKSTART), "analysis.alpha=[1"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "not valid YAML" in proc.stderr


@pytest.mark.slow
def test_launch_records_the_resolved_config_and_the_overrides(ray_cluster, tmp_path):
    path = write_study(tmp_path, REPO / "tests/faulty.yaml", name="overridden")
    args = ["seeds=[7]", "baseline.train.epochs=2", "+baseline.note=from the command line",
            "components={flaky: {kind: training, description: raises once, "
            "removal: {fault.mode: raise_once}}}"]
    study = launch(path, console=Console(quiet=True), overrides=parse(args))
    records = study.records()
    assert {r.trial_id for r in records} == {"baseline-seed7", "no-flaky-seed7"}
    assert all(r.state == "COMPLETED" for r in records)
    assert [row["step"] for row in study.history("baseline-seed7")] == [0, 1]
    stored = study.config_path.read_text()
    assert all(f"#   {a}" in stored for a in args)
    assert yaml.safe_load(stored)["baseline"]["note"] == "from the command line"
    assert load_config(study.config_path).seeds == [7]  # the study dir alone says what ran
    provenance = json.loads((study.path / "provenance.json").read_text())
    assert provenance["overrides"] == args
