"""A small CNN whose batch norm and residual block are removable by config strings.

``model.batch_norm``: ``keep`` | ``identity`` (every BatchNorm layer becomes the identity)
``model.residual``:   ``keep`` | ``skip`` (only the 1x1 projection shortcut remains) |
                      ``zero`` (the block outputs zeros) — ``identity`` is refused,
                      because the block changes the channel count (16 -> 32)
``model.dropout``:    p before the classifier; the removed value is 0.0
"""

from __future__ import annotations

import torch
from torch import nn

from orchestrator.blocks.removal import Removable, ResidualBlock


class DigitsCNN(nn.Module):
    def __init__(
        self,
        channels: int = 16,
        dropout: float = 0.2,
        batch_norm: str = "keep",
        residual: str = "keep",
        n_classes: int = 10,
    ):
        super().__init__()
        c = channels

        def norm(ch: int) -> nn.Module:
            return Removable(nn.BatchNorm2d(ch), batch_norm)

        self.stem = nn.Sequential(nn.Conv2d(1, c, 3, padding=1), norm(c), nn.ReLU())
        block = ResidualBlock(
            body=nn.Sequential(
                nn.Conv2d(c, 2 * c, 3, padding=1),
                norm(2 * c),
                nn.ReLU(),
                nn.Conv2d(2 * c, 2 * c, 3, padding=1),
                norm(2 * c),
            ),
            shortcut=nn.Conv2d(c, 2 * c, 1),
        )
        self.block = Removable(block, residual)  # built in full either way: same init RNG
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(2 * c * 16, n_classes),
        )

    @classmethod
    def from_config(cls, cfg: dict) -> DigitsCNN:
        m = cfg["model"]
        return cls(
            channels=int(m["channels"]),
            dropout=float(m["dropout"]),
            batch_norm=str(m["batch_norm"]),
            residual=str(m["residual"]),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.stem(x)))
