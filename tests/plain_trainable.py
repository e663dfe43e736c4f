"""A trainable written the plain way, for the restart tests: its checkpoint holds only the
model, the optimizer and the epoch; dropout and shuffling draw from torch's global RNG.

Faults, caused for real: ``fault.kill_at_epoch`` - the worker SIGKILLs itself at the start
of that epoch on the first attempt; ``fault.kill_in_checkpoint`` - on the first attempt the
worker is SIGKILLed while that epoch's checkpoint is being written, i.e. after the metrics
line and before the checkpoint.
"""

from __future__ import annotations

import os
import signal

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class _KillWhenSaved:
    """Pickling this (inside torch.save) kills the process: a death mid-checkpoint."""

    def __reduce__(self):
        os.kill(os.getpid(), signal.SIGKILL)


def run(ctx):
    cfg = ctx.config
    g = torch.Generator().manual_seed(1234)  # the data are fixed; the seed drives init, dropout, order
    x = torch.randn(256, 8, generator=g)
    y = (x[:, :2].sum(1) > 0).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(cfg["model"]["dropout"]), nn.Linear(32, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    state = ctx.restore()
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start = state["epoch"] + 1
    fault = cfg["fault"]
    for epoch in range(start, cfg["train"]["epochs"]):
        if epoch == fault["kill_at_epoch"] and ctx.attempt == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        model.train()
        total = 0.0
        for xb, yb in loader:
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item()
        ckpt = {"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict()}
        if epoch == fault["kill_in_checkpoint"] and ctx.attempt == 1:
            ckpt["_"] = _KillWhenSaved()
        ctx.report({"loss": total / len(loader), "noise": torch.rand(()).item()}, checkpoint=ckpt)
