"""ABLATOR's whole SearchSpace language: sampling, grid, one_at_a_time, tuning, nested analysis, convert.

Nested truth (tests/support/simulated_factors.py NESTED_TRUTH): sgd beats adam by 1.0 at momentum 0,
momentum adds 2.0 per unit under sgd only, lr has no effect in either branch.
"""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
import yaml

from orchestrator import levels, plan, space_sampling
from orchestrator.analysis.factors import analyse_levels
from orchestrator.analysis.records import group_records
from orchestrator.config import SearchSpace, parse_config
from orchestrator.convert import convert
from orchestrator.errors import ConfigError
from orchestrator.ledger.verdicts_json import Factor, Verdicts
from orchestrator.tuning.search import make_sampler
from orchestrator.tuning.tuning_plan import ask_value, sample, tuning_plan
from tests.support.simulated_factors import NESTED_TRUTH, nested_study, records

OPT = "train.optimizer"
SGD = {"name": "sgd", "arguments": {"lr": (1e-3, 1e-1), "momentum": (0.0, 0.9)}}
ADAM = {"name": "adam", "arguments": {"lr": (1e-4, 1e-2)}}


def _config(design: dict, seeds=(0, 1, 2)):
    return parse_config(nested_study(design, list(seeds), NESTED_TRUTH))


def _inside(value: dict) -> str:
    """The branch a sampled optimizer lies in; fails when it lies in none."""
    branch = SGD if value["name"] == "sgd" else ADAM
    assert set(value["arguments"]) <= {"lr", "momentum"}, value
    for key, (lo, hi) in branch["arguments"].items():
        assert lo <= value["arguments"][key] <= hi, value
    if value["name"] == "adam":
        assert value["arguments"].get("momentum") is None, value  # adam sets momentum to null
    return value["name"]


def test_random_design_samples_inside_each_branch_both_branches_and_reproducibly():
    config = _config({"type": "random", "total_trials": 90, "seed": 5})
    vs = plan.variants(config)
    assert len(vs) == 30
    names = [_inside(dict(v.levels)[OPT]) for v in vs[1:]]
    assert 8 <= names.count("sgd") <= 22 and 8 <= names.count("adam") <= 22  # subspaces picked uniformly
    assert [v.name for v in plan.variants(_config({"type": "random", "total_trials": 90, "seed": 5}))] == \
        [v.name for v in vs]
    assert [v.name for v in plan.variants(_config({"type": "random", "total_trials": 90, "seed": 6}))] != \
        [v.name for v in vs]
    sgd = next(v for v in vs[1:] if dict(v.levels)[OPT]["name"] == "sgd")
    over = plan.variant_overrides(config, sgd)  # a branch is set leaf by leaf; momentum lands on 4 bins
    assert set(over) == {f"{OPT}.name", f"{OPT}.arguments.lr", f"{OPT}.arguments.momentum"}
    assert over[f"{OPT}.arguments.momentum"] in (0.0, 0.3, 0.6, 0.9)
    resolved = config.resolved([], over)
    assert resolved["train"]["epochs"] == 1 and resolved["train"]["optimizer"]["name"] == "sgd"


def test_grid_expands_as_ablators_grid_sampler_does():
    space = SearchSpace.model_validate({"subspaces": [
        {"value_range": ["1", "4"], "value_type": "int", "n_bins": 10},  # ints deduplicated: 1..4
        {"categorical_values": [7, 8]},
        {"sub_configuration": {"name": "sgd", "arguments": {"lr": {"value_range": [0.1, 0.3], "n_bins": 3},
                                                            "m": {"categorical_values": [0, 1]}}}}]})
    got = space_sampling.grid(space)
    assert got[:6] == [1, 2, 3, 4, 7, 8]
    assert got[6:] == [{"name": "sgd", "arguments": {"lr": lr, "m": m}} for lr in (0.1, 0.2, 0.3) for m in (0, 1)]
    # full_factorial (also named grid): the baseline plus every branch combination, 3 bins per range without n_bins
    config = _config({"type": "grid"})
    assert config.design.type == "full_factorial"
    vs = plan.variants(config)
    # sgd: 3 lr x 4 momentum; adam: 3 lr, one of them (0.001) the baseline itself
    assert len(vs) == levels.factorial_size(config) == 1 + 3 * 4 + 2
    assert {dict(v.levels)[OPT]["name"] for v in vs[1:]} == {"sgd", "adam"}


