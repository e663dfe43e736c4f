"""scikit-learn's bundled 8x8 digits (1797 images, no download), split once, reproducibly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


@dataclass
class DigitsSplit:
    images: torch.Tensor  # (N, 1, 8, 8) float32 in [0, 1]
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return self.labels.shape[0]


def load_splits(data_cfg: dict) -> tuple[DigitsSplit, DigitsSplit]:
    """A stratified train/test split fixed by ``split_seed`` (the same for every trial);
    ``n_train`` (optional) keeps only the first images of the training split, which
    makes the task small enough for regularisers to matter."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x,
        y,
        test_size=int(data_cfg["n_test"]),
        stratify=y,
        random_state=int(data_cfg["split_seed"]),
    )
    n_train = data_cfg.get("n_train")
    if n_train is not None:
        x_tr, y_tr = x_tr[: int(n_train)], y_tr[: int(n_train)]
    return (
        DigitsSplit(torch.from_numpy(x_tr), torch.from_numpy(y_tr)),
        DigitsSplit(torch.from_numpy(x_te), torch.from_numpy(y_te)),
    )
