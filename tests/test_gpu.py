"""On a GPU machine: `ctx.device` is the GPU Ray assigned, and a CUDA error fails only its own trials.

After a device-side assert a process's CUDA context is dead; worker isolation must keep
that process from running any later trial. Marked `gpu`: skipped where torch sees no CUDA.
"""

from __future__ import annotations

import pytest

from tests.test_cluster_exec import ablator, records

pytestmark = pytest.mark.gpu

TRAINABLE = '''
import torch


def run(ctx):
    x = torch.ones(4, device=ctx.device)
    if ctx.config["mode"] == "assert":
        x[torch.tensor([99], device=ctx.device)] = 1.0  # a device-side assert: the CUDA context dies
        torch.cuda.synchronize()
    for epoch in range(2):
        ctx.report({"score": float((x * (epoch + 1)).sum().item()), "on_cuda": float(x.is_cuda)})
'''


@pytest.mark.slow
def test_ctx_device_is_cuda_and_a_device_assert_fails_only_its_trials(tmp_path):
    import yaml

    root = tmp_path / "project"
    root.mkdir()
    (root / "gputrain.py").write_text(TRAINABLE)
    (root / "study.yaml").write_text(yaml.safe_dump({
        "name": "gpu", "trainable": "gputrain:run",
        "metrics": {"primary": {"name": "score", "mode": "max"}},
        "baseline": {"mode": "ok", "other": 1},
        "components": {"a": {"kind": "training", "description": "a", "removal": {"other": 0}},
                       "boom": {"kind": "training", "description": "boom", "removal": {"mode": "assert"}}},
        "seeds": [0, 1, 2, 3], "fault_tolerance": {"max_failures": 1},
        "resources": {"gpus_per_trial": 0.25, "cpus_per_trial": 1},
        "tracking": {"wandb": {"mode": "disabled"}}, "tuning": {"enabled": False},
    }))
    result = ablator(root, "launch", "study.yaml")
    assert result.returncode == 1, result.stdout + result.stderr
    recs = records(root, "gpu")
    failed = {t for t, r in recs.items() if r.state == "FAILED"}
    assert failed == {f"no-boom-seed{s}" for s in range(4)}
    completed = [r for r in recs.values() if r.state == "COMPLETED"]
    assert len(completed) == 8 and all(r.final["on_cuda"] == 1.0 for r in completed)
    assert all(r.gpu_ids for r in completed)


SHARER = '''
import time
from pathlib import Path

import torch


def run(ctx):
    met = Path(ctx.config["rendezvous"])
    (met / ctx.trial_id).touch()
    deadline = time.time() + 120  # two trials meet only if Ray placed them on the one GPU together
    while len(list(met.glob("*"))) < 2 and time.time() < deadline:
        time.sleep(0.2)
    x = torch.ones(4, device=ctx.device) * ctx.config["w"]
    ctx.report({"score": float(x.sum().item()), "met": float(len(list(met.glob("*"))) >= 2),
                "on_cuda": float(x.is_cuda)})
'''


@pytest.mark.slow
def test_gpu_memory_mb_becomes_a_fraction_of_the_real_gpu_and_trials_share_it(tmp_path):
    import math

    import torch
    import yaml

    total_mib = torch.cuda.get_device_properties(0).total_memory / 2**20
    ask = int(total_mib // 4)  # four trials fit on one GPU
    root = tmp_path / "project"
    root.mkdir()
    (root / "met").mkdir()
    (root / "sharetrain.py").write_text(SHARER)
    (root / "study.yaml").write_text(yaml.safe_dump({
        "name": "gmem", "trainable": "sharetrain:run",
        "metrics": {"primary": {"name": "score", "mode": "max"}},
        "baseline": {"w": 1.0, "rendezvous": str(root / "met")},
        "components": {"a": {"kind": "training", "description": "a", "removal": {"w": 0.5}}},
        "seeds": [0, 1], "resources": {"gpu_memory_mb": ask, "cpus_per_trial": 1},
        "tracking": {"wandb": {"mode": "disabled"}}, "tuning": {"enabled": False},
    }))
    result = ablator(root, "launch", "study.yaml")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    # NVML's total (what the fraction is taken of) can differ from CUDA's by the driver's reserve
    fraction = float(out.split("gpus_per_trial ")[1].split()[0])
    assert math.ceil(ask / total_mib * 1e4) / 1e4 - 0.002 <= fraction <= 0.25 + 0.002, out
    recs = records(root, "gmem")
    assert len(recs) == 4 and all(r.state == "COMPLETED" for r in recs.values()), {t: r.errors for t, r in recs.items()}
    assert all(r.final["on_cuda"] == 1.0 and r.final["met"] == 1.0 and r.gpu_ids for r in recs.values())
