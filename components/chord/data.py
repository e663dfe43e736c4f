"""Synthetic chord features: QR-orthogonal chord embeddings plus Gaussian noise.

One knob sets the difficulty: ``noise_sigma``. Every frame of a chord segment is
that chord's embedding plus ``N(0, noise_sigma^2)`` noise in every dimension. The
embeddings are orthonormal, so at ``noise_sigma = 0`` a frame identifies its chord
exactly; as the noise grows a single frame stops being enough and a model must
integrate over time. Train and eval splits share the embeddings (the same signal)
and differ in their seeds (different sequences and noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from components.chord.vocab import N_CLASSES


@dataclass
class ChordSplit:
    """``features (N, T, D)`` float32, ``frames (N, T)`` class per frame,
    ``segments``: each sample's chord sequence with repeats collapsed (the CTC target)."""

    features: torch.Tensor
    frames: torch.Tensor
    segments: list[list[int]]

    def __len__(self) -> int:
        return self.features.shape[0]


def make_embeddings(n_classes: int, dim: int, seed: int = 0) -> torch.Tensor:
    """``(n_classes, dim)`` orthonormal rows from the QR decomposition of a Gaussian matrix."""
    if dim < n_classes:
        raise ValueError(f"feature_dim ({dim}) must be >= the number of classes ({n_classes})")
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, n_classes, generator=gen))
    return q.T.contiguous()


def make_split(
    embeddings: torch.Tensor,
    *,
    n: int,
    n_frames: int,
    noise_sigma: float,
    seed: int,
    min_segment: int,
    max_segment: int,
    p_no_chord: float,
) -> ChordSplit:
    """``n`` sequences of ``n_frames`` frames: chord segments of random durations
    (``min_segment``..``max_segment`` frames, the last one cut at the end), each chord
    different from the one before; 'N' (no chord, class 0) with probability ``p_no_chord``."""
    if not 1 <= min_segment <= max_segment:
        raise ValueError(f"need 1 <= min_segment <= max_segment, got {min_segment}, {max_segment}")
    rng = np.random.default_rng(seed)
    frames = np.empty((n, n_frames), dtype=np.int64)
    segments: list[list[int]] = []
    for i in range(n):
        t, prev, seq = 0, -1, []
        while t < n_frames:
            label = prev
            while label == prev:
                label = 0 if rng.random() < p_no_chord else int(rng.integers(1, N_CLASSES))
            dur = int(rng.integers(min_segment, max_segment + 1))
            frames[i, t : t + dur] = label
            seq.append(label)
            t, prev = t + dur, label
        segments.append(seq)
    frames_t = torch.from_numpy(frames)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, n_frames, embeddings.shape[1], generator=gen) * noise_sigma
    return ChordSplit(
        features=(embeddings[frames_t] + noise).float(), frames=frames_t, segments=segments
    )


def make_data(data_cfg: dict) -> tuple[ChordSplit, ChordSplit]:
    """The train and eval splits described by the ``data`` section of a study config."""
    emb = make_embeddings(N_CLASSES, int(data_cfg["feature_dim"]), int(data_cfg["embedding_seed"]))
    common = {
        "n_frames": int(data_cfg["n_frames"]),
        "noise_sigma": float(data_cfg["noise_sigma"]),
        "min_segment": int(data_cfg["min_segment"]),
        "max_segment": int(data_cfg["max_segment"]),
        "p_no_chord": float(data_cfg["p_no_chord"]),
    }
    train = make_split(emb, n=int(data_cfg["n_train"]), seed=int(data_cfg["train_seed"]), **common)
    test = make_split(emb, n=int(data_cfg["n_eval"]), seed=int(data_cfg["eval_seed"]), **common)
    return train, test
