"""The metrics a study reports and decides on."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .strict import Strict


class Metric(Strict):
    name: str = Field(description="Key of the metric in the trainable's `ctx.report({...})`.", examples=["val_acc"])
    mode: Literal["max", "min"] = Field(description="Whether larger (max) or smaller (min) is better.")


class Metrics(Strict):
    primary: Metric = Field(description="The metric verdicts and tuning are decided on.")
    secondary: list[Metric] = Field(
        default=[], description="Metrics reported beside it; flagged when one moves against the primary."
    )
    groups: dict[str, list[str]] = Field(
        default={}, description="Named metric groups, one console table each.",
        examples=[{"alignment": ["mirex", "onset_f"], "quality": ["root", "thirds"]}],
    )
