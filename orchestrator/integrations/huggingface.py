"""Hugging Face: ``AblatorTrainerCallback(ctx)`` reports each evaluation and resumes from checkpoints.

::

    cb = AblatorTrainerCallback(ctx)
    args = TrainingArguments(output_dir=cb.output_dir, eval_strategy="epoch", save_strategy="epoch", ...)
    trainer = Trainer(model=model, args=args, ..., callbacks=[cb])
    trainer.train(resume_from_checkpoint=cb.resume_from_checkpoint)

Needs the ``[hf]`` extra (transformers, accelerate).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from ..trial import TrialContext
from . import require

_tf = require("transformers", "hf")

__all__ = ["AblatorTrainerCallback"]  # the public face; the rest is internal

OUTPUT_DIR = "hf"  # the Trainer's output_dir, inside the trial directory
COMPLETE = "ablator-complete"  # written into a checkpoint-* directory once the Trainer has saved all of it
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


class AblatorTrainerCallback(_tf.TrainerCallback):
    """Reports every evaluation's metrics (``eval_loss``, ``eval_<metric>``, ``epoch``, as the Trainer
    logs them) as one step (step = the Trainer's global step); marks each checkpoint complete once
    saved and keeps only the newest (and the best one, if the Trainer tracks it).

    ``resume_from_checkpoint`` is the newest complete ``checkpoint-*`` of an earlier attempt (one cut
    short by a kill has no mark and is skipped), else None: the Trainer then restores model,
    optimizer, scheduler, random states and its place in the data.
    """

    def __init__(self, ctx: TrialContext):
        self.ctx = ctx
        self.output_dir = str(Path(ctx.trial_dir) / OUTPUT_DIR)
        self.resume_from_checkpoint: str | None = newest_complete(self.output_dir)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if state.is_world_process_zero and metrics:
            numbers = {k: float(v) for k, v in metrics.items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)}
            self.ctx.report(numbers, step=state.global_step)

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        saved = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if not saved.is_dir():
            return
        with open(saved / COMPLETE, "w") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        best = Path(state.best_model_checkpoint).name if state.best_model_checkpoint else None
        for old in _checkpoints(args.output_dir):
            if old.name not in (saved.name, best):
                shutil.rmtree(old, ignore_errors=True)


def newest_complete(output_dir: str | Path) -> str | None:
    """The newest ``checkpoint-*`` under `output_dir` that was saved whole, else None."""
    complete = [p for p in _checkpoints(output_dir) if (p / COMPLETE).is_file()]
    return str(complete[-1]) if complete else None


def _checkpoints(output_dir: str | Path) -> list[Path]:
    """``checkpoint-<step>`` directories, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _CHECKPOINT.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]
