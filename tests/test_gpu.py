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