def test_one_at_a_time_sweeps_each_branch_and_each_range_inside_it_alone():
    config = _config({"type": "one_at_a_time"})
    vs = plan.variants(config)[1:]
    sgd = [dict(v.levels)[OPT]["arguments"] for v in vs if dict(v.levels)[OPT]["name"] == "sgd"]
    adam = [dict(v.levels)[OPT]["arguments"] for v in vs if dict(v.levels)[OPT]["name"] == "adam"]
    # sgd's reference: lr at the baseline's 0.001 (inside its range), momentum at its grid's middle
    assert {"lr": 0.001, "momentum": 0.6} in sgd
    moved = [a for a in sgd if a != {"lr": 0.001, "momentum": 0.6}]
    assert all((a["lr"] == 0.001) != (a["momentum"] == 0.6) for a in moved)  # one range moved at a time
    assert {a["momentum"] for a in sgd} == {0.0, 0.3, 0.6, 0.9}
    assert all(a["momentum"] is None for a in adam) and 0.001 not in {a["lr"] for a in adam}  # the baseline's own


def test_nested_factors_ground_truth_over_replicates():
    reps, alpha = 60, 0.05
    config = _config({"type": "random", "total_trials": 120, "seed": 2}, seeds=(0, 1, 2, 3))
    covered = right_sign = false_lr = 0
    for rep in range(reps):
        group = group_records(records(config, rep))["default"]
        f = analyse_levels(group, config, alpha, 0.0)["factors"]
        assert set(f) == {OPT, f"{OPT}[sgd].arguments.lr", f"{OPT}[sgd].arguments.momentum",
                          f"{OPT}[adam].arguments.lr"}  # no momentum factor where adam has none
        branch, momentum = f[OPT], f[f"{OPT}[sgd].arguments.momentum"]
        assert branch.kind == "categorical" and set(branch.levels) == {"sgd"}
        assert branch.baseline_value == "adam" and momentum.branch == "sgd"
        assert all(math.isfinite(x) for x in [*momentum.ci, momentum.effect, branch.effect])
        right_sign += branch.levels["sgd"].effect > 0
        covered += momentum.ci[0] <= 2.0 <= momentum.ci[1]
        false_lr += f[f"{OPT}[adam].arguments.lr"].p < alpha
        assert momentum.n < group_n(group)  # estimated on sgd's trials only
    tol = 3 * math.sqrt(alpha * (1 - alpha) / reps)
    assert right_sign == reps
    assert covered / reps >= 1 - alpha - tol
    assert false_lr / reps <= alpha + tol


def group_n(group) -> int:
    return sum(len(v.values("score")) for v in group.variants.values())


def test_one_at_a_time_branch_effect_is_measured_at_its_ranges_origins():
    config = _config({"type": "one_at_a_time"}, seeds=range(6))
    f = analyse_levels(group_records(records(config, 0))["default"], config, 0.05, 0.0)["factors"]
    lo, hi = f[OPT].levels["sgd"].ci
    assert lo <= 1.0 <= hi and f[OPT].levels["sgd"].effect > 0  # sgd +1.0 at momentum 0
    lo, hi = f[f"{OPT}[sgd].arguments.momentum"].ci
    assert lo <= 2.0 <= hi


def test_tuning_samples_a_branch_and_only_its_own_ranges_define_by_run():
    config = _config({"type": "random", "total_trials": 30})
    momentum = Factor(kind="numeric", unit="per unit", path=OPT, significant=True, p_holm=0.001)
    verdicts = Verdicts(study="x", primary={"name": "score", "mode": "max"}, alpha=0.05, min_effect=0.0,
                        design="random", factors={f"{OPT}[sgd].arguments.momentum": momentum})
    tplan = tuning_plan(config, verdicts)
    assert list(tplan.params) == [OPT] and tplan.params[OPT].sources == ["factors"]
    ostudy = optuna.create_study(direction="maximize", sampler=make_sampler(0, 30))
    seen = set()
    for _ in range(30):
        trial = ostudy.ask()
        values = tplan.suggest(trial)
        name = _inside(values[OPT])
        seen.add(name)
        assert all(k.startswith((f"{OPT}#", f"{OPT}[{name}]")) for k in trial.params), trial.params
        assert tplan.decode(trial.params) == values  # a resumed trial gets the same values back
        over = tplan.overrides(config, values)
        ostudy.tell(trial, float(name == "sgd") + 2 * (over.get(f"{OPT}.arguments.momentum") or 0.0))
    assert seen == {"sgd", "adam"}
    best = ostudy.best_trial.params
    assert best[f"{OPT}#branch"] == "sgd"
    # plain categories come back as they are (value_type's float default is for ranges only)
    assert sample(SearchSpace(categorical_values=["relu", "tanh"]), "act", lambda name, d: "tanh") == "tanh"
    assert sample(SearchSpace(value_range=["1", "3"], value_type="int"), "n", lambda name, d: 2.0) == 2
    # one grid: a tuned n_bins space takes exactly the ablation's level values
    for raw in ({"value_range": [0.0, 0.9], "n_bins": 4}, {"value_range": [1e-4, 1e-1], "log": True, "n_bins": 4},
                {"value_range": [2, 10], "value_type": "int", "n_bins": 5}):
        space = SearchSpace.model_validate(raw)
        st = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        got = {sample(space, "x", lambda name, d, t=st.ask(): ask_value(t, name, d)) for _ in range(40)}
        assert got == set(space_sampling.bins(space)), (raw, got)


