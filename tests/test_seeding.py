"""Seeding a trial: each trial's seeding applies its own reproducibility setting in a reused worker, torch is
seeded when a trial imports it late, and a trial that never imports torch does not load it."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest
import torch
import yaml

from orchestrator.ledger import Study
from orchestrator.trial import set_seeds
from tests.conftest import BIN, on_cluster

LATE = """
import sys
from orchestrator.trial import rng_state, set_rng_state, set_seeds

set_seeds(7, threads=1)
import importlib.util
assert importlib.util.find_spec("torch")  # a library checking that torch is there, without importing it
assert "torch" not in sys.modules and "torch" not in rng_state()
import torch  # the trainable's own import, after its seeding
print(torch.rand(2).tolist(), torch.get_num_threads())
saved = rng_state()
first = torch.rand(2).tolist()
set_seeds(8)  # the next trial in this worker: torch is loaded, seeded at once
set_rng_state(saved)  # a restore puts torch's state back with the others
print(first == torch.rand(2).tolist())
"""


def test_deterministic_algorithms_follow_each_trials_setting_in_a_reused_worker():
    before = torch.are_deterministic_algorithms_enabled()
    try:
        set_seeds(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        set_seeds(1, deterministic=False)  # the next trial in the same worker process
        assert not torch.are_deterministic_algorithms_enabled()
        set_seeds(2, deterministic=False)
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before)


@pytest.mark.slow
def test_torch_imported_after_the_seeding_is_seeded_as_if_it_had_been_loaded_before():
    out = subprocess.run([sys.executable, "-c", LATE], capture_output=True, text=True, check=True).stdout.split("\n")
    torch.manual_seed(7)
    assert out[0] == f"{torch.rand(2).tolist()} 1"
    assert out[1] == "True"


FREE = """
import random
import sys


def run(ctx):  # never imports torch
    ctx.report({"score": random.random(), "torch_loaded": float("torch" in sys.modules)})
"""


@pytest.mark.slow
def test_a_trainable_that_never_imports_torch_runs_in_workers_that_never_load_it(tmp_path, ray_address):
    root = tmp_path / "project"  # a user's project, launched from there as its own Ray job (fresh workers)
    root.mkdir()
    (root / "freetrain.py").write_text(FREE)
    (root / "study.yaml").write_text(yaml.safe_dump({
        "name": "torch-free", "trainable": "freetrain:run", "metrics": {"primary": {"name": "score", "mode": "max"}},
        "baseline": {"x": 1}, "components": {"x": {"kind": "training", "description": "x", "removal": {"x": 0}}},
        "seeds": [0, 1], "tracking": {"wandb": {"mode": "disabled"}}, "tuning": {"enabled": False}}))
    done = subprocess.run([str(BIN / "ablator"), "launch", "study.yaml", *on_cluster(ray_address)], cwd=root,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    records = Study(root / "studies" / "torch-free").records()
    assert len(records) == 4
    for rec in records:
        assert rec.state == "COMPLETED" and rec.final["torch_loaded"] == 0.0, rec
        assert rec.final["score"] == random.Random(rec.seed).random()  # python's generator seeded all the same
