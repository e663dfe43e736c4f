"""The SearchSpace language and `ablator convert` through the `ablator` command, from a user's project.

Each test writes the user's trainable and config into a temporary project directory and runs the
installed `ablator` script there (no PYTHONPATH): bad spaces are refused with file:line and field
(exit 2), an ABLATOR config converts and validates, and a factor-only study with nested factors
runs end to end on local Ray (W&B offline) through its report and tuning stage.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from orchestrator.ledger import Study
from orchestrator.tracking.offline import read_runs
from tests.conftest import BIN, on_cluster

TRAINABLE = '''
import math
import random


def run(ctx):
    """sgd beats adam by 1.0 at momentum 0; momentum +2.0 per unit under sgd only; +0.5 per doubling of width."""
    cfg = ctx.config["train"]
    opt = cfg["optimizer"]
    y = 10.0 + random.Random(ctx.seed).gauss(0, 1) + 0.5 * math.log2(cfg["width"] / 32)
    y += 0.2 * random.Random(repr((ctx.seed, opt, cfg["width"]))).gauss(0, 1)
    if opt["name"] == "sgd":
        y += 1.0 + 2.0 * opt["arguments"]["momentum"]
    ctx.report({"score": y, "loss": -y})
'''

STUDY = """\
name: nested
trainable: mytrain:run
metrics:
  primary: {name: score, mode: max}
  secondary: [{name: loss, mode: min}]
baseline:
  train:
    optimizer: {name: adam, arguments: {lr: 0.001, momentum: null}}
    width: 32
factors:
  train.optimizer:
    subspaces:
      - sub_configuration:
          name: sgd
          arguments:
            lr: {value_range: ["1e-3", "1e-1"], log: true}
            momentum: {value_range: [0.0, 0.9]}
      - sub_configuration:
          name: adam
          arguments:
            lr: {value_range: ["1e-4", "1e-2"], log: true}
  train.width:
    value_range: [8, 128]
    value_type: int
    log: true
design: {type: random, total_trials: 48, seed: 1}
seeds: [0, 1, 2]
tracking: {wandb: {mode: offline, project: nested-test}}
tuning: {n_trials: 4, confirm_seeds: [100, 101]}
"""


def project(tmp_path: Path, study: str = STUDY) -> Path:
    root = tmp_path / "project"
    root.mkdir(exist_ok=True)
    (root / "mytrain.py").write_text(TRAINABLE)
    (root / "study.yaml").write_text(study)
    return root


def ablator(root: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(RAY_AUTH_MODE="disabled", WANDB_MODE="offline", PATH=f"{BIN}:{os.environ['PATH']}")
    return subprocess.run([str(BIN / "ablator"), *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


BAD = [  # (case, text replaced, replacement, the line's marker in the result, field, words)
    ("two kinds in one space", "            momentum: {value_range: [0.0, 0.9]}",
     "            momentum: {value_range: [0.0, 0.9], categorical_values: [0.5]}", "categorical_values: [0.5]",
     "factors.train.optimizer.subspaces.0.sub_configuration.arguments.momentum",
     "give exactly one of value_range, categorical_values, subspaces, sub_configuration"),
    ("empty subspaces", "  train.width:\n    value_range: [8, 128]\n    value_type: int\n    log: true",
     "  train.width:\n    subspaces: []", "subspaces: []", "factors.train.width.subspaces",
     "subspaces must not be empty"),
    ("a branch key missing from the baseline", "            momentum: {value_range: [0.0, 0.9]}",
     "            nesterov: {categorical_values: [true, false]}", "nesterov:",
     "factors.train.optimizer.subspaces.0.sub_configuration.arguments.nesterov",
     "path 'train.optimizer.arguments.nesterov' is not in baseline"),
    ("a string that is not a number", '["1e-4", "1e-2"]', '["1e-4", "0.01x"]', "0.01x",
     "factors.train.optimizer.subspaces.1.sub_configuration.arguments.lr.value_range",
     "'0.01x' in value_range is not a number"),
    ("grid over the cap", "design: {type: random, total_trials: 48, seed: 1}",
     "design: {type: grid, max_variants: 20}", "design:", "design.type",
     "full_factorial has 36 variants, over the cap of 20"),
    ("nothing to vary", STUDY[STUDY.index("factors:"):STUDY.index("design:")], "factors: {}\n", "name: nested",
     "components", "nothing to vary"),
]


@pytest.mark.slow
@pytest.mark.parametrize("case,old,new,marker,field,words", BAD, ids=[b[0] for b in BAD])
def test_bad_spaces_exit_2_with_file_line_and_field(tmp_path, case, old, new, marker, field, words):
    assert old in STUDY
    root = project(tmp_path, STUDY.replace(old, new, 1))
    result = ablator(root, "validate", "study.yaml")
    assert result.returncode == 2, result.stdout + result.stderr
    err = " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    line = _line((root / "study.yaml").read_text(), marker)
    assert f"study.yaml:{line} {field}: {words}" in err, err


ABLATOR_CONFIG = """\
experiment_dir: /tmp/experiments/from-ablator
random_seed: 3
train_config:
  dataset: synthetic
  batch_size: 32
  epochs: 1
  optimizer_config:
    name: adam
    arguments: {lr: 0.001, momentum: null}
  scheduler_config: null
  width: 32
