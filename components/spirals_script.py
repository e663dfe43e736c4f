"""A plain training script as a trainable: argparse, a hand-written torch loop, no Ray, no W&B.

Run by a study (configs/spirals_script.yaml: ``trainable: {script: components/spirals_script.py}``)
it gets its trial's context from ``TrialContext.from_env()``: the variant's config, the seed
(already set), the trial directory, and ``report``/``restore`` for metrics and checkpoints.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

from orchestrator import TrialContext


def spirals(n: int, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.25, 1.0, n) * 3 * np.pi
    label = rng.integers(0, 2, n)
    angle = t + label * np.pi
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], 1) / (3 * np.pi) + rng.normal(0, noise, (n, 2))
    return torch.tensor(x, dtype=torch.float32), torch.tensor(label)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    ctx = TrialContext.from_env()
    cfg = ctx.config
    x, y = spirals(cfg["data"]["n_train"], cfg["data"]["noise"], seed=1)
    xv, yv = spirals(cfg["data"]["n_val"], cfg["data"]["noise"], seed=2)
    hidden = cfg["model"]["hidden"]
    if cfg["model"]["layers"] == "identity":  # removal contract: one linear map
        model = nn.Linear(2, 2)
    else:
        model = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                              nn.Linear(hidden, 2))
    opt = torch.optim.Adam(model.parameters(), lr=cfg["train"]["lr"])
    state = ctx.restore()  # None on a first attempt; the last checkpoint on a restarted one
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["epoch"] + 1
    for epoch in range(start, cfg["train"]["epochs"]):
        model.train()
        for idx in torch.randperm(len(x)).split(args.batch_size):
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            if cfg["train"]["grad_clip"]:
                nn.utils.clip_grad_norm_(model.parameters(), cfg["train"]["grad_clip"])
            opt.step()
        model.eval()
        with torch.no_grad():
            logits = model(xv)
        val_acc = (logits.argmax(1) == yv).float().mean()
        print(f"epoch {epoch}: val_acc {val_acc:.3f}")
        ctx.report({"val_acc": val_acc, "val_loss": nn.functional.cross_entropy(logits, yv)},
                   checkpoint={"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch})


if __name__ == "__main__":
    main()
