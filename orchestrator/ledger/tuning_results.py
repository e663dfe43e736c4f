"""The tuning stage's results as typed models: its best trial and the confirmation (tuning/results.json).

``BestTrial.line()`` is the one "Best trial" line every place prints (report.md, tuning/report.md,
best_config.yaml's header, the console, ``ablator status``). ``Confirmation`` is the paired comparison
of the best config with the baseline (a ``Comparison``) and what the tuning stage adds to it. Both read
what earlier versions wrote: a confirmation's interval once named ``ci_t``, and fields since dropped.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from ..errors import LedgerDamaged
from .files import read_json
from .verdicts_json import INCONCLUSIVE, Comparison, Verdict

#: the tuning stage's folder in the study directory
TUNING_DIR = "tuning"

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


def results_json(summary: dict) -> dict:
    """The tuning summary as tuning/results.json holds it: its best trial and confirmation dumped."""
    return {k: v.model_dump() if isinstance(v, BaseModel) else v for k, v in summary.items()}


def read_results(study_path: str | Path) -> dict | None:
    """tuning/results.json (None before the stage ran), its best trial and confirmation typed; a study tuned
    by an earlier version has tuning/summary.json. LedgerDamaged names a file that cannot be read."""
    out = Path(study_path) / TUNING_DIR
    path = next((p for p in (out / "results.json", out / "summary.json") if p.is_file()), None)
    results = read_json(path) if path is not None else None
    if not results:
        return results
    try:
        best, conf = results.get("best"), results.get("confirmation")
        results["best"] = best and BestTrial.model_validate({"metric": results.get("metric"), **best})
        results["confirmation"] = conf and Confirmation.model_validate(conf)
    except (ValidationError, AttributeError) as exc:
        raise LedgerDamaged(path, f"not the tuning stage's results ({str(exc).splitlines()[0]})",
                            f"`ablator tune {study_path}` writes them again") from None
    return results
