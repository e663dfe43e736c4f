"""A Lightning project as a trainable: a small MLP on two noisy spirals, trained by ``L.Trainer``.

The study (configs/lightning_spirals.yaml) asks whether the hidden layers and gradient
clipping earn their place. ``AblatorCallback`` reports every epoch and checkpoints it, so a
restarted trial continues at its next epoch; EarlyStopping ends a trial once val_acc reaches
``train.stop_at``.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from orchestrator.integrations.lightning import AblatorCallback


def spirals(n: int, noise: float, seed: int) -> TensorDataset:
    """Two interleaved spirals (synthetic: nothing to download)."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.25, 1.0, n) * 3 * np.pi
    label = rng.integers(0, 2, n)
    angle = t + label * np.pi
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], 1) / (3 * np.pi) + rng.normal(0, noise, (n, 2))
    return TensorDataset(torch.tensor(x, dtype=torch.float32), torch.tensor(label))


class SpiralNet(L.LightningModule):
    def __init__(self, hidden: int, layers: str, lr: float):
        super().__init__()
        self.lr = lr
        if layers == "identity":  # removal contract: the hidden layers become one linear map
            self.net = nn.Linear(2, 2)
        else:
            self.net = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                     nn.Linear(hidden, 2))

    def training_step(self, batch, _):
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        logits = self.net(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.lr)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.7)}


def fit(ctx, callbacks=()) -> None:
    """Train one trial; `callbacks` go to the Trainer after the orchestrator's (tests add fault hooks)."""
    cfg = ctx.config
    data, model_cfg, train = cfg["data"], cfg["model"], cfg["train"]
    train_set = spirals(data["n_train"], data["noise"], seed=1)  # the same data for every trial
    val_set = spirals(data["n_val"], data["noise"], seed=2)
    model = SpiralNet(model_cfg["hidden"], model_cfg["layers"], train["lr"])
    cb = AblatorCallback(ctx)
    stop = EarlyStopping("val_acc", mode="max", patience=train["epochs"], stopping_threshold=train["stop_at"])
    trainer = L.Trainer(max_epochs=train["epochs"], callbacks=[cb, stop, *callbacks],
                        gradient_clip_val=train["grad_clip"], accelerator=ctx.device.type, devices=1,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(model, DataLoader(train_set, batch_size=train["batch_size"], shuffle=True),
                DataLoader(val_set, batch_size=256), ckpt_path=cb.ckpt_path)


def run(ctx) -> None:
    fit(ctx)
