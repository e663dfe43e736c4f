"""The GPU record of provenance.json: told without importing torch on a CPU build, and the same as torch's."""

import subprocess
import sys

PROBE = """
import json, sys
from orchestrator.provenance import gpus
told = gpus()
imported = "torch" in sys.modules
import torch
count = torch.cuda.device_count() if torch.cuda.is_available() else 0
truth = {"count": count, "models": [torch.cuda.get_device_name(i) for i in range(count)],
         "cuda": torch.version.cuda, "torch": torch.__version__}
gpu_build = bool(torch.version.cuda or torch.version.hip)
print(json.dumps({"told": told, "truth": truth, "imported": imported, "gpu_build": gpu_build}))
"""


def test_gpu_record_matches_torch_and_a_cpu_build_is_told_without_importing_it():
    import json

    out = json.loads(subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout)
    assert out["told"] == out["truth"]
    assert out["imported"] == out["gpu_build"]  # only a CUDA/ROCm build needs torch itself to count devices
