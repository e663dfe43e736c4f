"""A chord recognizer with two fully decoupled heads: CTC and frame-level autoregressive.

Each head owns its encoder (dilated 1-D convolutions); the heads share no weight, and
gradients are clipped per head, so removing one cannot change what the other learns
(tests/test_examples.py checks this to the last bit when training has no randomness).
``model.ctc_head`` / ``model.ar_head`` (booleans in the study config) remove a head
with its encoder and its loss term.

Decoding (``ChordModel.decode``) gives one class per frame:

* CTC alone: best path; each blank frame takes the label of the nearest emission
  (CTC spikes sit anywhere inside a segment, so boundaries go half-way between
  spikes; no emission at all -> 'N').
* AR alone: beam search over frames with the AR head's
  ``log p(y_t | y_<t, x)``; beam width 1 is greedy.
* both: the same beam search over the fused score
  ``log p_AR(y_t | y_<t, x) + log p_CTC(y_t | x, not blank)`` (a product of experts).

Then the median-style smoothing of the decoded labels (see
:func:`orchestrator.blocks.inference.mode_filter`). The temperature divides every head's
logits first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from components.chord.vocab import N_CLASSES
from orchestrator.blocks.heads import RemovableHeads
from orchestrator.blocks.inference import apply_temperature, beam_search, mode_filter

BLANK = N_CLASSES  # CTC blank: the class after the 25 chords
START = N_CLASSES  # AR start symbol: the label "before" frame 0


class Encoder(nn.Module):
    """Frame features ``(N, T, D)`` -> context features ``(N, T, hidden)``.

    Three dilated 1-D convolutions (kernel 5, dilation 1, 2, 4: 29 frames of context)
    with residual connections.
    """

    def __init__(self, in_dim: int, hidden: int, dropout: float):
        super().__init__()
        self.inp = nn.Conv1d(in_dim, hidden, kernel_size=1)
        self.convs = nn.ModuleList(
            nn.Conv1d(hidden, hidden, kernel_size=5, padding=2 * d, dilation=d) for d in (1, 2, 4)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x.transpose(1, 2))
        for conv in self.convs:
            h = h + self.drop(F.relu(conv(h)))
        return h.transpose(1, 2)


class CTCHead(nn.Module):
    """Own encoder + linear layer to 25 chords and a blank; CTC loss on the segment sequence."""

    def __init__(self, in_dim: int, hidden: int, dropout: float):
        super().__init__()
        self.encoder = Encoder(in_dim, hidden, dropout)
        self.out = nn.Linear(hidden, N_CLASSES + 1)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.out(self.encoder(batch["features"]))  # (N, T, 26)

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        n, t, _ = logits.shape
        targets = batch["segments"]
        return F.ctc_loss(
            logits.log_softmax(-1).transpose(0, 1),
            torch.tensor([c for seq in targets for c in seq], dtype=torch.long),
            input_lengths=torch.full((n,), t, dtype=torch.long),
            target_lengths=torch.tensor([len(seq) for seq in targets], dtype=torch.long),
            blank=BLANK,
            zero_infinity=True,
        )


class ARHead(nn.Module):
    """Own encoder + a GRU over frames fed with the previous frame's label.

    Trained with teacher forcing (the true previous label), of which a fraction
    ``label_noise`` is replaced by random labels in training: at decoding time the
    previous label is the head's own, possibly wrong, prediction, and a head that
    learned to copy a never-wrong previous label gets stuck on its first mistake
    (exposure bias). Decoded by beam search on its own predictions.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: int,
        dropout: float,
        label_noise: float = 0.0,
        label_dim: int = 16,
    ):
        super().__init__()
        self.label_noise = float(label_noise)
        self.encoder = Encoder(in_dim, hidden, dropout)
        self.label_emb = nn.Embedding(N_CLASSES + 1, label_dim)  # + START
        self.decoder = nn.GRU(hidden + label_dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, N_CLASSES)

    def forward(self, batch: dict) -> torch.Tensor:
        enc = self.encoder(batch["features"])
        frames = batch["frames"]
        prev = torch.cat([torch.full_like(frames[:, :1], START), frames[:, :-1]], dim=1)
        if self.training and self.label_noise > 0:
            flip = torch.rand(prev.shape) < self.label_noise
            prev = torch.where(flip, torch.randint_like(prev, N_CLASSES), prev)
        h, _ = self.decoder(torch.cat([enc, self.label_emb(prev)], dim=-1))
        return self.out(h)  # (N, T, 25)

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        return F.cross_entropy(logits.reshape(-1, N_CLASSES), batch["frames"].reshape(-1))

    def step(self, enc_t: torch.Tensor, prev: torch.Tensor, h: torch.Tensor | None):
        """One decoding step: ``enc_t (R, H)``, ``prev (R,)``, ``h (R, H)`` -> logits, new h."""
        inp = torch.cat([enc_t, self.label_emb(prev)], dim=-1)[:, None]
        out, h_new = self.decoder(inp, None if h is None else h[None].contiguous())
        return self.out(out[:, 0]), h_new[0]


