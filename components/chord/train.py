"""Trainable and inference-only evaluation for the chord example.

``run(ctx)`` trains a fresh model (``torch.manual_seed(ctx.seed)`` right before it is
built, so every variant starts from the same initial weights for the parts it keeps)
and reports after every epoch. ``evaluate(ctx)`` re-decodes the baseline's final
checkpoint under this variant's inference settings, without training.

Reported metrics (floats): ``mirex, majmin, thirds, root, seg, overseg, underseg``
(mir_eval.chord, per sample, then averaged), ``frame_acc``, ``malformed_samples``,
``val_loss`` (sum of the kept heads' losses: not comparable across head variants),
``train_loss``; and the same mir_eval metrics + ``frame_acc`` prefixed ``ctc_`` /
``ar_`` for each kept head decoded on its own.
"""

from __future__ import annotations

import json

import torch

from components.chord.data import ChordSplit, make_data
from components.chord.model import ChordModel
from components.chord.scoring import METRICS, frames_to_intervals, score_samples
from orchestrator.blocks.checkpoint import checkpoint, resume


def _batch(split: ChordSplit, idx: torch.Tensor | None = None) -> dict:
    if idx is None:
        return {"features": split.features, "frames": split.frames, "segments": split.segments}
    return {
        "features": split.features[idx],
        "frames": split.frames[idx],
        "segments": [split.segments[i] for i in idx.tolist()],
    }


def _decode_and_score(model, split, frames_hop, inf, head):
    pred = model.decode(
        split.features,
        temperature=float(inf["temperature"]),
        beam_width=int(inf["beam_width"]),
        smoothing=int(inf["smoothing"]),
        head=head,
    )
    refs = [frames_to_intervals(row, frames_hop) for row in split.frames.tolist()]
    ests = [frames_to_intervals(row, frames_hop) for row in pred.tolist()]
    scores = score_samples(refs, ests)
    metrics = dict(scores.means)
    metrics["frame_acc"] = float((pred == split.frames).float().mean())
    return metrics, scores.malformed


@torch.no_grad()
def evaluate_model(model: ChordModel, split: ChordSplit, cfg: dict) -> tuple[dict, list[dict]]:
    """Metrics of ``model`` on ``split`` under ``cfg['inference']``, and the malformed samples."""
    model.eval()
    batch = _batch(split)
    val_loss, terms = model.loss(model(batch), batch)
    hop, inf = float(cfg["data"]["hop_s"]), cfg["inference"]
    metrics, malformed = _decode_and_score(model, split, hop, inf, head=None)
    metrics["val_loss"] = float(val_loss)
    for head in model.head_names:
        metrics[f"{head}_loss"] = terms[head]
        if len(model.head_names) > 1:
            own, bad = _decode_and_score(model, split, hop, inf, head=head)
            malformed += [dict(m, decoder=head) for m in bad]
        else:
            own = metrics
        for k in (*METRICS, "frame_acc"):
            metrics[f"{head}_{k}"] = own[k]
    return metrics, malformed


def _write_malformed(ctx, epoch: int, malformed: list[dict]) -> None:
    path = ctx.trial_dir / "malformed.json"
    path.write_text(
        json.dumps({"epoch": epoch, "count": len(malformed), "samples": malformed}, indent=1)
    )


def _fingerprint(ctx, train: ChordSplit, test: ChordSplit) -> None:
    ctx.fingerprint_data("train", (x.numpy() for x in train.features))
    ctx.fingerprint_data("test", (x.numpy() for x in test.features))


def run(ctx) -> None:
    cfg = ctx.config
    train, test = make_data(cfg["data"])
    _fingerprint(ctx, train, test)
    torch.manual_seed(ctx.seed)  # same initial weights for every variant's kept parts
    model = ChordModel.from_config(cfg)
    tcfg = cfg["train"]
    opt = torch.optim.Adam(model.parameters(), lr=float(tcfg["lr"]))
    start = resume(ctx, model, opt)  # the random states (dropout masks) come back with it
    batch_size = int(tcfg["batch_size"])
    for epoch in range(start, int(tcfg["epochs"])):
        model.train()
        order = torch.randperm(
            len(train), generator=torch.Generator().manual_seed(ctx.seed * 100_003 + epoch)
        )
        total, n_batches = 0.0, 0
        for idx in order.split(batch_size):
            batch = _batch(train, idx)
            loss, _ = model.loss(model(batch), batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            for head in model.heads.heads.values():  # per head: a global norm would couple them
                torch.nn.utils.clip_grad_norm_(head.parameters(), 5.0)
            opt.step()
            total, n_batches = total + loss.item(), n_batches + 1
        metrics, malformed = evaluate_model(model, test, cfg)
        metrics["train_loss"] = total / max(1, n_batches)
        _write_malformed(ctx, epoch, malformed)
        ctx.report(metrics, checkpoint=checkpoint(epoch, model, opt))


def evaluate(ctx) -> None:
    """Inference-only variant: the baseline's final checkpoint, this variant's inference config."""
    state = ctx.restore()
    if state is None:
        raise RuntimeError(
            "evaluate() needs the trained baseline's checkpoint; ctx.restore() gave None"
        )
    cfg = ctx.config
    _, test = make_data(cfg["data"])
    model = ChordModel.from_config(cfg)
    model.load_state_dict(state["model"])
    metrics, malformed = evaluate_model(model, test, cfg)
    _write_malformed(ctx, int(state["epoch"]), malformed)
    ctx.report(metrics)
