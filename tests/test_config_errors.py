"""Bad study configs: exit code 2, one readable block naming the file, the line and the field."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.config import load_config
from orchestrator.errors import ConfigError

GOOD = """\
name: demo
trainable: components.quickstart:run
metrics:
  primary: {name: val_acc, mode: max}
baseline:
  model: {layers: mlp, dropout: 0.1}
  train: {epochs: 2}
components:
  hidden:
    kind: structural
    description: hidden layers
    removal: {model.layers: identity}
  dropout:
    kind: training
    description: dropout
    removal: {model.dropout: 0.0}
design:
  type: one_at_a_time
  pairs: [[hidden, dropout]]
seeds: [0, 1, 2]
"""

# (case, text replacement, dotted field in the message, line of the mistake)
BAD = [
    ("unknown key", ("seeds: [0, 1, 2]", "seeds: [0, 1, 2]\nsedes: 3"), "sedes", 21),
    ("wrong type", ("epochs: 2}", "epochs: 2}\nresources: {cpus_per_trial: lots}"), "resources.cpus_per_trial", 8),
    ("removal path not in baseline", ("removal: {model.dropout: 0.0}", "removal: {model.dropot: 0.0}"),
     "components.dropout.removal.model.dropot", 16),
    ("pair names an unknown component", ("pairs: [[hidden, dropout]]", "pairs: [[hidden, attention]]"),
     "design.pairs.0.1", 19),
    ("empty seeds", ("seeds: [0, 1, 2]", "seeds: []"), "seeds", 20),
    ("bad metric mode", ("mode: max}", "mode: maximum}"), "metrics.primary.mode", 4),
    ("bad module:function", ("components.quickstart:run", "components.quickstart:train"), "trainable", 2),
    ("module does not import", ("components.quickstart:run", "no_such_pkg.mod:run"), "trainable", 2),
    ("malformed YAML", ("  train: {epochs: 2}", "  train: {epochs: 2"), "", 8),
    ("bad kind", ("kind: training", "kind: optimizer"), "components.dropout.kind", 14),
    ("bad sequential design", ("seeds: [0, 1, 2]", "seeds: {initial: 3, max: 10, design: cheap}"),
     "seeds.design: Input should be 'lean' or 'thorough'", 20),
]


def validate_changed(tmp_path, change: tuple[str, str]):
    """`ablator validate` of GOOD with one text replaced: (the file, the CLI's result)."""
    path = tmp_path / "study.yaml"
    assert change[0] in GOOD
    path.write_text(GOOD.replace(change[0], change[1], 1))
    return path, CliRunner().invoke(app, ["validate", str(path)])


@pytest.mark.parametrize("case,change,field,line", BAD, ids=[b[0] for b in BAD])
def test_bad_config_exits_2_naming_field_and_line(tmp_path, case, change, field, line):
    path, result = validate_changed(tmp_path, change)
    assert result.exit_code == 2, result.output
    out = result.output
    assert f"{path}:{line}" in out, out
    assert field in out
    assert "Traceback" not in out


def test_good_config_validates_and_prints_the_plan(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(GOOD)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "4 variants x 3 seeds = 12 trials" in result.output


def test_dry_run_prints_plan_and_runs_nothing(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(GOOD.replace("seeds: [0, 1, 2]", f"seeds: [0, 1]\nstorage: {{root: {tmp_path}/studies}}"))
    result = CliRunner().invoke(app, ["launch", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "no-hidden+dropout" in result.output and "= 8 trials" in result.output
    assert not (tmp_path / "studies").exists()


def test_schema_is_json_schema_with_the_config_fields():
    result = CliRunner().invoke(app, ["schema"])
    schema = json.loads(result.output)
    assert {"name", "trainable", "components", "seeds", "design"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["AdaptiveSeeds"]["properties"]["design"]["enum"] == ["lean", "thorough"]


def test_every_problem_is_listed_at_once(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(GOOD.replace("mode: max}", "mode: up}").replace("seeds: [0, 1, 2]", "seeds: []"))
    with pytest.raises(Exception) as info:
        load_config(path)
    text = str(info.value)
    assert "metrics.primary.mode" in text and f"{path}:20" in text


def test_random_and_factorial_designs_plan(tmp_path):
    import yaml

    from orchestrator import plan
    from orchestrator.config import parse_config

    data = yaml.safe_load(GOOD)
    data["components"]["third"] = {"kind": "training", "description": "x", "removal": {"train.epochs": 1}}
    data["design"] = {"type": "full_factorial"}
    full = plan.variants(parse_config(data))
    assert len(full) == 8 and full[0].name == "baseline"
    data["design"] = {"type": "random", "total_trials": 15, "seed": 3}
    first = plan.variants(parse_config(data))
    again = plan.variants(parse_config(data))
    assert first == again and len(first) == 5 and first[0].name == "baseline"
    data["design"]["seed"] = 4
    assert plan.variants(parse_config(data)) != first  # another study seed draws other variants
    trials = plan.ablation_trials(parse_config(data))
    # every variant runs the same seeds, so comparisons are paired
    by_variant = {}
    for t in trials:
        by_variant.setdefault(t.variant, []).append(t.seed)
    assert all(seeds == [0, 1, 2] for seeds in by_variant.values())


def test_unreachable_cluster_address_exits_2_with_a_message(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(GOOD + f"storage: {{root: {tmp_path}/studies}}\n")
    result = CliRunner().invoke(app, ["launch", str(path), "--address", "127.0.0.1:1"])
    assert result.exit_code == 2, result.output
    assert "could not join the Ray cluster at 127.0.0.1:1" in result.output


# ------------------------------------------------ strict YAML: what used to be accepted silently

# (case, text replacement, words in the message, line of the mistake)
SILENT = [
    ("component block copied, not renamed", ("  dropout:\n    kind: training", "  hidden:\n    kind: training"),
     "duplicate key: 'hidden' is already given on line 9", 13),
    ("top-level key given twice", ("seeds: [0, 1, 2]", "seeds: [0, 1, 2]\nseeds: [4]"),
     "duplicate key: 'seeds' is already given on line 20", 21),
    ("booleans as seeds", ("seeds: [0, 1, 2]", "seeds: [true, false]"), "holds a boolean, not a number", 20),
    ("yes as max_failures", ("seeds: [0, 1, 2]", "seeds: [0, 1, 2]\nfault_tolerance: {max_failures: yes}"),
     "is a boolean, not a number", 21),
]


@pytest.mark.parametrize("case,change,words,line", SILENT, ids=[s[0] for s in SILENT])
def test_silently_accepted_configs_now_exit_2_with_their_line(tmp_path, case, change, words, line):
    path, result = validate_changed(tmp_path, change)
    assert result.exit_code == 2, result.output
    assert f"{path}:{line}" in result.output and words in result.output, result.output
    assert "Traceback" not in result.output


def test_booleans_stay_booleans_where_a_flag_is_meant(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(GOOD + "tuning: {enabled: no}\n")
    assert load_config(path).tuning.enabled is False


def test_alias_bomb_is_refused_with_a_clear_error(tmp_path):
    bomb = "x0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10))
    path = tmp_path / "study.yaml"
    path.write_text(bomb + GOOD)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "alias bomb" in result.output and "Traceback" not in result.output


def test_a_few_aliases_still_work(tmp_path):
    path = tmp_path / "study.yaml"
    text = GOOD.replace("  train: {epochs: 2}", "  train: &train {epochs: 2}\n  eval: *train")
    path.write_text(text)
    assert load_config(path).baseline["eval"] == {"epochs": 2}


def test_tiers_order_and_its_former_name_stages_read_alike(tmp_path):
    tiers = "tiers:\n  {key}:\n    - {{name: synthetic, overrides: {{train.epochs: 1}}}}\n    - {{name: real}}\n"
    read = []
    for key in ("order", "stages"):
        path = tmp_path / f"{key}.yaml"
        path.write_text(GOOD + tiers.format(key=key))
        read.append(load_config(path).model_dump()["tiers"])
    assert read[0] == read[1] and [t["name"] for t in read[0]["order"]] == ["synthetic", "real"]
    path = tmp_path / "both.yaml"
    path.write_text(GOOD + tiers.format(key="order") + tiers.format(key="stages").replace("tiers:\n", ""))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "tiers.stages: unknown key" in result.output, result.output


def test_a_trainable_that_cannot_be_imported_is_refused_only_where_it_runs(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(GOOD.replace("components.quickstart:run", "not_a_module_here:run"))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and f"{path}:2" in result.output, result.output
    assert "trainable: cannot import module 'not_a_module_here'" in result.output
    assert load_config(path, import_trainable=False).trainable == "not_a_module_here:run"
    bad_form = GOOD.replace("components.quickstart:run", "no_function_named")
    path.write_text(bad_form)
    with pytest.raises(ConfigError, match="must look like 'package.module:function'"):
        load_config(path, import_trainable=False)
