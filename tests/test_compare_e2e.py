"""`ablator compare` on real studies: a simulated trainable launched from a temporary project directory (no
PYTHONPATH), its file edited between two studies so that one component's effect is gone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN, on_cluster

pytestmark = pytest.mark.slow

TRAINABLE = '''
import random


def run(ctx):
    cfg = ctx.config
    shared = random.Random(ctx.seed).gauss(0, 0.01)  # what a seed does to every variant
    noise = shared + random.Random(f"{ctx.seed}-{cfg['attn']}-{cfg['norm']}").gauss(0, 0.004)
    ctx.report({"score": 1.0 + 0.1 * cfg["attn"] + 0.05 * cfg["norm"] + noise})
'''

STUDY = """\
name: {name}
trainable: simtrain:run
metrics:
  primary: {{name: score, mode: max}}
baseline: {{attn: 1.0, norm: 1.0}}
components:
  attn: {{kind: structural, description: attention term, removal: {{attn: 0.0}}}}
  norm: {{kind: structural, description: norm term, removal: {{norm: 0.0}}}}
seeds: {seeds}
analysis: {{min_effect: 0.02, n_bootstrap: 100}}
tracking: {{wandb: {{mode: disabled}}}}
tuning: {{schedule: manual}}
"""


def ablator(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(BIN / "ablator"), *args], cwd=cwd, env={**env, "COLUMNS": "250"},
                          capture_output=True, text=True, timeout=600, check=False)


def launch(project: Path, name: str, seeds: str, address: str) -> Path:
    (project / f"{name}.yaml").write_text(STUDY.format(name=name, seeds=seeds))
    done = ablator(project, "launch", f"{name}.yaml", *on_cluster(address))
    assert done.returncode == 0, done.stdout + done.stderr
    return project / "studies" / name


def test_compare_gates_a_removed_effect_and_passes_other_noise(tmp_path, ray_address):
    project = tmp_path / "project"
    project.mkdir()
    (project / "simtrain.py").write_text(TRAINABLE)
    commit = ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "1"]
    for args in (["init", "-q"], ["add", "simtrain.py"], commit):
        subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)
    old = launch(project, "main", "[0, 1, 2, 3]", ray_address)
    rerun = launch(project, "rerun", "[10, 11, 12, 13]", ray_address)
    (project / "simtrain.py").write_text(TRAINABLE.replace(" + 0.05 * cfg[\"norm\"]", ""))
    edited = launch(project, "edited", "[0, 1, 2, 3]", ray_address)

    # the edit removed norm's effect: exit 1 naming the row
    gate = ablator(project, "compare", str(old), str(edited))
    assert gate.returncode == 1, gate.stdout + gate.stderr
    assert "FAIL" in gate.stdout and "component norm" in gate.stdout.split("FAIL", 1)[1]
    assert "with uncommitted changes (simtrain.py)" in gate.stdout  # the edit, not committed
    data = json.loads(ablator(project, "compare", str(old), str(edited), "--json").stdout)
    rows = {r["name"]: r for r in data["rows"]}
    assert rows["norm"]["call"] == "changed" and rows["norm"]["essential_lost"]
    assert rows["norm"]["diff"] == pytest.approx(-0.05, abs=0.01)
    assert rows["attn"]["call"] == "same"
    assert data["pairing"] == "unpaired"
    page = project / "cmp.html"
    assert ablator(project, "compare", str(old), str(edited), "--html", str(page)).returncode == 1
    text = page.read_text()
    assert "data:image/png;base64," in text and "http" not in text.split("<body>", 1)[1].split("<script>")[0]
    assert text.index("norm") < text.index("attn")  # changed rows first
    # only the failing kind decides
    assert ablator(project, "compare", str(old), str(edited), "--fail-on", "unclear").returncode == 1
    paired = json.loads(ablator(project, "compare", str(old), str(edited), "--json", "--paired").stdout)
    assert {r["name"]: r["n_shared"] for r in paired["rows"]} == {"norm": 4, "attn": 4}

    # the same code with other noise (other seeds): no row changed, exit 0
    same = ablator(project, "compare", str(old), str(rerun))
    assert same.returncode == 0, same.stdout + same.stderr
    assert "PASS" in same.stdout and "seeds differ" in same.stdout

    # bad input: exit 2 with the path and why, no traceback
    nothing = ablator(project, "compare", str(old), str(tmp_path))
    assert nothing.returncode == 2 and str(tmp_path) in nothing.stderr and "not a study directory" in nothing.stderr
    damaged = tmp_path / "damaged"
    shutil.copytree(old, damaged)
    (damaged / "verdicts.json").write_text('{"layout": 2, "study": ')
    broken = ablator(project, "compare", str(old), str(damaged))
    assert broken.returncode == 2 and str(damaged / "verdicts.json") in broken.stderr
    assert "not valid JSON" in broken.stderr
    other_metric = tmp_path / "other_metric"
    shutil.copytree(old, other_metric)
    cfg = other_metric / "config.yaml"
    cfg.write_text(cfg.read_text().replace("name: score", "name: loss"))
    (other_metric / "verdicts.json").unlink()
    metric = ablator(project, "compare", str(old), str(other_metric))
    assert metric.returncode == 2 and "primary metric" in metric.stderr
    unfinished = tmp_path / "unfinished"
    shutil.copytree(old, unfinished)
    cfg = unfinished / "config.yaml"
    cfg.write_text(cfg.read_text().replace("seeds: [0, 1, 2, 3]", "seeds: [0, 1, 2, 3, 4]"))  # seed 4 never ran
    refused = ablator(project, "compare", str(old), str(unfinished))
    assert refused.returncode == 2 and "not finished" in refused.stderr and "--partial" in refused.stderr
    interim = ablator(project, "compare", str(old), str(unfinished), "--partial")
    assert interim.returncode == 0 and "new study is not finished" in interim.stdout
    wrong = ablator(project, "compare", str(old), str(edited), "--fail-on", "everything")
    assert wrong.returncode == 2 and "--fail-on everything" in wrong.stderr
    for run in (nothing, broken, metric, refused, wrong):
        assert "Traceback" not in run.stderr
