"""Study configuration: Pydantic models and YAML loading with file:line errors."""

from __future__ import annotations

import importlib
import math
import re
from datetime import datetime
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from typing_extensions import TypeAliasType

from . import levels, spaces
from .errors import ConfigError
from .overrides import Override
from .overrides import apply as apply_overrides_args
from .paths import apply_overrides, get_path


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_as_number(cls, v: Any, info: ValidationInfo) -> Any:
        """YAML's yes/no/true/false are booleans: never accept one where a number is meant."""
        if _bool_for_number(cls.model_fields[info.field_name].annotation, v):
            what = "is a boolean" if isinstance(v, bool) else "holds a boolean"
            raise ValueError(f"{v!r} {what}, not a number (YAML reads yes/no, true/false, on/off "
                             "as booleans)")
        return v


def _bool_for_number(annotation: Any, value: Any) -> bool:
    """Whether `value` holds a bool where `annotation` wants a number (also inside a list)."""
    if isinstance(value, bool):
        return _accepts(annotation, (int, float)) and not _accepts(annotation, (bool,))
    if isinstance(value, (list, tuple)) and any(isinstance(x, bool) for x in value):
        items = [a for a in _members(annotation) if get_origin(a) in (list, tuple)]
        return any(_accepts(arg, (int, float)) and not _accepts(arg, (bool,))
                   for a in items for arg in get_args(a) if arg is not Ellipsis)
    return False


def _members(annotation: Any) -> list:
    """The members of a union (or the annotation itself), Annotated unwrapped."""
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return [m for a in get_args(annotation) for m in _members(a)]
    if origin is Annotated:
        return _members(get_args(annotation)[0])
    return [annotation]


def _accepts(annotation: Any, types: tuple) -> bool:
    return any(m in types for m in _members(annotation))


# ---------------------------------------------------------------- search space


