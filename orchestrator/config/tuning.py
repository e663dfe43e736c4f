"""The tuning stage: when it runs, its budget and search space."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from .search_space import SearchSpace
from .strict import Strict


class ScheduleAt(Strict):
    at: datetime = Field(description="When to run the tuning stage (ISO 8601; UTC when no zone is given).",
                         examples=["2026-12-01T02:00:00Z"])


class Tuning(Strict):
    enabled: bool = Field(default=True, description="Whether the study has a tuning stage at all.")
    schedule: Literal["after_ablation", "manual"] | ScheduleAt = Field(
        default="after_ablation",
        description="after_ablation: in the same driver; manual: `ablator tune DIR` later; {at: TIME}: scheduled.",
    )
    n_trials: int = Field(default=20, ge=1, description="TPE trial budget (more can be added with --n-trials).")
    sampler_seed: int = Field(default=0, description="Seed of the TPE sampler.")
    search_space: dict[str, SearchSpace] = Field(
        default={}, description="Global hyperparameters tuned whatever the verdicts (dotted baseline paths).",
        examples=[{"train.lr": {"value_range": [0.001, 0.05], "value_type": "float", "log": True}}],
    )
    inconclusive: Literal["keep", "remove"] = Field(
        default="keep", description="What to do with inconclusive components: keep as baseline, or remove."
    )
    pruner: Literal["none", "median", "asha"] = Field(
        default="none", description="Stop poor tuning trials early (never ablation trials)."
    )
    trial_seed: int = Field(default=0, description="Training seed of every tuning trial.")
    confirm_seeds: list[int] = Field(
        default=[100, 101, 102], description="Seeds the best config and the baseline are re-run over, paired."
    )
    max_concurrent: int | None = Field(default=None, ge=1, description="Tuning trials at once (default: fits).")
