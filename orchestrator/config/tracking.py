"""Where studies live and how they are tracked (W&B)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .strict import Strict


class Storage(Strict):
    root: str = Field(default="studies", description="Study dirs go to <root>/<name>; shared on a cluster.")


class WandbSettings(Strict):
    mode: Literal["auto", "online", "offline", "disabled"] = Field(
        default="auto", description="auto: online when logged in, else offline; disabled: W&B is never imported."
    )
    project: str | None = Field(default=None, description="W&B project (default: <name>-ablations).")
    entity: str | None = Field(default=None, description="W&B entity (team or user); default: your own.")


class Tracking(Strict):
    wandb: WandbSettings = Field(default=WandbSettings(), description="Weights & Biases: one run per trial.")
