"""The study's budget (``budget: {trial_hours: H}``, ``{gpu_hours: H}`` or ``{max_trials: N}``) and how a trial
is charged to it.

Every trial of the ablation stage counts: its variants (adaptive seeds included), inference-only variants
and the determinism repeat. The tuning stage does not (it has its own budget, ``tuning.n_trials``). A trial
costs its measured wall time (every attempt, restarts included) times what it reserved: on a study that
reserves GPUs, the GPUs of all its workers (the share recorded in its record: 0.25 for a quarter of one
GPU), so ``trial_hours`` are GPU-hours; on a CPU study, its workers, so ``trial_hours`` are worker-hours.
``gpu_hours`` insists on GPU-hours, and a study that reserves no GPU cannot measure it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..ledger import ABLATION, TrialRecord
from .resources import Resources
from .strict import Strict

KINDS = ("trial_hours", "gpu_hours", "max_trials")


class Budget(Strict):
    trial_hours: float | None = Field(
        default=None, gt=0, description="Trial-hours the ablation stage may use: GPU-hours (workers x GPUs x hours) "
        "on a study that reserves GPUs, worker-hours (workers x hours) on a CPU study.")
    gpu_hours: float | None = Field(
        default=None, gt=0, description="GPU-hours (workers x GPUs x hours) the ablation stage may use; only "
        "for a study that reserves GPUs.")
    max_trials: int | None = Field(default=None, ge=1, description="Trials the ablation stage may start.")

    @model_validator(mode="after")
    def _one(self) -> Budget:
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(KINDS)}" + (f" (given: {', '.join(given)})"
                                                                            if given else ""))
        return self

    @property
    def kind(self) -> Literal["trial_hours", "gpu_hours", "max_trials"]:
        return next(k for k in KINDS if getattr(self, k) is not None)

    @property
    def limit(self) -> float:
        return float(getattr(self, self.kind))

    def text(self, resources: Resources) -> str:
        """The budget in words: '2.5 GPU-hours', '40 trials'."""
        if self.kind == "max_trials":
            return f"{self.max_trials} trials"
        return f"{self.limit:g} {unit(resources)}"


def uses_gpus(resources: Resources) -> bool:
    return bool(resources.gpus_per_trial or resources.gpu_memory_mb)


def unit(resources: Resources) -> str:
    """What a trial-hour is on this study: GPU-hours where trials reserve GPUs, else worker-hours."""
    return "GPU-hours" if uses_gpus(resources) else "worker-hours"


def rate(resources: Resources, record: TrialRecord | None = None) -> float:
    """What one hour of a trial costs: its GPUs (all workers; the share its record says it got) on a GPU
    study, else its workers."""
    if uses_gpus(resources):
        got = getattr(record, "gpus", None) if record is not None else None
        return float(got) if got is not None else resources.gpus_per_trial * resources.workers_per_trial
    return float(resources.workers_per_trial)


def trial_cost(record: TrialRecord, resources: Resources) -> float:
    """A trial's trial-hours so far (GPU- or worker-hours): its measured time, every attempt."""
    return record.duration_s / 3600 * rate(resources, record)


def spent(records: list[TrialRecord], resources: Resources) -> tuple[float, int]:
    """(trial-hours, trials finished) the ablation stage has used so far."""
    ablation = [r for r in records if r.stage == ABLATION]
    return sum(trial_cost(r, resources) for r in ablation), sum(r.finished for r in ablation)
