"""launch/github/compare.yml, the CI example of `ablator compare`: parsed and checked for the structure GitHub
Actions needs, and its shell steps run here as written (the artifact round trip is a directory move)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import BIN, on_cluster

WORKFLOW = Path(__file__).resolve().parents[1] / "launch" / "github" / "compare.yml"

TRAINABLE = '''
import random


def run(ctx):
    noise = random.Random(ctx.seed).gauss(0, 0.01) + random.Random(f"{ctx.seed}{ctx.config}").gauss(0, 0.003)
    ctx.report({"acc": 0.5 + 0.2 * ctx.config["head"] + 0.1 * ctx.config["aug"] + noise})
'''

STUDY = """\
name: ci-gate
trainable: gated:run
metrics:
  primary: {name: acc, mode: max}
baseline: {head: 1.0, aug: 1.0}
components:
  head: {kind: structural, description: the head, removal: {head: 0.0}}
  aug: {kind: training, description: augmentation, removal: {aug: 0.0}}
seeds: [0, 1, 2]
analysis: {min_effect: 0.03, n_bootstrap: 100}
tracking: {wandb: {mode: disabled}}
tuning: {schedule: manual}
"""


def workflow() -> dict:
    doc = yaml.safe_load(WORKFLOW.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def step(doc: dict, name: str) -> dict:
    (found,) = [s for s in doc["jobs"]["study"]["steps"] if s.get("name") == name]
    return found


def test_the_workflow_runs_on_main_and_pull_requests_and_gates_only_pull_requests():
    doc = workflow()
    assert doc["on"]["push"]["branches"] == ["main"] and "pull_request" in doc["on"]
    assert {"CI_STUDY", "STUDY_DIR", "ABLATOR_ARGS"} <= set(doc["env"])
    steps = doc["jobs"]["study"]["steps"]
    assert all(("uses" in s) != ("run" in s) for s in steps)
    store, fetch = step(doc, "Store the study from main"), step(doc, "Fetch the study stored from main")
    gate = step(doc, "Compare with main")
    assert store["if"] == "github.event_name == 'push'"
    assert fetch["if"] == gate["if"] == "github.event_name == 'pull_request'"
    assert store["with"]["name"] in fetch["run"] and "--dir baseline" in fetch["run"]
    assert store["with"]["path"] == "${{ env.STUDY_DIR }}"
    assert gate["run"].startswith("ablator compare baseline \"$STUDY_DIR\"")
    assert "compare.yml" in fetch["run"]  # it finds runs of itself: the file name it is copied under
    names = [s.get("name") for s in steps]
    assert names.index("Run the study") < names.index("Compare with main")


def run_step(doc: dict, name: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    full = {**base, **{k: str(v) for k, v in doc["env"].items()}, **env,
            "PATH": f"{BIN}:{os.environ['PATH']}", "COLUMNS": "200"}
    return subprocess.run(["bash", "-e", "-c", step(doc, name)["run"]], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=600, check=False)


@pytest.mark.slow
def test_the_workflow_commands_gate_a_changed_effect_locally(tmp_path, ray_address):
    doc = workflow()
    project = tmp_path / "project"
    (project / "ci").mkdir(parents=True)
    (project / "gated.py").write_text(TRAINABLE)
    (project / doc["env"]["CI_STUDY"]).write_text(STUDY)
    args = {"ABLATOR_ARGS": " ".join(on_cluster(ray_address))}  # the session's head, not a local Ray per run

    main = run_step(doc, "Run the study", project, **args)  # on main
    assert main.returncode == 0, main.stdout + main.stderr
    shutil.move(project / doc["env"]["STUDY_DIR"], project / "baseline")  # upload, then download, the artifact

    (project / "gated.py").write_text(TRAINABLE.replace(" + 0.1 * ctx.config[\"aug\"]", ""))  # the PR
    pr = run_step(doc, "Run the study", project, **args)
    assert pr.returncode == 0, pr.stdout + pr.stderr
    gate = run_step(doc, "Compare with main", project)
    assert gate.returncode == 1, gate.stdout + gate.stderr
    assert "component aug" in gate.stdout.split("FAIL", 1)[1] and (project / "compare.html").is_file()

    shutil.rmtree(project / doc["env"]["STUDY_DIR"])
    shutil.copytree(project / "baseline", project / doc["env"]["STUDY_DIR"])  # a PR that changes nothing
    same = run_step(doc, "Compare with main", project)
    assert same.returncode == 0, same.stdout + same.stderr
