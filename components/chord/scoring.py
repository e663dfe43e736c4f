"""Production metrics: decoded frames -> Harte intervals -> ``mir_eval.chord.evaluate``.

Scored per sample and robustly. A sample that cannot be scored (empty prediction,
unknown label, invalid intervals, a mir_eval error or a non-finite score) is
*malformed*: it is counted, its reason is kept, and the evaluation goes on.

* malformed **estimate** (the model's output): the sample scores 0 on every metric,
  so a model can never gain by producing unscorable output;
* malformed **reference** (the data): the sample is left out of the means, because
  no estimate can be judged against it.

Both count in ``malformed_samples``. Means are over samples (all of equal duration
here, so this is also the duration-weighted mean that MIREX reports).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import mir_eval
import numpy as np

from components.chord.vocab import to_harte

METRICS: tuple[str, ...] = ("root", "thirds", "majmin", "mirex", "seg", "overseg", "underseg")


class MalformedSample(ValueError):
    """A sample that cannot be scored; ``side`` is 'reference' or 'estimate'."""

    def __init__(self, side: str, reason: str):
        super().__init__(f"{side}: {reason}")
        self.side, self.reason = side, reason


def frames_to_intervals(frames: Sequence[int], hop: float) -> tuple[np.ndarray, list[str]]:
    """Run-length encode class indices per frame into ``(intervals (n, 2) seconds, Harte labels)``.

    Frame ``j`` covers ``[j * hop, (j + 1) * hop)``.
    """
    frames = [int(f) for f in frames]
    intervals, labels, start = [], [], 0
    for j in range(1, len(frames) + 1):
        if j == len(frames) or frames[j] != frames[start]:
            intervals.append((start * hop, j * hop))
            labels.append(to_harte(frames[start]))
            start = j
    return np.asarray(intervals, dtype=float).reshape(-1, 2), labels


def _check(side: str, intervals, labels) -> tuple[np.ndarray, list[str]]:
    try:
        iv = np.asarray(intervals, dtype=float)
    except (TypeError, ValueError) as err:
        raise MalformedSample(side, f"intervals are not numeric ({err})") from None
    labels = list(labels)
    if iv.size == 0 or len(labels) == 0:
        raise MalformedSample(side, "empty (no intervals or no labels)")
    if iv.ndim != 2 or iv.shape[1] != 2:
        raise MalformedSample(side, f"intervals must have shape (n, 2), got {iv.shape}")
    if len(labels) != len(iv):
        raise MalformedSample(side, f"{len(iv)} intervals but {len(labels)} labels")
    if not np.all(np.isfinite(iv)):
        raise MalformedSample(side, "non-finite interval times")
    if np.any(iv[:, 1] <= iv[:, 0]):
        raise MalformedSample(side, "an interval has non-positive duration")
    if np.any(iv[1:, 0] < iv[:-1, 1] - 1e-9):
        raise MalformedSample(side, "intervals overlap or are out of order")
    for label in labels:
        try:
            mir_eval.chord.encode(label)
        except Exception as err:  # InvalidChordException, or a non-string label
            raise MalformedSample(side, f"bad chord label {label!r} ({err})") from None
    return iv, labels


def score_sample(ref_intervals, ref_labels, est_intervals, est_labels) -> dict[str, float]:
    """``mir_eval.chord.evaluate`` for one sample, limited to ``METRICS``; raises
    :class:`MalformedSample` instead of scoring something that is not well formed."""
    ref_iv, ref_lab = _check("reference", ref_intervals, ref_labels)
    est_iv, est_lab = _check("estimate", est_intervals, est_labels)
    try:
        scores = mir_eval.chord.evaluate(ref_iv, ref_lab, est_iv, est_lab)
    except Exception as err:  # any mir_eval failure makes the sample malformed
        raise MalformedSample("estimate", f"mir_eval failed: {type(err).__name__}: {err}") from None
    out = {k: float(scores[k]) for k in METRICS}
    bad = [k for k, v in out.items() if not math.isfinite(v)]
    if bad:
        raise MalformedSample("estimate", f"non-finite scores for {', '.join(bad)}")
    return out


@dataclass
class ChordScores:
    """Means over samples, every sample's scores (None if malformed), and the malformed ones."""

    means: dict[str, float]
    per_sample: list[dict[str, float] | None]
    malformed: list[dict] = field(default_factory=list)


def score_samples(references: Sequence[tuple], estimates: Sequence[tuple]) -> ChordScores:
    """Score ``(intervals, labels)`` pairs sample by sample; never raises for a bad sample.

    Returns the means of ``METRICS`` (see the module docstring for how malformed
    samples count) plus ``malformed_samples``.
    """
    if len(references) != len(estimates):
        raise ValueError(f"{len(references)} references but {len(estimates)} estimates")
    per_sample: list[dict[str, float] | None] = []
    malformed: list[dict] = []
    kept: list[dict[str, float]] = []
    for i, ((ref_iv, ref_lab), (est_iv, est_lab)) in enumerate(zip(references, estimates)):
        try:
            scores = score_sample(ref_iv, ref_lab, est_iv, est_lab)
        except MalformedSample as bad:
            malformed.append({"index": i, "side": bad.side, "reason": bad.reason})
            per_sample.append(None)
            if bad.side == "estimate":
                kept.append({k: 0.0 for k in METRICS})
            continue
        per_sample.append(scores)
        kept.append(scores)
    means = {k: float(np.mean([s[k] for s in kept])) if kept else float("nan") for k in METRICS}
    means["malformed_samples"] = float(len(malformed))
    return ChordScores(means=means, per_sample=per_sample, malformed=malformed)
