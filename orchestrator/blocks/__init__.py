"""Ablatable PyTorch building blocks: `from orchestrator.blocks import Removable, ...`.

Removal follows an explicit contract, chosen by a config value:

* structure  — :class:`Removable` (``keep`` | ``identity`` | ``zero`` | ``skip``),
  :class:`ResidualBlock`, :class:`RemovableHeads` (a head leaves with its loss term);
* training   — dropout ``p -> 0.0``, :class:`Augmentation` ``enabled -> False``,
  :func:`make_scheduler` ``-> "constant"`` (see ``orchestrator.blocks.training.REMOVED``);
* inference  — :func:`apply_temperature` ``-> 1.0``, :func:`beam_search` width ``-> 1``
  (greedy), :func:`mode_filter` window ``-> 1`` (see ``orchestrator.blocks.inference.REMOVED``).

Plus :func:`checkpoint` / :func:`resume`: a training loop's checkpoint (epoch, model,
optimizer, scheduler); the random states travel with it through TrialContext.
"""

from .checkpoint import checkpoint, resume
from .heads import RemovableHeads
from .inference import apply_temperature, beam_search, mode_filter
from .removal import (
    MODES,
    Removable,
    ResidualBlock,
    build_then_remove,
    trainable_parameters,
)
from .training import Augmentation, GaussianNoise, RandomShift, make_scheduler

__all__ = [
    "MODES",
    "Augmentation",
    "GaussianNoise",
    "RandomShift",
    "Removable",
    "RemovableHeads",
    "ResidualBlock",
    "apply_temperature",
    "beam_search",
    "build_then_remove",
    "checkpoint",
    "make_scheduler",
    "mode_filter",
    "resume",
    "trainable_parameters",
]
