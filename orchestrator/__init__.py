"""Ablation studies for PyTorch: prove each component earns its place, then tune the survivors.

The public face: ``TrialContext`` (what a trainable sees), ``load_study`` / ``StudyResults`` (a study's
results as typed data and DataFrames), ``compare_studies`` (two studies row by row) and the integrations
(``orchestrator.integrations``). Every other module is internal: its names may change between versions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .compare import StudyComparison

__all__ = ["StudyResults", "TrialContext", "compare_studies", "load_study"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``TrialContext``, ``load_study`` and ``StudyResults`` on first use: ``import orchestrator`` stays light."""
    if name == "TrialContext":
        from .trial import TrialContext

        return TrialContext
    if name in ("load_study", "StudyResults"):
        from . import results

        return getattr(results, name)
    raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")


def compare_studies(old, new, *, paired: bool = False, partial: bool = False, alpha: float | None = None,
                    min_effect: float | None = None) -> StudyComparison:
    """Two study directories compared row by row: a typed ``orchestrator.compare.StudyComparison``
    (see docs/compare.md). Imported on first use: ``import orchestrator`` stays light."""
    from .compare import compare_studies as compare

    return compare(old, new, paired=paired, partial=partial, alpha=alpha, min_effect=min_effect)
