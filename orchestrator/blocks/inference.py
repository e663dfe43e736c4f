"""Inference components: removable without retraining.

Each takes a config value whose removed value turns it into a no-op on the trained
model's outputs, so an inference-only variant re-evaluates the baseline checkpoint.

=============== ==================== ==============================================
component       config value         removed value (and what it means)
=============== ==================== ==============================================
temperature     ``t > 0``            ``1.0``: logits are used as they are
beam search     beam width ``B > 1`` ``1``: greedy decoding (argmax at every step)
smoothing       window ``k`` (odd)   ``1``: decoded frame labels are left as they are
=============== ==================== ==============================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

REMOVED: dict[str, object] = {"temperature": 1.0, "beam_width": 1, "smoothing": 1}


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits / temperature``; at the removed value 1.0 the logits are returned as they are.

    Temperature never changes a single argmax; it changes how scores from several
    steps (beam search) or several heads (fusion) trade off against each other.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if temperature == 1.0:
        return logits
    return logits / temperature


def _reorder(state: Any, index: torch.Tensor) -> Any:
    """Select rows ``index`` along dim 0 of every tensor in a (nested) state.

    Keep the batch on dim 0 in beam states (e.g. transpose a GRU's ``(layers, N, H)``)."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.index_select(0, index)
    if isinstance(state, (tuple, list)):
        return type(state)(_reorder(s, index) for s in state)
    if isinstance(state, dict):
        return {k: _reorder(v, index) for k, v in state.items()}
    raise TypeError(f"cannot reorder beam state of type {type(state).__name__}")


StepFn = Callable[[Any, torch.Tensor, int], tuple[torch.Tensor, Any]]


@torch.no_grad()
def beam_search(
    step: StepFn,
    state: Any,
    *,
    batch_size: int,
    n_steps: int,
    beam_width: int,
    start_label: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Beam search over a label sequence of fixed length; ``beam_width=1`` is greedy.

    ``step(state, prev_labels, t)`` gets a state whose tensors have ``batch*beam`` rows
    (dim 0), the previous label of each row, and the step index; it returns
    ``(log_probs (batch*beam, C), new_state)``. ``state`` is given for ``batch`` rows
    and is repeated for the beams. Returns the best sequence per sample ``(batch,
    n_steps)`` and its total log-probability ``(batch,)``.
    """
    if beam_width < 1:
        raise ValueError(f"beam width must be >= 1, got {beam_width}")
    n, b = batch_size, beam_width
    state = _reorder(state, torch.arange(n).repeat_interleave(b))
    prev = torch.full((n * b,), start_label, dtype=torch.long)
    scores = torch.full((n, b), float("-inf"))
    scores[:, 0] = 0.0  # one live beam at the start: no duplicate hypotheses
    back = torch.empty((n_steps, n, b), dtype=torch.long)
    labels = torch.empty((n_steps, n, b), dtype=torch.long)
    for t in range(n_steps):
        log_probs, state = step(state, prev, t)
        c = log_probs.shape[-1]
        cand = (scores[:, :, None] + log_probs.view(n, b, c)).view(n, b * c)
        scores, flat = cand.topk(b, dim=1)  # sorted, best first
        back[t], labels[t] = flat // c, flat % c
        rows = (torch.arange(n)[:, None] * b + back[t]).view(-1)
        state = _reorder(state, rows)
        prev = labels[t].reshape(-1)
    # Backtrack from the best final beam.
    out = torch.empty((n, n_steps), dtype=torch.long)
    beam = torch.zeros(n, dtype=torch.long)
    for t in range(n_steps - 1, -1, -1):
        out[:, t] = labels[t].gather(1, beam[:, None]).squeeze(1)
        beam = back[t].gather(1, beam[:, None]).squeeze(1)
    return out, scores[:, 0]


def mode_filter(labels: torch.Tensor, window: int) -> torch.Tensor:
    """Median-style smoothing of decoded frame labels; ``window=1`` (removed) is a no-op.

    For categorical labels the median has no meaning; its categorical counterpart is
    the mode: every frame takes the most frequent label within ``window`` frames
    centred on it (ties keep the frame's own label; the window is truncated at the
    edges). It removes isolated label flips shorter than ``window // 2 + 1`` frames.
    ``labels``: ``(T,)`` or ``(N, T)`` integer tensor.
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"smoothing window must be a positive odd number, got {window}")
    if window == 1:
        return labels
    squeeze = labels.dim() == 1
    lab = labels[None] if squeeze else labels
    c = int(lab.max()) + 1
    onehot = F.one_hot(lab, c).float().transpose(1, 2)  # (N, C, T)
    counts = F.avg_pool1d(onehot, window, stride=1, padding=window // 2, count_include_pad=True)
    counts = counts * window + 0.5 * onehot  # tie-break towards the frame's own label
    out = counts.argmax(1)
    return out[0] if squeeze else out
