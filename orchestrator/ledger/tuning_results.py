"""The tuning stage's results as typed models: its best trial and the confirmation (tuning/results.json).

``BestTrial.line()`` is the one "Best trial" line every place prints (report.md, tuning/report.md,
best_config.yaml's header, the console, ``ablator status``). ``Confirmation`` is the paired comparison
of the best config with the baseline (a ``Comparison``) and what the tuning stage adds to it. Both read
what earlier versions wrote: a confirmation's interval once named ``ci_t``, and fields since dropped.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from .verdicts_json import INCONCLUSIVE, Comparison, Verdict

#: a confirmation's outcome: tuning helped beyond noise, hurt, or neither was shown
Outcome = Literal["helped", "hurt", "inconclusive"]
HELPED, HURT = "helped", "hurt"


def number_text(v: Any) -> str:
    """A tuned value or metric as every tuning text shows it (6 significant digits; nan)."""
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    return str(v)


class BestTrial(BaseModel):
    """The best TPE trial: its id, Optuna number, metric value and tuned values."""

    model_config = ConfigDict(extra="allow")
    trial_id: str
    value: float | None = None
    number: int | None = None
    params: dict[str, Any] = {}
    #: the metric's name (absent from an earlier version's results)
    metric: str | None = None

    def line(self) -> str:
        """"Best trial `tune-0004`: score = 12.5" (markdown; the maximum of noisy draws, not an estimate)."""
        return f"Best trial `{self.trial_id}`: {self.metric or 'value'} = {number_text(self.value)}"


class Confirmation(Comparison):
    """The best config against the baseline over the confirmation seeds (tuned first: + = tuning helped)."""

    model_config = ConfigDict(extra="ignore")  # an earlier version's fields are read, not kept
    method: Literal["paired", "regression"] = "paired"
    verdict: Verdict = INCONCLUSIVE
    outcome: Outcome = INCONCLUSIVE
    tuned_values: dict[str, float] = {}
    baseline_values: dict[str, float] = {}
    tuned_trials: dict[str, str] = {}
    baseline_trials: dict[str, str] = {}
    reused_baseline: list[int] = []
    alpha: float = 0.05
    min_effect: float = 0.0
    removed: list[str] = []

    @model_validator(mode="before")
    @classmethod
    def _earlier_interval(cls, data: Any) -> Any:
        if isinstance(data, dict) and "ci" not in data and "ci_t" in data:
            return {**data, "ci": data["ci_t"]}
        return data