class SearchSpace(Strict):
    """ABLATOR's SearchSpace language: exactly one of value_range, categorical_values, subspaces,
    sub_configuration (see orchestrator/spaces.py for what each means)."""

    value_type: Literal["int", "float"] = Field(
        default="float", description="Type of the values of a value_range: int or float (ABLATOR's default: float)."
    )
    log: bool = Field(default=False, description="Sample (and bin) the range on a log scale.")
    n_bins: int | None = Field(
        default=None, ge=2, description="Split the range into this many levels (grid, one_at_a_time sweeps)."
    )
    value_range: tuple[float, float] | None = Field(
        default=None, description="Numeric range [low, high] (numbers or numeric strings, as ABLATOR writes them).",
        examples=[[0.001, 0.1], ["1e-4", "1e-2"]],
    )
    categorical_values: list[Any] | None = Field(
        default=None, description="A list of values to choose from, instead of a range.", examples=[["relu", "gelu"]]
    )
    subspaces: list[SearchSpace] | None = Field(
        default=None, description="A union of SearchSpaces of any kind: a subspace is picked (uniformly), then a "
        "value inside it.",
    )
    sub_configuration: dict[str, SubValue] | None = Field(
        default=None, description="A branch: a mapping set leaf by leaf at the factor's path, whose leaves are "
        "plain values or SearchSpaces (keys it does not name keep the baseline's value; null sets None).",
        examples=[{"name": "sgd", "arguments": {"lr": {"value_range": ["1e-4", "1e-1"], "log": True}}}],
    )

    @field_validator("value_range", mode="before")
    @classmethod
    def _numbers(cls, v: Any) -> Any:
        """ABLATOR writes ranges as strings (["1e-4", "1e-2"]): each must read as a number."""
        if isinstance(v, list | tuple):
            for x in v:
                if isinstance(x, str):
                    try:
                        float(x)
                    except ValueError:
                        raise ValueError(f"{x!r} in value_range is not a number") from None
        return v

    @field_validator("value_range")
    @classmethod
    def _range(cls, v: tuple[float, float] | None, info: ValidationInfo) -> tuple[float, float] | None:
        if v is None:
            return v
        lo, hi = v
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"value_range must be finite, got {[lo, hi]}")
        if lo >= hi:
            raise ValueError(f"value_range low {lo:g} must be below high {hi:g}")
        if info.data.get("log") and lo <= 0:
            raise ValueError("log scale needs a positive value_range")
        if info.data.get("value_type") == "int" and any(float(b) != int(b) for b in v):
            raise ValueError(f"value_type int needs whole-number bounds, got {[lo, hi]}")
        return v

    @field_validator("categorical_values", "subspaces", "sub_configuration")
    @classmethod
    def _not_empty(cls, v: Any, info: ValidationInfo) -> Any:
        if v is not None and not v:
            more = " (give at least one SearchSpace)" if info.field_name == "subspaces" else ""
            raise ValueError(f"{info.field_name} must not be empty{more}")
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> SearchSpace:
        given = [k for k in spaces.KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            got = f"got {' and '.join(given)}" if given else "got none"
            raise ValueError(f"give exactly one of {', '.join(spaces.KINDS)} ({got})")
        return self


def _sub_tag(value: Any) -> str:
    if isinstance(value, SearchSpace) or spaces.looks_like_space(value):
        return "Space"
    return "Mapping" if isinstance(value, dict) else "Plain"


#: a sub_configuration leaf: a SearchSpace (a mapping with any of its keys), a nested mapping, or a plain value
SubValue = TypeAliasType("SubValue", Annotated[
    Annotated[SearchSpace, Tag("Space")] | Annotated[dict[str, "SubValue"], Tag("Mapping")]
    | Annotated[Any, Tag("Plain")], Discriminator(_sub_tag)])
SearchSpace.model_rebuild()


# ---------------------------------------------------------------- study parts


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


class Tier(Strict):
    name: str = Field(description="Name of the tier (e.g. synthetic, real).")
    overrides: dict[str, Any] = Field(default={}, description="Dotted baseline paths set for this tier.")


class Tiers(Strict):
    """Synthetic-first: later tiers run only if the first separates the variants."""

    stages: list[Tier] = Field(min_length=2, description="The tiers, cheapest first.")
    min_decided: int = Field(
        default=1, ge=1, description="A tier separates the variants when this many verdicts are decided."
    )


class Sweep(Strict):
    """The same ablation at several values of one baseline knob (e.g. data.noise_sigma)."""

    path: str = Field(description="Dotted baseline path of the knob.", examples=["data.noise_sigma"])
    values: list[Any] = Field(min_length=1, description="Values the whole ablation runs at.")


class ScriptTrainable(Strict):
    """A training script run as a subprocess per attempt; it calls ``TrialContext.from_env()``."""

    script: str = Field(description="Python script, relative to the project directory.", examples=["train.py"])
    args: list[str] = Field(default=[], description="Arguments passed to the script as they are.")
    script_overrides: Literal["none", "hydra"] = Field(
        default="none", description="hydra: also pass every leaf of the trial's config as `key.path=value` "
                                    "(Hydra's override grammar), and hydra.run.dir inside the trial directory.")

    @field_validator("script")
    @classmethod
    def _script(cls, v: str) -> str:
        if Path(v).is_absolute() or not v.endswith(".py"):
            raise ValueError("give a .py file relative to the project directory")
        if not Path(v).is_file():
            raise ValueError(f"no script '{v}' in the project directory {Path.cwd()}")
        return v


NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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
    def _callable(cls, v: str | ScriptTrainable | None) -> str | ScriptTrainable | None:
        if isinstance(v, str):
            resolve_callable(v)
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
                if not _has_path(self.baseline, dotted):
                    errors.append(
                        (("components", name, "removal", dotted), f"path '{dotted}' is not in baseline")
                    )
            for dotted, space in comp.tune.items():
                if not _has_path(self.baseline, dotted):
                    errors.append((("components", name, "tune", dotted), f"path '{dotted}' is not in baseline"))
                else:
                    errors += _space_checks(self.baseline, dotted, space, ("components", name, "tune", dotted))
        errors += factor_checks(self)
        for dotted, space in self.tuning.search_space.items():
            if not _has_path(self.baseline, dotted):
                errors.append((("tuning", "search_space", dotted), f"path '{dotted}' is not in baseline"))
            else:
                errors += _space_checks(self.baseline, dotted, space, ("tuning", "search_space", dotted))
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
        if self.sweep is not None and not _has_path(self.baseline, self.sweep.path):
            errors.append((("sweep", "path"), f"path '{self.sweep.path}' is not in baseline"))
        if self.tiers is not None:
            for i, tier in enumerate(self.tiers.stages):
                for dotted in tier.overrides:
                    if not _has_path(self.baseline, dotted):
                        errors.append(
                            (("tiers", "stages", i, "overrides", dotted), f"path '{dotted}' is not in baseline")
                        )
        if errors:
            raise _CrossCheckError(errors)
        return self

    # ------------------------------------------------------------ helpers

    @property
    def seed_list(self) -> list[int]:
        """The seeds every variant runs (the initial ones for adaptive seeds)."""
        if isinstance(self.seeds, AdaptiveSeeds):
            return list(range(self.seeds.start, self.seeds.start + self.seeds.initial))
        return list(self.seeds)

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


class _CrossCheckError(ValueError):
    def __init__(self, errors: list[tuple[tuple, str]]):
        self.errors = errors
        super().__init__("; ".join(msg for _, msg in errors))


RESERVED_LEVELS = ("baseline", "removed", "removal")
SCALAR = (str, int, float, bool, type(None))


def factor_checks(config: StudyConfig) -> list[tuple[tuple, str]]:
    """Alternatives and factors checked against the baseline (paths, names, types) and the design's size."""
    errors: list[tuple[tuple, str]] = []
    for name, comp in config.components.items():
        for alt, overrides in comp.alternatives.items():
            loc = ("components", name, "alternatives", alt)
            if alt in RESERVED_LEVELS or alt == f"no-{name}" or not NAME_RE.match(alt):
                msg = (f"alternative '{alt}' is named like the baseline or the removal; "
                       "use a name of its own (letters, digits, '-', '_', '.')")
                errors.append((loc, msg))
            if not overrides:
                errors.append((loc, "an alternative needs at least one override"))
            elif overrides == comp.removal:
                errors.append((loc, "this alternative is the removal contract itself; the removal is already a level"))
            for dotted in overrides:
                if not _has_path(config.baseline, dotted):
                    errors.append((loc + (dotted,), f"path '{dotted}' is not in baseline"))
    for dotted, space in config.factors.items():
        loc = ("factors", dotted)
        if not _has_path(config.baseline, dotted):
            errors.append((loc, f"path '{dotted}' is not in baseline"))
            continue
        base = get_path(config.baseline, dotted)
        if spaces.numeric(space):
            key = "value_range" if space.value_range is not None else "subspaces"
            if isinstance(base, bool) or not isinstance(base, int | float):
                msg = f"a numeric range for a baseline value of type {type(base).__name__} ({base!r})"
                errors.append((loc + (key,), msg))
            elif spaces.bounds(space)[2] and base <= 0:
                errors.append((loc + ("log",), f"log: true needs a positive baseline value, got {base!r}"))
        errors += _space_checks(config.baseline, dotted, space, loc)
        if config.sweep is not None and config.sweep.path == dotted:
            errors.append((loc, f"'{dotted}' is also the sweep path; ablate it in one place"))
    if config.design.type == "full_factorial" and not errors:
        n = levels.factorial_size(config)
        if n > config.design.max_variants:
            msg = (f"full_factorial has {n} variants, over the cap of {config.design.max_variants} "
                   "(design.max_variants); use design.type: random with total_trials, or raise the cap")
            errors.append((("design", "type"), msg))
    return errors


def _space_checks(baseline: dict, dotted: str, space: SearchSpace, loc: tuple) -> list[tuple[tuple, str]]:
    """A factor's space against the baseline: plain distinct categories, branch keys that exist there."""
    errors: list[tuple[tuple, str]] = []
    if space.categorical_values is not None:
        bad = [v for v in space.categorical_values if not isinstance(v, SCALAR)]
        if bad:
            errors.append((loc + ("categorical_values",), f"levels must be plain values, got {bad[0]!r}"))
        elif len({repr(v) for v in space.categorical_values}) != len(space.categorical_values):
            errors.append((loc + ("categorical_values",), "levels must be distinct"))
    for i, sub in enumerate(space.subspaces or []):
        errors += _space_checks(baseline, dotted, sub, loc + ("subspaces", i))
    if space.sub_configuration is not None:
        where = loc + ("sub_configuration",)
        if not isinstance(get_path(baseline, dotted), dict):
            return errors + [(where, f"a sub_configuration sets keys under '{dotted}', but the baseline's value "
                                     f"there is not a mapping ({get_path(baseline, dotted)!r})")]
        for sub, leaf in spaces.leaves(space.sub_configuration):
            full = f"{dotted}.{sub}"
            if not _has_path(baseline, full):
                errors.append((where + tuple(sub.split(".")),
                               f"path '{full}' is not in baseline (a branch sets keys the baseline has; "
                               "give it there, e.g. as null)"))
            elif spaces.is_space(leaf):
                errors += _space_checks(baseline, full, leaf, where + tuple(sub.split(".")))
    return errors


def _has_path(tree: dict, dotted: str) -> bool:
    absent = object()
    return get_path(tree, dotted, absent) is not absent


def resolve_callable(spec: str):
    """Import `module:function`; raise ValueError with a clear reason."""
    if spec.count(":") != 1:
        raise ValueError(f"'{spec}' must look like 'package.module:function'")
    mod_name, func_name = spec.split(":")
    try:
        module = importlib.import_module(mod_name)
    except Exception as exc:  # any import failure is the user's to see
        raise ValueError(f"cannot import module '{mod_name}': {exc}") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ValueError(f"module '{mod_name}' has no function '{func_name}'")
    return func


# ---------------------------------------------------------------- YAML with lines


def _line_index(node: yaml.Node, prefix: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map each path (tuple of keys/indices) of a composed YAML document to its 1-based line."""
    out = {} if out is None else out
    out.setdefault(prefix, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = prefix + (key_node.value,)
            out[path] = key_node.start_mark.line + 1
            _line_index(value_node, path, out)
            out[path] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, prefix + (i,), out)
    return out


def _line_for(index: dict[tuple, int], loc: tuple) -> int | None:
    loc = tuple(loc)
    while loc:
        # union members and dotted keys show up in Pydantic locs: try the path as is, then shorter
        if loc in index:
            return index[loc]
        loc = loc[:-1]
    return index.get(())


def _clean_loc(loc: tuple) -> tuple:
    """Drop Pydantic's union-member tags (e.g. 'list[int]', 'AdaptiveSeeds') from a loc."""
    return tuple(p for p in loc if not (isinstance(p, str) and (p[:1].isupper() or "[" in p)))


def load_yaml(path: str | Path) -> tuple[dict, dict[tuple, int]]:
    """Parse a YAML file; return the data and a path->line index. Raises ConfigError."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(path, [("", None, f"cannot read file: {exc.strerror}")]) from None
    loader = _Loader(text)
    try:  # one parse: compose the node tree, check it, then construct the data from it
        node = loader.get_single_node()
        if node is None:
            raise ConfigError(path, [("", 1, "a study config must be a YAML mapping")])
        _check_tree(node, path)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(path, [("", line, f"malformed YAML: {problem}")]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(path, [("", 1, "a study config must be a YAML mapping")])
    return data, _line_index(node)


#: libyaml's parser when PyYAML was built with it (about 10x faster), else the Python one
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: the most nodes aliases may expand a config to, beyond its own nodes (an alias bomb stops here)
MAX_ALIAS_EXPANSION = 100_000


def _check_tree(root: yaml.Node, path: Path) -> None:
    """Refuse duplicate keys (naming both lines) and aliases that expand beyond the cap."""
    sizes: dict[int, int] = {}
    problems: list[tuple[str, int | None, str]] = []

    def size(node: yaml.Node, where: tuple) -> int:
        got = sizes.get(id(node))
        if got is not None:  # an alias: counted again, not walked again
            return got
        sizes[id(node)] = 1  # a recursive alias counts once
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                line = key_node.start_mark.line + 1
                if key is not None and key != "<<":
                    if key in seen:
                        problems.append((_dotted(where + (key,)), line,
                                         (f"duplicate key: '{key}' is already given on line {seen[key]} "
                                          "(YAML would keep only the last one)")))
                    seen.setdefault(key, line)
                total += size(value_node, where + (key,))
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item, where + (i,)) for i, item in enumerate(node.value))
        sizes[id(node)] = total
        return total

    expanded = size(root, ())
    if problems:
        raise ConfigError(path, problems)
    if expanded - len(sizes) > MAX_ALIAS_EXPANSION:
        raise ConfigError(path, [("", None, (f"YAML aliases expand this config to {expanded:,} nodes "
                                             f"(more than {MAX_ALIAS_EXPANSION:,} beyond its own "
                                             f"{len(sizes):,}): an alias bomb? Write the values out "
                                             "or use fewer nested aliases"))])


def parse_config(data: dict, path: str | Path = "<config>", lines: dict | None = None) -> StudyConfig:
    """Validate a config mapping; raise ConfigError listing every problem with its line."""
    lines = lines or {}
    try:
        return StudyConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            ctx_error = (err.get("ctx") or {}).get("error")
            if isinstance(ctx_error, _CrossCheckError):
                for loc, msg in ctx_error.errors:
                    problems.append((_dotted(loc), _line_for(lines, loc), msg))
                continue
            loc = _clean_loc(err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (not allowed here)"
            problems.append((_dotted(loc), _line_for(lines, loc), msg))
        raise ConfigError(path, _dedupe(problems)) from None


def _dedupe(problems):
    seen, out = set(), []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def _dotted(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


def load_config(path: str | Path, overrides: list[Override] = ()) -> StudyConfig:
    """Load and validate a study YAML file, with command-line overrides applied.

    Raises ConfigError naming file and line (or the argument) and the field of each mistake.
    """
    data, lines = load_yaml(path)
    return parse_config(apply_overrides_args(data, lines, list(overrides)), path, lines)


def json_schema() -> dict:
    """JSON Schema of the study config, for editors."""
    return StudyConfig.model_json_schema()