model_config:
  name: mlp
metrics_n_batches: 400
total_trials: 10
concurrent_trials: 2
cpus_per_experiment: 1
gpu_mb_per_experiment: 0
optim_metrics:
  score: max
search_space:
  train_config.optimizer_config:
    subspaces:
      - sub_configuration:
          name: sgd
          arguments:
            lr: {value_range: ["1e-3", "1e-1"]}
            momentum: {value_range: ["0", "0.9"]}
      - sub_configuration:
          name: adam
          arguments:
            lr: {value_range: ["1e-4", "1e-2"], log: true}
  train_config.width:
    value_range: ["8", "64"]
    value_type: int
  model_config.name:
    categorical_values: [mlp, cnn]
search_algo: random
"""


@pytest.mark.slow
def test_convert_an_ablator_config_validates_and_plans_total_trials(tmp_path):
    root = project(tmp_path)
    (root / "ablator.yaml").write_text(ABLATOR_CONFIG)
    placeholder = ablator(root, "convert", "ablator.yaml")
    assert placeholder.returncode == 0, placeholder.stderr
    assert "# ABLATOR fields with no counterpart here (left out):" in placeholder.stdout
    assert "metrics_n_batches (400)" in placeholder.stdout
    (root / "converted.yaml").write_text(placeholder.stdout)
    refused = ablator(root, "validate", "converted.yaml")
    assert refused.returncode == 2 and "trainable: cannot import module 'your_module'" in refused.stderr

    converted = ablator(root, "convert", "ablator.yaml", "--trainable", "mytrain:run")
    assert converted.returncode == 0, converted.stderr
    (root / "converted.yaml").write_text(converted.stdout)
    data = yaml.safe_load(converted.stdout)
    assert data["factors"]["train_config.width"] == {"value_range": ["8", "64"], "value_type": "int"}
    checked = ablator(root, "validate", "converted.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "10 variants x 1 seeds = 10 trials" in " ".join(checked.stdout.split())

    (root / "bad.yaml").write_text(ABLATOR_CONFIG.replace('["0", "0.9"]', '["0", "nine"]'))
    bad = ablator(root, "convert", "bad.yaml", "--trainable", "mytrain:run")
    assert bad.returncode == 2 and not bad.stdout and "Traceback" not in bad.stderr
    line = _line(ABLATOR_CONFIG, '["0", "0.9"]')
    assert f"bad.yaml:{line}" in bad.stderr and "'nine' in value_range is not a number" in bad.stderr


@pytest.mark.slow
def test_factor_only_nested_study_end_to_end(tmp_path, ray_address):
    root = project(tmp_path)
    result = ablator(root, "launch", "study.yaml", *on_cluster(ray_address))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    study = root / "studies" / "nested"
    verdicts = json.loads((study / "verdicts.json").read_text())
    factors = verdicts["factors"]
    opt = "train.optimizer"
    assert set(factors) == {opt, f"{opt}[sgd].arguments.lr", f"{opt}[sgd].arguments.momentum",
                            f"{opt}[adam].arguments.lr", "train.width"}
    assert verdicts["components"] == {}
    branch, momentum = factors[opt], factors[f"{opt}[sgd].arguments.momentum"]
    assert branch["kind"] == "categorical" and branch["baseline_value"] == "adam"
    assert branch["levels"]["sgd"]["effect"] > 0
    assert momentum["ci"][0] <= 2.0 <= momentum["ci"][1] and momentum["significant"]
    assert momentum["n"] < branch["n"] == 48 * 3 // 3  # its branch's trials only
    report = (study / "report.md").read_text()
    assert f"{opt}[sgd].arguments.momentum" in report and "### Factors (ranked by importance)" in report
    plots = {p.name for p in (study / "plots").glob("factor_*.png")}
    assert len(plots) == 5, plots
    runs = read_runs(study / "wandb")  # W&B offline: the analysis run's factors table, no components table rows
    rows = [row for pieces in runs.values() for x in pieces if x.job_type == "analysis" for row in x.history]
    assert rows and all(row["factors_table/nrows"] == 5 for row in rows)

    # the tuning stage searches the conditional space the momentum factor lives in, define-by-run
    summary = json.loads((study / "tuning" / "results.json").read_text())
    assert opt in [t["path"] for t in summary["tuned"]]
    ledger = Study(study)
    tuned = [ledger.trial(p.parent.name).read() for p in ledger.trials_dir.glob("tune-*/record.json")]
    assert len(tuned) == 4 and all(r.tuning.params[opt]["name"] in ("sgd", "adam") for r in tuned)
    for r in tuned:  # a branch is set leaf by leaf: adam's leaves the baseline's null momentum, sgd sets it
        values = r.tuning.params[opt]
        assert r.overrides[f"{opt}.name"] == values["name"]
        momentum = r.overrides.get(f"{opt}.arguments.momentum")
        assert momentum is None if values["name"] == "adam" else 0.0 <= momentum <= 0.9
    best = yaml.safe_load((study / "best_config.yaml").read_text())
    assert best["baseline"]["train"]["optimizer"]["name"] in ("sgd", "adam")
    assert "NOTE: this config does not validate" not in (study / "best_config.yaml").read_text()