ABLATOR = """
experiment_dir: /tmp/experiments/opt-study
random_seed: 42
device: cpu
amp: false
keep_n_checkpoints: 2
train_config:
  dataset: synthetic
  batch_size: 32
  epochs: 1
  optimizer_config:
    name: adam
    arguments: {lr: 0.001, momentum: null, weight_decay: 0.0}
  scheduler_config: null
model_config:
  name: mlp
  width: 32
  act: relu
total_trials: 12
concurrent_trials: 2
cpus_per_experiment: 1
gpu_mb_per_experiment: 0
search_algo: random
optim_metrics: {val_loss: min, val_acc: max}
search_space:
  train_config.optimizer_config:
    subspaces:
      - sub_configuration:
          name: sgd
          arguments:
            lr: {value_range: ["1e-3", "1e-1"], log: true}
            momentum: {value_range: ["0", "0.9"]}
      - sub_configuration:
          name: adam
          arguments: {lr: {value_range: ["1e-4", "1e-2"]}}
  model_config.width:
    value_range: ["8", "64"]
    value_type: int
  train_config.optimizer_config.arguments.weight_decay:
    value_range: ["0", "0.1"]
  model_config.act:
    categorical_values: [relu, gelu]
"""


def test_convert_maps_every_field_and_plans_total_trials(tmp_path):
    src = tmp_path / "ablator.yaml"
    src.write_text(ABLATOR)
    text = convert(src, "tests.support.simulated_factors:run", gpu_memory_mb=1000)
    data = yaml.safe_load(text)
    header = text.split("\nname:")[0]
    assert "keep_n_checkpoints (2)" in header and "amp (False)" in header and "device ('cpu')" in header
    assert data["baseline"]["train_config"]["epochs"] == 1 and data["baseline"]["model_config"]["width"] == 32
    assert data["metrics"] == {"primary": {"name": "val_loss", "mode": "min"},
                               "secondary": [{"name": "val_acc", "mode": "max"}]}
    assert data["design"] == {"type": "random", "total_trials": 12, "seed": 42} and data["seeds"] == [42]
    assert data["resources"] == {"cpus_per_trial": 1, "max_concurrent": 2}
    assert data["storage"] == {"root": "/tmp/experiments"} and data["name"] == "opt-study"
    config = parse_config(data)
    assert len(plan.ablation_trials(config)) == 12
    weight_decay = config.factors["train_config.optimizer_config.arguments.weight_decay"]
    assert weight_decay.value_type == "float" and weight_decay.value_range == (0.0, 0.1)
    # the GPU share: gpu_mb_per_experiment over --gpu-memory-mb, on a cuda device; tpe runs a tuning stage
    src.write_text(ABLATOR.replace("device: cpu", "device: cuda").replace("gpu_mb_per_experiment: 0",
                                                                          "gpu_mb_per_experiment: 250")
                   .replace("search_algo: random", "search_algo: tpe"))
    data = yaml.safe_load(convert(src, "tests.support.simulated_factors:run", gpu_memory_mb=1000))
    assert data["resources"]["gpus_per_trial"] == 0.25 and data["tuning"]["n_trials"] == 12
    src.write_text(ABLATOR.replace("search_algo: random", "search_algo: grid"))
    with pytest.raises(ConfigError) as refused:  # over design.max_variants: said at search_algo's line
        convert(src, "tests.support.simulated_factors:run")
    line = src.read_text().splitlines().index("search_algo: grid") + 1
    assert refused.value.problems == [("design.type", line, refused.value.problems[0][2])]
    assert "full_factorial has 312 variants, over the cap of 256" in str(refused.value)
    src.write_text(ABLATOR.replace("search_algo: random", "search_algo: grid").replace("  model_config.act:", """\
  model_config.act:
    categorical_values: [relu, gelu]
  unused.act:""").split("  train_config.optimizer_config.arguments.weight_decay:")[0])
    data = yaml.safe_load(convert(src, "tests.support.simulated_factors:run"))
    assert data["design"]["type"] == "full_factorial"
    assert len(plan.variants(parse_config(data))) == levels.factorial_size(parse_config(data))


