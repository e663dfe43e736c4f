"""ABLATOR's SearchSpace language as a model (what each kind means: orchestrator/space_sampling.py)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, ValidationInfo, field_validator, model_validator
from typing_extensions import TypeAliasType

from .. import space_sampling
from .strict import Strict


class SearchSpace(Strict):
    """ABLATOR's SearchSpace language: exactly one of value_range, categorical_values, subspaces,
    sub_configuration (see orchestrator/space_sampling.py for what each means)."""

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

    @model_validator(mode="before")
    @classmethod
    def _nulls_absent(cls, data: Any) -> Any:
        """ABLATOR's own dumps write every unset field as null: a null field is an absent one."""
        return {k: v for k, v in data.items() if v is not None or k not in space_sampling.SPACE_KEYS} \
            if isinstance(data, dict) else data

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
        given = [k for k in space_sampling.KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            got = f"got {' and '.join(given)}" if given else "got none"
            raise ValueError(f"give exactly one of {', '.join(space_sampling.KINDS)} ({got})")
        return self


def _sub_tag(value: Any) -> str:
    if isinstance(value, SearchSpace) or space_sampling.looks_like_space(value):
        return "Space"
    return "Mapping" if isinstance(value, dict) else "Plain"


#: a sub_configuration leaf: a SearchSpace (a mapping with any of its keys), a nested mapping, or a plain value
SubValue = TypeAliasType("SubValue", Annotated[
    Annotated[SearchSpace, Tag("Space")] | Annotated[dict[str, "SubValue"], Tag("Mapping")]
    | Annotated[Any, Tag("Plain")], Discriminator(_sub_tag)])
SearchSpace.model_rebuild()
