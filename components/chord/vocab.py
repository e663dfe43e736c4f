"""The chord vocabulary: Harte labels N plus 12 roots x {maj, min} (25 classes)."""

from __future__ import annotations

ROOTS: tuple[str, ...] = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
QUALITIES: tuple[str, ...] = ("maj", "min")
NO_CHORD = "N"
LABELS: tuple[str, ...] = (NO_CHORD,) + tuple(f"{r}:{q}" for r in ROOTS for q in QUALITIES)
N_CLASSES = len(LABELS)  # 25
INDEX: dict[str, int] = {label: i for i, label in enumerate(LABELS)}


def to_harte(index: int) -> str:
    """Class index -> Harte label (e.g. 3 -> 'C#:min')."""
    return LABELS[int(index)]


def from_harte(label: str) -> int:
    """Harte label of this vocabulary -> class index; KeyError for anything else."""
    return INDEX[label]
