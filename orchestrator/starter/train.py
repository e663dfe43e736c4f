"""The study's trainable: `ablator launch study.yaml` calls run(ctx) once per variant and seed.

A tiny classifier of two noisy half-moons (about a second a trial on a CPU). run(ctx) shows the calls
every trainable makes: `ctx.config` (the baseline with this variant's removals applied), `ctx.restore()`
(the last checkpoint after a restart, else None) and `ctx.report(metrics, checkpoint=...)` once per
epoch. Replace the data and the model with yours and keep those calls. The orchestrator has seeded
python, numpy and torch before run(ctx) and restores their random states with the checkpoint.
"""

from __future__ import annotations

import torch
from torch import nn


def make_data(n: int, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved half-moons; the second feature on a 20x larger scale (normalising helps)."""
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 2, (n,), generator=g)
    angle = torch.rand(n, generator=g) * torch.pi
    x = torch.stack([torch.where(label == 1, 1 - angle.cos(), angle.cos()),
                     torch.where(label == 1, 0.5 - angle.sin(), angle.sin())], 1)
    x = x + noise * torch.randn(x.shape, generator=g)
    x[:, 1] *= 20
    return x, label


class Net(nn.Module):
    def __init__(self, hidden: int, hidden_layer: bool, normalize: bool, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.normalize = normalize
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        # removing the hidden layer leaves a linear classifier
        self.body = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 2)) if hidden_layer \
            else nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = (x - self.mean) / self.std
        return self.body(x)


def run(ctx):
    data, model_cfg, train = ctx.config["data"], ctx.config["model"], ctx.config["train"]
    x_train, y_train = make_data(data["n_train"], data["noise"], seed=1)
    x_val, y_val = make_data(data["n_val"], data["noise"], seed=2)  # the same data for every trial
    model = Net(model_cfg["hidden"], model_cfg["hidden_layer"], model_cfg["normalize"],
                x_train.mean(0), x_train.std(0))
    opt = torch.optim.Adam(model.parameters(), lr=train["lr"], weight_decay=train["weight_decay"])
    loss_fn = nn.CrossEntropyLoss()

    start = 0
    state = ctx.restore()  # None on a first attempt; after a restart, the last checkpoint reported
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["epoch"] + 1

    for epoch in range(start, train["epochs"]):
        model.train()
        order = torch.randperm(len(x_train))  # torch's global RNG: seeded per trial, restored on restart
        for i in range(0, len(order), train["batch_size"]):
            batch = order[i:i + train["batch_size"]]
            opt.zero_grad()
            loss_fn(model(x_train[batch]), y_train[batch]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
            metrics = {"val_acc": (logits.argmax(1) == y_val).float().mean().item(),
                       "val_loss": loss_fn(logits, y_val).item()}
        # one step of the trial: the metrics, and what a restart continues from
        ctx.report(metrics, checkpoint={"epoch": epoch, "model": model.state_dict(), "opt": opt.state_dict()})
