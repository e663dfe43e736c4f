"""Training components and the value that removes each of them.

Removal of a training component is a config value, not a code path: the model and
the loop stay the same and only the value changes. ``REMOVED`` is that contract.

=============== ======================= ===========================================
component       config value            removed value (and what it means)
=============== ======================= ===========================================
dropout         ``p`` in [0, 1)         ``0.0``: ``nn.Dropout(0.0)`` is the identity
augmentation    ``true``                ``false``: batches pass through unchanged
lr schedule     ``cosine`` | ``step``   ``constant``: the base learning rate throughout
=============== ======================= ===========================================
"""

from __future__ import annotations

import math

import torch
from torch import nn

REMOVED: dict[str, object] = {"dropout": 0.0, "augmentation": False, "lr_schedule": "constant"}

SCHEDULES: tuple[str, ...] = ("constant", "cosine", "step")


def make_scheduler(
    optimizer: torch.optim.Optimizer, kind: str, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step LR schedule. ``constant`` (the removed value) multiplies the LR by 1.

    ``cosine`` decays to 0 over ``total_steps``; ``step`` halves the LR at 50% and 75%.
    Call ``scheduler.step()`` once per optimizer step.
    """
    if kind not in SCHEDULES:
        raise ValueError(f"unknown lr schedule {kind!r}; expected one of {', '.join(SCHEDULES)}")
    total = max(1, int(total_steps))
    if kind == "constant":
        def factor(step):
            return 1.0
    elif kind == "cosine":
        def factor(step):
            return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    else:
        def factor(step):
            return 0.5 ** ((step >= total // 2) + (step >= (3 * total) // 4))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class RandomShift(nn.Module):
    """Shift each image by up to ``max_shift`` pixels in x and y (zero fill). Train mode only."""

    def __init__(self, max_shift: int = 1):
        super().__init__()
        self.max_shift = int(max_shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, C, H, W)
        if not self.training or self.max_shift == 0:
            return x
        s, (n, _, h, w) = self.max_shift, x.shape
        padded = nn.functional.pad(x, (s, s, s, s))
        dy = torch.randint(0, 2 * s + 1, (n,))
        dx = torch.randint(0, 2 * s + 1, (n,))
        return _crop(padded, dy, dx, h, w)


def _crop(padded: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Per-sample crop of an (h, w) window at offsets (dy, dx) from a padded batch."""
    n = padded.shape[0]
    rows = dy[:, None] + torch.arange(h)[None, :]  # (n, h)
    cols = dx[:, None] + torch.arange(w)[None, :]  # (n, w)
    idx = torch.arange(n)[:, None, None]
    # (n, h, w, C) after advanced indexing on dims 0, 2, 3 -> move channels back.
    return padded.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


class GaussianNoise(nn.Module):
    """Add N(0, sigma^2) noise. Train mode only."""

    def __init__(self, sigma: float = 0.05):
        super().__init__()
        self.sigma = float(sigma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.sigma == 0.0:
            return x
        return x + self.sigma * torch.randn_like(x)


class Augmentation(nn.Sequential):
    """A sequence of train-time transforms; ``enabled=False`` (the removed value) is the identity.

    Disabled, it returns its input object unchanged and draws no random numbers.
    """

    def __init__(self, *transforms: nn.Module, enabled: bool = True):
        super().__init__(*transforms)
        self.enabled = bool(enabled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled or not self.training:
            return x
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"enabled={self.enabled}"
