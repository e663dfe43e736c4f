"""Heads that are removed together with their loss term.

A head here is any ``nn.Module`` with a ``loss(output, batch) -> Tensor`` method.
``RemovableHeads`` holds the kept heads only: a removed head owns no parameter of
the model (so none reaches the optimizer) and contributes no term to the loss.
Heads share nothing: give each head its own encoder, otherwise removing one head
also changes what the other one's encoder learns and the ablation measures both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from .removal import build_then_remove


class RemovableHeads(nn.Module):
    """A set of named, decoupled heads; removed heads are absent, not frozen.

    ``factories`` are called in order (every head is built, so the initial weights
    of a kept head do not depend on which others are removed); ``keep`` maps a head
    name to ``False`` to remove it. ``loss_weights`` scale the kept heads' terms.
    """

    def __init__(
        self,
        factories: Mapping[str, Callable[[], nn.Module]],
        keep: Mapping[str, bool],
        loss_weights: Mapping[str, float] | None = None,
    ):
        super().__init__()
        kept = build_then_remove(factories, keep)
        if not kept:
            raise ValueError(
                f"every head is removed ({', '.join(factories)}): a model needs at least one"
            )
        for name, head in kept.items():
            if not callable(getattr(head, "loss", None)):
                raise TypeError(f"head {name!r} ({type(head).__name__}) has no loss() method")
        self.heads = nn.ModuleDict(kept)
        self.removed = tuple(name for name in factories if name not in kept)
        weights = dict(loss_weights or {})
        self.loss_weights = {name: float(weights.get(name, 1.0)) for name in kept}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.heads.keys())

    def __contains__(self, name: str) -> bool:
        return name in self.heads

    def forward(self, *args, **kwargs) -> dict[str, object]:
        """Run every kept head on the same inputs; returns ``{name: output}``."""
        return {name: head(*args, **kwargs) for name, head in self.heads.items()}

    def loss(self, outputs: Mapping[str, object], batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted sum of the kept heads' losses, and each term as a float (for logging)."""
        terms = {name: self.heads[name].loss(outputs[name], batch) for name in self.heads}
        total = sum(self.loss_weights[name] * term for name, term in terms.items())
        return total, {name: float(term.detach()) for name, term in terms.items()}
