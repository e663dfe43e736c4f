"""The study config: the model a study YAML file validates to, and its cross-checks."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag, ValidationInfo, field_validator, model_validator

from ..paths import apply_overrides
from .budget import Budget, uses_gpus
from .checks import NAME_RE, CrossCheckError, factor_checks, has_path, space_checks
from .design import AdaptiveSeeds, Analysis, Component, Design, Sweep, Tiers
from .metrics import Metrics
from .resources import FaultTolerance, Reproducibility, Resources
from .search_space import SearchSpace
from .strict import Strict
from .tracking import Storage, Tracking
from .trainable import ScriptTrainable, importing, resolve_callable, split_callable
from .tuning import Tuning


class StudyConfig(Strict):
    name: str = Field(description="The study's name; its directory is <storage.root>/<name>.")
    trainable: Annotated[
        Annotated[str, Tag("Function")] | Annotated[ScriptTrainable, Tag("ScriptTrainable")],
        Discriminator(lambda v: "Function" if isinstance(v, str) else "ScriptTrainable"),
    ] = Field(
        description="module:function called with a TrialContext, or {script: train.py, args: [...]}.",
        examples=["components.quickstart:run", {"script": "train.py", "args": ["--epochs", "5"]}])
    evaluate: str | None = Field(
        default=None, description="module:function for inference-only variants (reuses baseline checkpoints)."
    )
    metrics: Metrics = Field(description="The primary metric, secondary metrics and console groups.")
    baseline: dict[str, Any] = Field(description="Free-form config handed to the trainable as ctx.config.")
    components: dict[str, Component] = Field(
        default={}, description="The parts that may be removed, by name (optional when factors are given)."
    )
    design: Design = Field(default=Design(), description="Which variants run.")
    seeds: list[int] | AdaptiveSeeds = Field(
        default=[0, 1, 2], description="Seeds every variant runs (paired), or {initial, max} adaptive seeds.",
        examples=[[0, 1, 2], {"initial": 3, "max": 10}],
    )
    analysis: Analysis = Field(default=Analysis(), description="Statistics of the verdicts.")
    reproducibility: Reproducibility = Field(default=Reproducibility(), description="Determinism of trials.")
    resources: Resources = Field(default=Resources(), description="What each trial needs, and how many run.")
    budget: Budget | None = Field(
        default=None, description="Most the ablation stage may use: trial-hours, GPU-hours or trials; reached, "
        "the study stops (exit 3) with its report, and `ablator resume DIR --budget ...` raises it.",
        examples=[{"trial_hours": 12}, {"gpu_hours": 40}, {"max_trials": 60}])
    fault_tolerance: FaultTolerance = Field(default=FaultTolerance(), description="Restarts and timeouts.")
    storage: Storage = Field(default=Storage(), description="Where study directories live.")
    tracking: Tracking = Field(default=Tracking(), description="Experiment tracking.")
    tuning: Tuning = Field(default=Tuning(), description="The TPE stage over the survivors.")
    tiers: Tiers | None = Field(default=None, description="Synthetic-first tiers (a cheap tier gates the next).")
    sweep: Sweep | None = Field(default=None, description="The same ablation at several values of one knob.")
    factors: dict[str, SearchSpace] = Field(
        default={}, description="Config paths ablated over SearchSpace values; each value is a level."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError("use letters, digits, '-', '_' or '.' (it names a directory)")
        return v

    @field_validator("trainable", "evaluate")
    @classmethod
    def _callable(cls, v: str | ScriptTrainable | None, info: ValidationInfo) -> str | ScriptTrainable | None:
        if isinstance(v, str) and importing(info):
            resolve_callable(v)  # where it runs: the module imports and has the function
        elif isinstance(v, str):
            split_callable(v)  # elsewhere: its form only
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        if isinstance(v, list):
            if not v:
                raise ValueError("give at least one seed")
            if len(set(v)) != len(v):
                raise ValueError("seeds must be distinct")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> StudyConfig:
        errors: list[tuple[tuple, str]] = []
        if not self.components and not self.factors:
            errors.append((("components",), "nothing to vary: give components (parts to remove) or factors "
                                            "(config paths ablated over a SearchSpace), or both"))
        for name, comp in self.components.items():
            for dotted in comp.removal:
                if not has_path(self.baseline, dotted):
                    errors.append(
                        (("components", name, "removal", dotted), f"path '{dotted}' is not in baseline")
                    )
            for dotted, space in comp.tune.items():
                if not has_path(self.baseline, dotted):
                    errors.append((("components", name, "tune", dotted), f"path '{dotted}' is not in baseline"))
                else:
                    errors += space_checks(self.baseline, dotted, space, ("components", name, "tune", dotted))
        errors += factor_checks(self)
        for dotted, space in self.tuning.search_space.items():
            if not has_path(self.baseline, dotted):
                errors.append((("tuning", "search_space", dotted), f"path '{dotted}' is not in baseline"))
            else:
                errors += space_checks(self.baseline, dotted, space, ("tuning", "search_space", dotted))
        for i, pair in enumerate(self.design.pairs):
            for j, comp in enumerate(pair):
                if comp not in self.components:
                    errors.append(
                        (("design", "pairs", i, j), f"unknown component '{comp}' (known: {', '.join(self.components)})")
                    )
            if pair[0] == pair[1]:
                errors.append((("design", "pairs", i), "a pair needs two different components"))
        if self.design.type == "random" and self.design.total_trials is None:
            errors.append((("design", "total_trials"), "the random design needs total_trials"))
        if self.sweep is not None and not has_path(self.baseline, self.sweep.path):
            errors.append((("sweep", "path"), f"path '{self.sweep.path}' is not in baseline"))
        if self.tiers is not None:
            for i, tier in enumerate(self.tiers.order):
                for dotted in tier.overrides:
                    if not has_path(self.baseline, dotted):
                        errors.append(
                            (("tiers", "order", i, "overrides", dotted), f"path '{dotted}' is not in baseline")
                        )
        if self.budget is not None and self.budget.gpu_hours is not None and not uses_gpus(self.resources):
            errors.append((("budget", "gpu_hours"), "cannot be measured: the study reserves no GPU "
                                                    "(resources.gpus_per_trial is 0); give trial_hours "
                                                    "(worker-hours on a CPU study) or max_trials"))
        if errors:
            raise CrossCheckError(errors)
        return self

    # ------------------------------------------------------------ helpers

    @property
    def seed_list(self) -> list[int]:
        """The seeds every variant runs (the initial ones for adaptive seeds)."""
        if isinstance(self.seeds, AdaptiveSeeds):
            return list(range(self.seeds.start, self.seeds.start + self.seeds.initial))
        return list(self.seeds)

    @property
    def tier_names(self) -> list[str | None]:
        """The tiers' names in the order they run; [None] for a study without tiers."""
        return [t.name for t in self.tiers.order] if self.tiers is not None else [None]

    @property
    def has_levels(self) -> bool:
        """True when the study has alternatives or factors besides plain removals."""
        return bool(self.factors) or any(c.alternatives for c in self.components.values())

    def resolved(self, removed: list[str] | tuple[str, ...], extra: dict[str, Any] | None = None) -> dict:
        """The baseline with the removal contracts of `removed` (and `extra` overrides) applied."""
        overrides: dict[str, Any] = {}
        for name in removed:
            overrides.update(self.components[name].removal)
        overrides.update(extra or {})
        return apply_overrides(self.baseline, overrides)


def json_schema() -> dict:
    """JSON Schema of the study config, for editors."""
    return StudyConfig.model_json_schema()
