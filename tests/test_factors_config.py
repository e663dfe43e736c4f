"""Alternatives and factors in the config and the plan: validation with file:line, variants, seeds."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from orchestrator import plan
from orchestrator.cli import app
from orchestrator.config import parse_config

GOOD = """\
name: levels
trainable: tests.support.simulated_factors:run
metrics:
  primary: {name: score, mode: max}
baseline:
  model: {norm: layer, act: relu, width: 32, drop: 0.1}
  truth: {}
components:
  norm:
    kind: structural
    description: normalisation layer
    removal: {model.norm: none}
    alternatives:
      batch: {model.norm: batch}
      rms: {model.norm: rms}
  drop:
    kind: training
    description: dropout
    removal: {model.drop: 0.0}
factors:
  model.width: {value_range: [16, 128], value_type: int, log: true, n_bins: 4}
  model.act: {categorical_values: [relu, gelu, tanh]}
design:
  type: one_at_a_time
seeds: [0, 1, 2]
"""

# (case, text replacement, dotted field in the message, line of the mistake, words in the message)
BAD = [
    ("alternative path missing from the baseline", ("rms: {model.norm: rms}", "rms: {model.nrom: rms}"),
     "components.norm.alternatives.rms.model.nrom", 15, "not in baseline"),
    ("alternative named like the removal", ("      rms: {model.norm: rms}", "      removed: {model.norm: rms}"),
     "components.norm.alternatives.removed", 15, "named like the baseline or the removal"),
    ("alternative that is the removal", ("rms: {model.norm: rms}", "rms: {model.norm: none}"),
     "components.norm.alternatives.rms", 15, "removal contract itself"),
    ("numeric range for a string value", ("model.act: {categorical_values: [relu, gelu, tanh]}",
                                          "model.act: {value_range: [1, 3], value_type: int}"),
     "factors.model.act.value_range", 22, "numeric range"),
    ("int range with fractional bounds", ("value_range: [16, 128]", "value_range: [16.5, 128]"),
     "factors.model.width.value_range", 21, "whole-number bounds"),
    ("factor path missing from the baseline", ("model.width: {", "model.widht: {"),
     "factors.model.widht", 21, "not in baseline"),
    ("full factorial over the cap", ("type: one_at_a_time", "type: full_factorial\n  max_variants: 20"),
     "design.type", 24, "over the cap of 20"),
    ("log range for a zero baseline", ("width: 32, drop", "width: 0, drop"),
     "factors.model.width.log", 21, "positive baseline value"),
]


@pytest.mark.parametrize("case,change,field,line,words", BAD, ids=[b[0] for b in BAD])
def test_bad_levels_exit_2_with_file_line_and_field(tmp_path, case, change, field, line, words):
    path = tmp_path / "study.yaml"
    assert change[0] in GOOD
    path.write_text(GOOD.replace(change[0], change[1], 1))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert f"{path}:{line}" in result.output, result.output
    assert field in out and words in out, out
    assert "Traceback" not in result.output


def test_good_config_validates(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(GOOD)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output


def _config(**design):
    data = yaml.safe_load(GOOD)
    if design:
        data["design"] = design
    return parse_config(data)


def test_one_at_a_time_has_each_alternative_and_each_other_level_alone():
    config = _config()
    names = [v.name for v in plan.variants(config)]
    assert names == ["baseline", "no-norm", "no-drop", "norm=batch", "norm=rms",
                     "width=16", "width=64", "width=128", "act=gelu", "act=tanh"]
    by_name = {t.variant: t for t in plan.ablation_trials(config)}
    assert by_name["norm=batch"].overrides == {"model.norm": "batch"}
    assert by_name["norm=batch"].alternatives == {"norm": "batch"} and by_name["norm=batch"].removed == []
    assert by_name["width=64"].levels == {"model.width": 64}
    resolved = config.resolved(by_name["width=64"].removed, by_name["width=64"].overrides)
    assert resolved["model"] == {"norm": "layer", "act": "relu", "width": 64, "drop": 0.1}


def test_random_design_samples_the_joint_space_within_the_budget_over_the_same_seeds():
    config = _config(type="random", total_trials=60, seed=7)
    variants = plan.variants(config)
    assert variants == plan.variants(config)  # the study seed fixes the draw
    assert len(variants) == 60 // 3 and variants[0].name == "baseline"
    assert len({v.key for v in variants}) == len(variants)
    assert any(v.alternatives for v in variants) and any(v.removed for v in variants)
    widths = {dict(v.levels).get("model.width") for v in variants} - {None}
    assert widths <= {16, 64, 128} and widths  # n_bins: the grid's levels
    trials = plan.ablation_trials(config)
    assert len(trials) <= 60
    seeds = {}
    for t in trials:
        seeds.setdefault(t.variant, []).append(t.seed)
    assert all(s == [0, 1, 2] for s in seeds.values())
    for t in trials:  # a variant never both removes and replaces a component
        assert not (set(t.removed) & set(t.alternatives))


def test_random_design_draws_continuous_values_without_n_bins():
    data = yaml.safe_load(GOOD)
    data["factors"]["model.drop"] = {"value_range": [0.0, 0.5], "value_type": "float"}
    data["design"] = {"type": "random", "total_trials": 90, "seed": 1}
    variants = plan.variants(parse_config(data))
    assert len({v.name for v in variants}) == len(variants)  # names (and trial ids) stay unique
    values = [dict(v.levels).get("model.drop") for v in variants]
    drawn = [x for x in values if x is not None]
    assert len(set(drawn)) > 20 and all(0.0 <= x <= 0.5 for x in drawn)


def test_full_factorial_crosses_every_level():
    config = _config(type="full_factorial")
    variants = plan.variants(config)
    # norm: baseline/batch/rms/removed; drop: on/removed; width: 32,16,64,128; act: 3 levels
    assert len(variants) == 4 * 2 * 4 * 3
    assert len({v.name for v in variants}) == len(variants)
