"""Chord evaluation: decoded frames -> Harte intervals -> mir_eval, per sample and robustly."""

from __future__ import annotations

import mir_eval
import numpy as np
import pytest
import torch

from components.chord.model import BLANK, ctc_best_path
from components.chord.scoring import METRICS, frames_to_intervals, score_sample, score_samples
from components.chord.vocab import LABELS, N_CLASSES, from_harte, to_harte

HOP = 0.1


def _random_frames(rng: np.random.Generator, n_frames: int = 40) -> list[int]:
    frames, t = [], 0
    while t < n_frames:
        dur = int(rng.integers(1, 9))
        frames += [int(rng.integers(0, N_CLASSES))] * dur
        t += dur
    return frames[:n_frames]


def test_vocabulary_is_25_valid_harte_labels():
    assert len(LABELS) == N_CLASSES == 25 and LABELS[0] == "N"
    for i, label in enumerate(LABELS):
        mir_eval.chord.encode(label)  # raises for an invalid Harte label
        assert from_harte(to_harte(i)) == i
    assert {label.split(":")[1] for label in LABELS[1:]} == {"maj", "min"}


def test_frames_to_intervals_run_length_encodes_in_seconds():
    intervals, labels = frames_to_intervals([0, 0, 1, 1, 1, 2], HOP)
    assert labels == ["N", "C:maj", "C:min"]
    assert np.allclose(intervals, [[0.0, 0.2], [0.2, 0.5], [0.5, 0.6]])
    mir_eval.util.validate_intervals(intervals)


def test_scores_equal_mir_eval_called_directly():
    rng = np.random.default_rng(0)
    refs, ests = [], []
    for _ in range(6):
        ref_frames = _random_frames(rng)
        est_frames = [
            f if rng.random() < 0.7 else int(rng.integers(0, N_CLASSES)) for f in ref_frames
        ]
        refs.append(frames_to_intervals(ref_frames, HOP))
        ests.append(frames_to_intervals(est_frames, HOP))
    result = score_samples(refs, ests)
    assert result.malformed == [] and result.means["malformed_samples"] == 0.0
    direct = [mir_eval.chord.evaluate(r[0], r[1], e[0], e[1]) for r, e in zip(refs, ests)]
    for i, scores in enumerate(result.per_sample):
        for key in METRICS:
            assert scores[key] == pytest.approx(float(direct[i][key]), abs=1e-12)
    for key in METRICS:
        assert result.means[key] == pytest.approx(
            np.mean([float(d[key]) for d in direct]), abs=1e-12
        )
    # Not all metrics are the same number: root forgives maj/min confusions, seg is about boundaries.
    assert len({round(result.means[k], 6) for k in METRICS}) > 2


def test_malformed_samples_are_counted_with_reasons_and_never_crash():
    rng = np.random.default_rng(1)
    good_ref = [frames_to_intervals(_random_frames(rng), HOP) for _ in range(6)]
    good_est = [frames_to_intervals(_random_frames(rng), HOP) for _ in range(6)]
    ests = list(good_est)
    ests[1] = (np.zeros((0, 2)), [])  # empty prediction
    ests[2] = (good_est[2][0], ["X:foo"] + good_est[2][1][1:])  # bad label
    bad_iv = good_est[3][0].copy()
    bad_iv[0, 1] = bad_iv[0, 0]  # zero-length interval
    ests[3] = (bad_iv, good_est[3][1])
    refs = list(good_ref)
    refs[4] = (good_ref[4][0], good_ref[4][1][:-1])  # reference with a missing label

    result = score_samples(refs, ests)
    assert result.means["malformed_samples"] == 4.0
    by_index = {m["index"]: m for m in result.malformed}
    assert set(by_index) == {1, 2, 3, 4}
    assert by_index[1]["side"] == "estimate" and "empty" in by_index[1]["reason"]
    assert by_index[2]["side"] == "estimate" and "X:foo" in by_index[2]["reason"]
    assert by_index[3]["side"] == "estimate" and "duration" in by_index[3]["reason"]
    assert by_index[4]["side"] == "reference" and "labels" in by_index[4]["reason"]
    # The well-formed samples are still scored, exactly as mir_eval scores them.
    for i in (0, 5):
        direct = mir_eval.chord.evaluate(refs[i][0], refs[i][1], ests[i][0], ests[i][1])
        assert result.per_sample[i]["mirex"] == pytest.approx(float(direct["mirex"]), abs=1e-12)
    # Malformed estimates score 0 (no gain from unscorable output); a malformed
    # reference is left out of the mean (it cannot judge any estimate).
    kept = [result.per_sample[0]["mirex"], 0.0, 0.0, 0.0, result.per_sample[5]["mirex"]]
    assert result.means["mirex"] == pytest.approx(np.mean(kept))


def test_score_sample_rejects_what_mir_eval_would_score_silently():
    ref = frames_to_intervals([1, 1, 2, 2], HOP)
    with pytest.raises(ValueError, match="empty"):
        score_sample(ref[0], ref[1], np.zeros((0, 2)), [])  # mir_eval alone would score this 0-ish
    with pytest.raises(ValueError, match="non-finite"):
        score_sample(ref[0], ref[1], np.array([[0.0, np.nan]]), ["C:maj"])


def test_ctc_best_path_splits_blanks_between_spikes():
    def logits_for(path):
        out = torch.full((1, len(path), N_CLASSES + 1), -5.0)
        for t, c in enumerate(path):
            out[0, t, c] = 5.0
        return out

    b = BLANK
    assert ctc_best_path(logits_for([b, 3, b, b, b, b, 7, b])).tolist() == [
        [3, 3, 3, 3, 7, 7, 7, 7]
    ]
    assert ctc_best_path(logits_for([b, b, b])).tolist() == [[0, 0, 0]]  # no emission: N
    assert ctc_best_path(logits_for([5, 5, b, 5])).tolist() == [[5, 5, 5, 5]]
