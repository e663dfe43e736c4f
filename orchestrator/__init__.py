"""Ablation studies for PyTorch: prove each component earns its place, then tune the survivors."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .trial import TrialContext

__all__ = ["TrialContext"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """`orchestrator.TrialContext`, imported when first asked for (the `ablator` script starts lighter)."""
    if name == "TrialContext":
        from .trial import TrialContext

        return TrialContext
    raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