def _ablator_dump(space: dict) -> dict:
    """A space as ABLATOR's own config dumps write it: every SearchSpace field, null where unset."""
    out = {"value_range": None, "categorical_values": None, "subspaces": None, "sub_configuration": None,
           "value_type": None, "n_bins": None, "log": False, **space}
    if out["subspaces"]:
        out["subspaces"] = [_ablator_dump(s) for s in out["subspaces"]]
    if out["sub_configuration"]:
        out["sub_configuration"] = _dump_branch(out["sub_configuration"])
    return out


def _dump_branch(mapping: dict) -> dict:
    return {k: _ablator_dump(v) if space_sampling.looks_like_space(v) else _dump_branch(v) if isinstance(v, dict) else v
            for k, v in mapping.items()}


def _without_false_log(value):
    if isinstance(value, dict):
        return {k: _without_false_log(v) for k, v in value.items() if not (k == "log" and v is False)}
    return [_without_false_log(v) for v in value] if isinstance(value, list) else value


def test_ablators_own_dumps_with_null_fields_convert_validate_and_plan(tmp_path):
    data = yaml.safe_load(ABLATOR)
    written = {path: _ablator_dump(s) for path, s in data["search_space"].items()}
    adam = written["train_config.optimizer_config"]["subspaces"][1]["sub_configuration"]
    adam["arguments"]["momentum"] = None  # a null leaf of a branch: it sets None
    assert written["model_config.act"]["value_type"] is None and adam["arguments"]["lr"]["n_bins"] is None
    src = tmp_path / "dumped.yaml"
    src.write_text(yaml.safe_dump({**data, "search_space": written}, sort_keys=False))
    out = yaml.safe_load(convert(src, "tests.support.simulated_factors:run"))
    # null means absent: the converted factors are the spaces as written by hand (ABLATOR's log: false
    # aside), the branch's null leaf kept
    expected = data["search_space"]
    expected["train_config.optimizer_config"]["subspaces"][1]["sub_configuration"]["arguments"]["momentum"] = None
    assert _without_false_log(out["factors"]) == expected
    config = parse_config(out)
    assert len(plan.ablation_trials(config)) == 12
    assert config.factors["model_config.act"].categorical_values == ["relu", "gelu"]
    assert config.factors["model_config.width"].value_type == "int"
    # a study config holding the dump's nulls validates as it is, and plans the same variants
    raw = parse_config({**out, "factors": written})
    assert [v.name for v in plan.variants(raw)] == [v.name for v in plan.variants(config)]
    branches = [v for v in plan.variants(raw) if "adam" in v.name]
    assert branches and all(plan.variant_overrides(raw, v)["train_config.optimizer_config.arguments.momentum"]
                            is None for v in branches)
    assert SearchSpace.model_validate({"categorical_values": [1, 2], "value_type": None, "n_bins": None,
                                       "log": None, "subspaces": None}).log is False


def test_sub_configuration_draws_are_plain_values_whatever_their_keys():
    space = SearchSpace.model_validate({"sub_configuration": {"log": {"value_range": [1, 2]}, "n_bins": 3}})
    value = space_sampling.draw(space, np.random.default_rng(0))
    assert set(value) == {"log", "n_bins"} and value["n_bins"] == 3 and 1 <= value["log"] <= 2
    assert space_sampling.flatten("a", value) == {"a.log": value["log"], "a.n_bins": 3}
    assert space_sampling.contains(space, value) and not space_sampling.contains(space, {"log": 5, "n_bins": 3})


@pytest.mark.parametrize("bad,message", [
    ({"value_range": [0, 1], "categorical_values": [1]}, "exactly one of"),
    ({"subspaces": []}, "subspaces must not be empty"),
    ({"value_range": ["1e-3", "ten"]}, "'ten' in value_range is not a number"),
    ({}, "got none"),
])
def test_each_kind_checked(bad, message):
    with pytest.raises(ValueError, match=message):
        SearchSpace.model_validate(bad)
