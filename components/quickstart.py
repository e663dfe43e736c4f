"""The quickstart study's trainable: a tiny MLP on a synthetic task where some parts matter.

Two interleaved spirals whose second feature is on a 50x larger scale: the hidden
layer is needed for a nonlinear boundary, input normalisation for the skewed scale;
dropout and the LR schedule may or may not matter (that is what the study finds out).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from orchestrator.blocks.checkpoint import checkpoint, resume


def make_data(n: int, noise: float, seed: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.25, 1.0, n) * 3 * np.pi
    label = rng.integers(0, 2, n)
    angle = t + label * np.pi
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], 1) / (3 * np.pi)
    x += rng.normal(0, noise, x.shape)
    x[:, 1] *= scale
    return torch.tensor(x, dtype=torch.float32), torch.tensor(label)


ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}


class Net(nn.Module):
    def __init__(self, hidden: int, layers: str, dropout: float, normalize: bool, mean, std,
                 activation: str = "tanh"):
        super().__init__()
        self.normalize = normalize
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        if layers == "identity":  # removal contract: the hidden block becomes a linear map
            self.body = nn.Linear(2, 2)
        else:
            act = ACTIVATIONS[activation]
            self.body = nn.Sequential(
                nn.Linear(2, hidden), act(), nn.Dropout(dropout),
                nn.Linear(hidden, hidden), act(), nn.Dropout(dropout), nn.Linear(hidden, 2),
            )

    def forward(self, x):
        if self.normalize:
            x = (x - self.mean) / self.std
        return self.body(x)


def run(ctx):
    cfg = ctx.config
    data, model_cfg, train = cfg["data"], cfg["model"], cfg["train"]
    x_train, y_train = make_data(data["n_train"], data["noise"], 1000, data["scale"])
    x_val, y_val = make_data(data["n_val"], data["noise"], 2000, data["scale"])
    ctx.fingerprint_data("train", x_train.numpy())
    ctx.fingerprint_data("test", x_val.numpy())
    model = Net(model_cfg["hidden"], model_cfg["layers"], model_cfg["dropout"], model_cfg["normalize"],
                x_train.mean(0), x_train.std(0), model_cfg.get("activation", "tanh"))
    opt = torch.optim.Adam(model.parameters(), lr=train["lr"])
    epochs = train["epochs"]
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs) if train["schedule"] == "cosine"
             else torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0))
    start = resume(ctx, model, opt, sched)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(start, epochs):
        model.train()
        order = torch.randperm(len(x_train))  # torch's global RNG: seeded, and restored after a restart
        for i in range(0, len(order), train["batch_size"]):
            idx = order[i:i + train["batch_size"]]
            opt.zero_grad()
            loss_fn(model(x_train[idx]), y_train[idx]).backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
            val_loss = loss_fn(logits, y_val).item()
            val_acc = (logits.argmax(1) == y_val).float().mean().item()
        ctx.report({"val_acc": val_acc, "val_loss": val_loss}, checkpoint=checkpoint(epoch, model, opt, sched))