class ChordModel(nn.Module):
    def __init__(
        self,
        feature_dim: int,
        hidden: int,
        dropout: float,
        ctc_head: bool,
        ar_head: bool,
        ar_label_noise: float = 0.0,
    ):
        super().__init__()
        self.heads = RemovableHeads(
            {
                "ctc": lambda: CTCHead(feature_dim, hidden, dropout),
                "ar": lambda: ARHead(feature_dim, hidden, dropout, ar_label_noise),
            },
            keep={"ctc": ctc_head, "ar": ar_head},
        )

    @classmethod
    def from_config(cls, cfg: dict) -> ChordModel:
        m = cfg["model"]
        if not (m["ctc_head"] or m["ar_head"]):
            raise ValueError("the chord model needs at least one of model.ctc_head, model.ar_head")
        return cls(
            feature_dim=int(cfg["data"]["feature_dim"]),
            hidden=int(m["hidden"]),
            dropout=float(m["dropout"]),
            ctc_head=bool(m["ctc_head"]),
            ar_head=bool(m["ar_head"]),
            ar_label_noise=float(m.get("ar_label_noise", 0.0)),
        )

    @property
    def head_names(self) -> tuple[str, ...]:
        return self.heads.names

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        return self.heads(batch)

    def loss(self, outputs: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        return self.heads.loss(outputs, batch)

    @torch.no_grad()
    def decode(
        self,
        features: torch.Tensor,
        *,
        temperature: float = 1.0,
        beam_width: int = 1,
        smoothing: int = 1,
        head: str | None = None,
    ) -> torch.Tensor:
        """Frame labels ``(N, T)`` from features ``(N, T, D)``.

        ``head``: decode with one head only (``"ctc"`` or ``"ar"``); ``None`` uses every
        kept head (fusion when both are present).
        """
        use = self.head_names if head is None else (head,)
        for name in use:
            if name not in self.heads:
                raise KeyError(f"head {name!r} is removed in this model (kept: {self.head_names})")
        ctc_logp = None
        if "ctc" in use:
            logits = apply_temperature(self.heads.heads["ctc"]({"features": features}), temperature)
            if "ar" not in use:
                return mode_filter(ctc_best_path(logits), smoothing)
            ctc_logp = logits[..., :N_CLASSES].log_softmax(-1)  # p(chord | x, not blank)
        labels = self._ar_beam(features, temperature, beam_width, ctc_logp)
        return mode_filter(labels, smoothing)

    def _ar_beam(self, features, temperature, beam_width, ctc_logp):
        ar: ARHead = self.heads.heads["ar"]
        n, t, _ = features.shape
        enc = ar.encoder(features).repeat_interleave(beam_width, 0)  # rows stay within a sample
        fused = None if ctc_logp is None else ctc_logp.repeat_interleave(beam_width, 0)

        def step(h, prev, i):
            logits, h = ar.step(enc[:, i], prev, h)
            logp = apply_temperature(logits, temperature).log_softmax(-1)
            if fused is not None:
                logp = logp + fused[:, i]
            return logp, h

        h0 = torch.zeros(n, ar.decoder.hidden_size)
        labels, _ = beam_search(
            step, h0, batch_size=n, n_steps=t, beam_width=beam_width, start_label=START
        )
        return labels


def ctc_best_path(logits: torch.Tensor) -> torch.Tensor:
    """CTC best path ``(N, T, C+1)`` -> a chord per frame ``(N, T)``.

    CTC places its emissions (spikes) anywhere inside a segment, so the blank frames
    between two emissions are split at the midpoint: each frame takes the label of
    the nearest emission (ties go to the earlier one). Frames before the first and
    after the last emission take that emission's label; no emission at all is 'N' (0).
    """
    rows = []
    for row in logits.argmax(-1).tolist():
        spikes = [(j, c) for j, c in enumerate(row) if c != BLANK]
        if not spikes:
            rows.append([0] * len(row))
            continue
        filled, k = [], 0
        for j in range(len(row)):
            while k + 1 < len(spikes) and abs(spikes[k + 1][0] - j) < abs(spikes[k][0] - j):
                k += 1
            filled.append(spikes[k][1])
        rows.append(filled)
    return torch.tensor(rows, dtype=torch.long).reshape(logits.shape[:-1])
