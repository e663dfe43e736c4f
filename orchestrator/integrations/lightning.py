"""Lightning: ``AblatorCallback(ctx)`` reports each epoch and checkpoints it in the trial directory.

::

    cb = AblatorCallback(ctx)
    trainer = L.Trainer(max_epochs=..., callbacks=[cb, ...])
    trainer.fit(model, train_loader, val_loader, ckpt_path=cb.ckpt_path)

Needs the ``[lightning]`` extra (``lightning.pytorch``; the older ``pytorch_lightning``
package has its own Callback class and is not supported).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..trial import TrialContext, rng_state, set_rng_state
from . import require

_pl = require("lightning.pytorch", "lightning")

__all__ = ["AblatorCallback"]  # the public face; the rest is internal

CHECKPOINT = "lightning.ckpt"


class AblatorCallback(_pl.Callback):
    """Reports ``trainer.callback_metrics`` once per training epoch as one step (step = epoch) and
    saves a Lightning checkpoint (`CHECKPOINT` in the trial directory, written atomically, the last
    one kept).

    The step is reported at the end of each training epoch whose validation has run (Lightning
    validates before ``on_train_epoch_end``), so it holds that epoch's validation metrics and its
    epoch-level training metrics; with no validation loop, every epoch. ``ckpt_path`` is None on a
    first attempt and the last checkpoint on a restarted one: Lightning then restores model,
    optimizer, scheduler and loop state and continues at the next epoch; this callback's own state
    puts back the random states (python, numpy, torch), so shuffling goes on as it would have.
    """

    def __init__(self, ctx: TrialContext):
        self.ctx = ctx
        self.path = Path(ctx.trial_dir) / CHECKPOINT
        self.ckpt_path: str | None = str(self.path) if self.path.is_file() else None
        self._validated = False

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._validated = True

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not self._validated and _validates(trainer):
            return  # no validation this epoch (check_val_every_n_epoch): its val metrics would be stale
        self._validated = False
        if trainer.is_global_zero:
            self.ctx.report(_numbers(trainer.callback_metrics), step=trainer.current_epoch)
        tmp = self.path.with_name(self.path.name + ".tmp")
        trainer.save_checkpoint(tmp)  # every rank takes part; rank 0 writes
        if trainer.is_global_zero:
            os.replace(tmp, self.path)

    def state_dict(self) -> dict:
        state = rng_state()  # its arrays as plain lists: Lightning loads checkpoints with weights_only
        version, words, gauss = state["python"]
        state["python"] = (version, words.tolist(), gauss)
        name, keys, *rest = state["numpy"]
        state["numpy"] = (name, keys.tolist(), *rest)
        return {"rng": state}

    def load_state_dict(self, state_dict: dict) -> None:
        if "rng" in state_dict:
            state = dict(state_dict["rng"])
            name, keys, *rest = state["numpy"]
            state["numpy"] = (name, np.asarray(keys, dtype=np.uint32), *rest)
            set_rng_state(state)


def _validates(trainer) -> bool:
    return bool(trainer.enable_validation and trainer.num_val_batches and sum(trainer.num_val_batches))


def _numbers(metrics: dict) -> dict[str, float]:
    """The scalar metrics (tensors of one element, numbers) by their logged names."""
    return {key: float(value) for key, value in metrics.items()
            if (hasattr(value, "numel") and value.numel() == 1)
            or (isinstance(value, (int, float)) and not isinstance(value, bool))}
