"""What varies and which variants run: components, the design, seeds, tiers, the sweep, the analysis."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from .search_space import SearchSpace
from .strict import Strict


class Component(Strict):
    kind: Literal["structural", "training", "inference"] = Field(
        description="Where the component lives: the model (structural), its training, or inference only "
        "(inference variants reuse the baseline's checkpoints and train nothing)."
    )
    description: str = Field(min_length=1, description="One line: what this component is.")
    removal: dict[str, Any] = Field(
        min_length=1, description="Removal contract: dotted baseline paths and their removed values.",
        examples=[{"model.dropout": 0.0}, {"model.norm": "identity"}],
    )
    tune: dict[str, SearchSpace] = Field(
        default={}, description="Search space tuned if this component survives."
    )
    alternatives: dict[str, dict[str, Any]] = Field(
        default={},
        description="Other choices than the baseline's: name -> override set (e.g. batch: {model.norm: batch}).",
    )

    @field_validator("description")
    @classmethod
    def _one_line(cls, v: str) -> str:
        if "\n" in v.strip():
            raise ValueError("description must be one line")
        return v.strip()


class Design(Strict):
    type: Literal["one_at_a_time", "random", "full_factorial", "grid"] = Field(
        default="one_at_a_time",
        description="one_at_a_time: each removal, alternative and factor level (each branch) alone (plus pairs); "
        "random: ABLATOR's random search over the joint space within total_trials; full_factorial (ABLATOR's "
        "grid, also accepted as grid): every combination.",
    )
    pairs: list[tuple[str, str]] = Field(default=[], description="Interaction pairs to remove together.")
    total_trials: int | None = Field(
        default=None, ge=2, description="random: trial budget (variants = total_trials // seeds)."
    )
    seed: int = Field(default=0, description="random: the study seed that draws the variants.")
    max_variants: int = Field(
        default=256, ge=2, description="full_factorial: refuse a design with more variants than this."
    )

    @field_validator("type")
    @classmethod
    def _grid_is_full_factorial(cls, v: str) -> str:
        return "full_factorial" if v == "grid" else v


class AdaptiveSeeds(Strict):
    initial: int = Field(ge=1, description="Seeds every variant runs first.")
    max: int = Field(ge=1, description="Most seeds an undecided variant may reach.")
    start: int = Field(default=0, description="The first seed; seeds are start, start+1, ...")
    design: Literal["lean", "thorough"] = Field(
        default="lean",
        description="The sequential design (looks from 4 seeds): lean (default) runs the fewest trials, and on "
        "noisy studies leaves more components inconclusive; thorough runs more trials (about 0.68x fixed "
        "seeds' instead of 0.60x) and keeps noisy studies' decisions.",
    )

    @model_validator(mode="after")
    def _order(self) -> AdaptiveSeeds:
        if self.max < self.initial:
            raise ValueError("max must be at least initial")
        return self


class Analysis(Strict):
    alpha: float = Field(default=0.05, gt=0, lt=1, description="Family-wise error rate (Holm across components).")
    min_effect: float = Field(
        default=0.0, ge=0,
        description="Practical minimum effect in the primary metric's units: essential/harmful need the "
        "interval beyond it, negligible needs equivalence within +-min_effect (0: no equivalence test).",
    )
    n_bootstrap: int = Field(default=10000, ge=100, description="Bootstrap resamples for the BCa intervals.")
    reference_result: float | None = Field(
        default=None, description="A single published best run, checked against the seed spread."
    )
    check_determinism: bool = Field(
        default=False, description="Run the baseline's first seed twice and flag any difference."
    )


class Tier(Strict):
    name: str = Field(description="Name of the tier (e.g. synthetic, real).")
    overrides: dict[str, Any] = Field(default={}, description="Dotted baseline paths set for this tier.")


class Tiers(Strict):
    """Synthetic-first: later tiers run only if the first separates the variants."""

    order: list[Tier] = Field(
        min_length=2, validation_alias=AliasChoices("order", "stages"),
        description="The tiers, cheapest first (`stages`, its former name, is still read).")
    min_decided: int = Field(
        default=1, ge=1, description="A tier separates the variants when this many verdicts are decided."
    )


class Sweep(Strict):
    """The same ablation at several values of one baseline knob (e.g. data.noise_sigma)."""

    path: str = Field(description="Dotted baseline path of the knob.", examples=["data.noise_sigma"])
    values: list[Any] = Field(min_length=1, description="Values the whole ablation runs at.")
