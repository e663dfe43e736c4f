"""Ablation studies for PyTorch: prove each component earns its place, then tune the survivors."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .compare import StudyComparison
    from .trial import TrialContext

__all__ = ["TrialContext", "compare_studies"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """`orchestrator.TrialContext`, imported when first asked for (the `ablator` script starts lighter)."""
    if name == "TrialContext":
        from .trial import TrialContext

        return TrialContext
    raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")


def compare_studies(old, new, *, paired: bool = False, partial: bool = False, alpha: float | None = None,
                    min_effect: float | None = None) -> StudyComparison:
    """Two study directories compared row by row: a typed ``orchestrator.compare.StudyComparison``
    (see docs/compare.md). Imported on first use: ``import orchestrator`` stays light."""
    from .compare import compare_studies as compare

    return compare(old, new, paired=paired, partial=partial, alpha=alpha, min_effect=min_effect)
