"""Trainable for the digits example.

Reports after every epoch: ``val_acc`` (primary), ``val_loss``, ``macro_f1`` and
``min_class_recall`` (the worst digit's recall: a component can raise accuracy while
one class collapses), and ``train_loss``. Checkpoints hold the model, optimizer,
LR schedule and RNG state, so a restarted trial continues exactly where it stopped.

With ``resources.workers_per_trial`` > 1 the model is wrapped in DistributedDataParallel
(the process group is already set up) and every rank trains on its share of each batch
(``idx[rank::world_size]``): DDP averages the ranks' gradients, so a step sees the whole
batch as with one worker. Every rank evaluates the full test split; rank 0's report is kept.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score, recall_score
from torch.nn.parallel import DistributedDataParallel

from components.digits.data import DigitsSplit, load_splits
from components.digits.model import DigitsCNN
from orchestrator.blocks.checkpoint import checkpoint, resume
from orchestrator.blocks.training import Augmentation, GaussianNoise, RandomShift, make_scheduler


@torch.no_grad()
def evaluate_model(model: DigitsCNN, split: DigitsSplit) -> dict[str, float]:
    model.eval()
    device = next(model.parameters()).device
    logits = model(split.images.to(device)).cpu()
    pred = logits.argmax(1).numpy()
    true = split.labels.numpy()
    return {
        "val_acc": float((pred == true).mean()),
        "val_loss": float(F.cross_entropy(logits, split.labels)),
        "macro_f1": float(f1_score(true, pred, average="macro", zero_division=0)),
        "min_class_recall": float(recall_score(true, pred, average=None, zero_division=0).min()),
    }


def run(ctx) -> None:
    cfg = ctx.config
    tcfg = cfg["train"]
    train, test = load_splits(cfg["data"])
    ctx.fingerprint_data("train", (x.numpy() for x in train.images))
    ctx.fingerprint_data("test", (x.numpy() for x in test.images))

    torch.manual_seed(ctx.seed)  # same initial weights for every variant's kept parts
    model = DigitsCNN.from_config(cfg).to(ctx.device)  # the GPU Ray gave this trial, else the CPU
    augment = Augmentation(
        RandomShift(int(tcfg["max_shift"])),
        GaussianNoise(float(tcfg["aug_noise"])),
        enabled=bool(tcfg["augmentation"]),
    )
    epochs, batch_size = int(tcfg["epochs"]), int(tcfg["batch_size"])
    steps_per_epoch = -(-len(train) // batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=float(tcfg["lr"]))
    sched = make_scheduler(opt, str(tcfg["lr_schedule"]), epochs * steps_per_epoch)

    start = resume(ctx, model, opt, sched)
    net = model  # the module that is checkpointed and evaluated; `model` trains (DDP with several workers)
    if ctx.world_size > 1:
        model = DistributedDataParallel(net, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)

    for epoch in range(start, epochs):
        model.train()
        order = torch.randperm(
            len(train), generator=torch.Generator().manual_seed(ctx.seed * 100_003 + epoch)
        )
        total = 0.0
        for idx in order.split(batch_size):
            idx = idx[ctx.rank :: ctx.world_size]  # this rank's share of the batch
            xb, yb = augment(train.images[idx]).to(ctx.device), train.labels[idx].to(ctx.device)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        metrics = evaluate_model(net, test)
        metrics["train_loss"] = total / steps_per_epoch
        ctx.report(metrics, checkpoint=checkpoint(epoch, net, opt, sched))
