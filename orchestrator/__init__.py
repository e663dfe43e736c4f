"""Ablation studies for PyTorch: prove each component earns its place, then tune the survivors.

The public face: ``TrialContext`` (what a trainable sees), ``load_study`` / ``StudyResults`` (a study's
results as typed data and DataFrames) and the integrations (``orchestrator.integrations``). Every other
module is internal: its names may change between versions.
"""

from typing import Any

from .trial import TrialContext

__all__ = ["StudyResults", "TrialContext", "load_study"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``load_study`` and ``StudyResults`` on first use: a trial's ``import orchestrator`` stays light."""
    if name in ("load_study", "StudyResults"):
        from . import results

        return getattr(results, name)
    raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
