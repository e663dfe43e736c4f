"""`resources.gpu_memory_mb`: a single-worker trial's GPU memory as a fraction of a GPU.

Ray reserves GPUs in fractions, not memory, so the request becomes the fraction of the
smallest GPU the cluster reports (NVML, read on every alive node that has GPUs). The same
fraction of a bigger GPU is more memory, so with mixed sizes no GPU is ever overcommitted;
the bigger GPUs keep unused room (pin trials to them with custom_per_trial
`accelerator_type:...` and a fraction of your own to use it). A request above the smallest
GPU is refused rather than placed on a GPU too small for it.
"""

from __future__ import annotations

import math

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ..config import Resources
from ..errors import ResourceError

#: Ray's resource precision: fractions are rounded up to it (never below the request)
PRECISION = 10_000


@ray.remote(num_cpus=0)
def _gpu_sizes_mb() -> list[float]:
    """MiB of every GPU on this node (NVML sees them all, whatever CUDA_VISIBLE_DEVICES says)."""
    from ray._private.thirdparty import pynvml

    pynvml.nvmlInit()
    try:
        return [pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(i)).total / 2**20
                for i in range(pynvml.nvmlDeviceGetCount())]
    finally:
        pynvml.nvmlShutdown()


def cluster_gpus_mb(nodes: list[dict]) -> dict[str, list[float]]:
    """Node id -> MiB of each of its GPUs, for every alive node whose Ray resources include GPUs."""
    ids = [n["NodeID"] for n in nodes if n.get("Alive") and n["Resources"].get("GPU", 0) > 0]
    refs = [_gpu_sizes_mb.options(scheduling_strategy=NodeAffinitySchedulingStrategy(i, soft=False)).remote()
            for i in ids]
    try:
        return dict(zip(ids, ray.get(refs, timeout=120)))
    except (ray.exceptions.RayError, TimeoutError) as exc:
        raise ResourceError(f"resources.gpu_memory_mb: could not read the GPUs' memory with NVML on every node "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0]}); give gpus_per_trial "
                            "instead") from None


def with_gpu_fraction(res: Resources, gpus_mb: dict[str, list[float]], n_nodes: int) -> Resources:
    """`res` with gpus_per_trial set to gpu_memory_mb's fraction of the smallest GPU (exit 2 if none fits)."""
    sizes = [mb for node in gpus_mb.values() for mb in node]
    ask = f"resources.gpu_memory_mb: a trial asks for {res.gpu_memory_mb:g} MiB of GPU memory"
    if not sizes:
        raise ResourceError(f"Infeasible trial resources: {ask}, but the Ray cluster has no GPU ({n_nodes} "
                            "node(s)). Remove gpu_memory_mb to run on CPU, or connect to a cluster with GPUs")
    smallest = min(sizes)
    if res.gpu_memory_mb > smallest:
        raise ResourceError(f"Infeasible trial resources: {ask}, but the smallest GPU of the Ray cluster has "
                            f"{smallest:.0f} MiB (the smallest GPU decides, so that no GPU is overcommitted). "
                            "Ask for whole GPUs with resources.gpus_per_trial instead")
    fraction = math.ceil(res.gpu_memory_mb / smallest * PRECISION) / PRECISION
    return res.model_copy(update={"gpus_per_trial": fraction})
