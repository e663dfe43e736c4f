"""How each trial runs: what it reserves, its restarts and timeouts, its determinism."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .strict import Strict


class Reproducibility(Strict):
    deterministic: bool = Field(
        default=False,
        description="torch deterministic algorithms, CUBLAS_WORKSPACE_CONFIG and cuDNN flags in every trial.",
    )


class Resources(Strict):
    cpus_per_trial: float = Field(
        default=1, gt=0, description="CPUs a trial reserves (also its torch threads); per worker when "
        "workers_per_trial > 1.")
    gpus_per_trial: float = Field(
        default=0, ge=0, description="GPUs a trial reserves; fractions share a device (0.25: four trials per GPU); "
        "per worker when workers_per_trial > 1."
    )
    memory_per_trial: float | None = Field(
        default=None, gt=0, description="GiB of memory a trial reserves; per worker when workers_per_trial > 1.")
    custom_per_trial: dict[str, float] = Field(
        default={}, description="Custom Ray resources a trial needs, e.g. {accelerator_type:A100: 0.01}; per worker."
    )
    gpu_memory_mb: float | None = Field(
        default=None, gt=0,
        description="MiB of GPU memory a single-worker trial needs, instead of gpus_per_trial: converted at "
        "launch to the fraction of the smallest GPU the cluster reports (so no GPU is overcommitted).",
    )
    workers_per_trial: int = Field(
        default=1, ge=1,
        description="Ray workers (ranks) per trial: above 1, each attempt is a group reserved together with "
        "torch.distributed initialised in every worker (gloo on CPU, NCCL on GPU); rank 0 reports and checkpoints.",
    )
    placement: Literal["pack", "spread"] = Field(
        default="pack",
        description="Where a trial's workers go: pack (one node if it fits, else as few as possible) or spread "
        "(one per node where possible).",
    )
    max_concurrent: int | None = Field(default=None, ge=1, description="Trials at once (default: what fits).")
    max_pending: int | None = Field(
        default=None, ge=0,
        description="Trials queued beyond what fits now, so an autoscaler sees the demand (default: as many "
        "as fit).",
    )
    wait_for_nodes: float = Field(
        default=0, ge=0,
        description="Seconds to wait for a node big enough for one trial (an autoscaler adding it) before "
        "failing; 0 fails at once.",
    )

    @model_validator(mode="after")
    def _gpus_fit_the_request(self) -> Resources:
        if self.gpu_memory_mb and self.gpus_per_trial:
            raise ValueError("give either gpu_memory_mb or gpus_per_trial, not both")
        if self.gpu_memory_mb and self.workers_per_trial > 1:
            raise ValueError("gpu_memory_mb is for single-worker trials: with workers_per_trial > 1 give "
                             "gpus_per_trial (per worker)")
        if self.workers_per_trial > 1 and 0 < self.gpus_per_trial < 1:
            raise ValueError(f"gpus_per_trial {self.gpus_per_trial:g} with workers_per_trial > 1: each rank needs "
                             "a GPU of its own (NCCL refuses two ranks on one GPU); give gpus_per_trial >= 1")
        return self


class FaultTolerance(Strict):
    max_failures: int = Field(default=3, ge=0, description="Restarts of a trial before it is FAILED.")
    trial_timeout: float | None = Field(
        default=None, gt=0, description="Seconds of wall time per attempt before it is stopped (a failure)."
    )
    stall_timeout: float | None = Field(
        default=None, gt=0, description="Seconds without a `report` before the attempt is stopped (a failure)."
    )
