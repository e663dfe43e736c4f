"""The trainable: a `module:function` or a training script, checked where it runs."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from ..errors import Interrupted
from .strict import Strict


class ScriptTrainable(Strict):
    """A training script run as a subprocess per attempt; it calls ``TrialContext.from_env()``."""

    script: str = Field(description="Python script, relative to the project directory.", examples=["train.py"])
    args: list[str] = Field(default=[], description="Arguments passed to the script as they are.")
    script_overrides: Literal["none", "hydra"] = Field(
        default="none", description="hydra: also pass every leaf of the trial's config as `key.path=value` "
                                    "(Hydra's override grammar), and hydra.run.dir inside the trial directory.")

    @field_validator("script")
    @classmethod
    def _script(cls, v: str, info: ValidationInfo) -> str:
        if Path(v).is_absolute() or not v.endswith(".py"):
            raise ValueError("give a .py file relative to the project directory")
        if importing(info) and not Path(v).is_file():
            raise ValueError(f"no script '{v}' in the project directory {Path.cwd()}")
        return v


#: the validation context key that says whether the trainable is checked where it runs (imported, its
#: script found); False where only the ledger is read (status, report, sync, doctor, list)
IMPORT_TRAINABLE = "import_trainable"


def importing(info: ValidationInfo) -> bool:
    """Whether this validation checks the trainable where it runs (the default)."""
    return (info.context or {}).get(IMPORT_TRAINABLE, True)


def split_callable(spec: str) -> tuple[str, str]:
    """`module:function` as (module, function); raise ValueError when it does not look like one."""
    if spec.count(":") != 1 or not all(spec.split(":")):
        raise ValueError(f"'{spec}' must look like 'package.module:function'")
    mod_name, func_name = spec.split(":")
    return mod_name, func_name


def resolve_callable(spec: str):
    """Import `module:function`; raise ValueError with a clear reason."""
    mod_name, func_name = split_callable(spec)
    try:
        module = importlib.import_module(mod_name)
    except Interrupted:  # a stop signal while the module imports: not the module's failure
        raise
    except Exception as exc:  # any import failure is the user's to see
        raise ValueError(f"cannot import module '{mod_name}': {exc}") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ValueError(f"module '{mod_name}' has no function '{func_name}'")
    return func
