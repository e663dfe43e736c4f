"""The base of every config model: unknown keys refused, no YAML boolean taken for a number."""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


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
