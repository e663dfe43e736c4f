"""Ablation studies for PyTorch: prove each component earns its place, then tune the survivors."""

from .trial import TrialContext

__all__ = ["TrialContext"]
__version__ = "0.1.0"
