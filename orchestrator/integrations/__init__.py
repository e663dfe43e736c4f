"""Integrations: a user's own training loop as a trainable.

``lightning.AblatorCallback`` (extra ``[lightning]``), ``huggingface.AblatorTrainerCallback``
(extra ``[hf]``) and script trainables (``script``). Each framework is imported only when its
integration is used.

Public (with ``orchestrator.TrialContext``, ``load_study`` and ``StudyResults``): the two callbacks and the
script trainable's YAML form; ``require`` and every other name here are internal.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import UserError


def require(module: str, extra: str) -> ModuleType:
    """Import a framework an integration needs; a missing one names the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UserError(f"this integration needs '{module}' ({exc}); install it with "
                        f"pip install 'ablator-orchestrator[{extra}]' (from a checkout: pip install -e \".[{extra}]\")"
                        ) from None
