"""Overhead per epoch of the Lightning and Hugging Face callbacks against the bare framework loop.

    python -m benchmarks.integrations [--epochs 4] [--reps 3] [--which lightning,hf]

In one run, on the same machine, alternating so that load from other jobs hits both alike:

- Lightning: ``Trainer.fit`` of an MLP on synthetic data without any checkpointing (bare),
  and the same with ``AblatorCallback`` (a ledger step and a checkpoint written every epoch).
- Hugging Face: ``Trainer.train`` of a tiny BERT built from a config, evaluating and saving
  a checkpoint every epoch (bare), and the same with ``AblatorTrainerCallback`` (a ledger
  step, the checkpoint's completion mark and the pruning of older checkpoints).

Prints the median time per epoch of each and their ratio, and (steadier on a loaded machine)
the time spent inside the callback's hooks per epoch as a share of the bare epoch. Goal: under 2%.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings

import torch

HOOKS = ("on_validation_end", "on_train_epoch_end", "state_dict", "on_evaluate", "on_save")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")


def timed(cb, spent: list[float]):
    """Time every hook of the callback `cb` (into spent[0])."""
    for name in HOOKS:
        if hasattr(cb, name):
            hook = getattr(cb, name)

            def wrapper(*args, _hook=hook, **kwargs):
                start = time.perf_counter()
                try:
                    return _hook(*args, **kwargs)
                finally:
                    spent[0] += time.perf_counter() - start

            setattr(cb, name, wrapper)
    return cb


def lightning_epoch(with_callback: bool, epochs: int) -> tuple[float, float]:
    import lightning as L
    from torch.utils.data import DataLoader

    from components.lightning_spirals import SpiralNet, spirals
    from orchestrator.integrations.lightning import AblatorCallback
    from orchestrator.trial import TrialContext

    ctx = TrialContext.local({}, seed=0, trial_dir=tempfile.mkdtemp(prefix="bench-l-"))
    model = SpiralNet(hidden=128, layers="mlp", lr=0.01)
    data = DataLoader(spirals(16384, 0.03, 1), batch_size=64, shuffle=True)
    val = DataLoader(spirals(2048, 0.03, 2), batch_size=256)
    spent = [0.0]
    callbacks = [timed(AblatorCallback(ctx), spent)] if with_callback else []
    trainer = L.Trainer(max_epochs=epochs, callbacks=callbacks, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        accelerator="cpu", devices=1)
    start = time.perf_counter()
    trainer.fit(model, data, val)
    return (time.perf_counter() - start) / epochs, spent[0] / epochs


def hf_epoch(with_callback: bool, epochs: int) -> tuple[float, float]:
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    from components.hf_tokens import Tokens
    from orchestrator.integrations.huggingface import AblatorTrainerCallback
    from orchestrator.trial import TrialContext

    ctx = TrialContext.local({}, seed=0, trial_dir=tempfile.mkdtemp(prefix="bench-h-"))
    model = BertForSequenceClassification(BertConfig(vocab_size=12, hidden_size=32, num_hidden_layers=2,
                                                     num_attention_heads=2, intermediate_size=64,
                                                     max_position_embeddings=16, num_labels=2))
    cb, spent = AblatorTrainerCallback(ctx), [0.0]
    args = TrainingArguments(output_dir=cb.output_dir, num_train_epochs=epochs, per_device_train_batch_size=32,
                             eval_strategy="epoch", save_strategy="epoch", report_to="none", disable_tqdm=True,
                             logging_strategy="no", use_cpu=True, save_total_limit=1)
    trainer = Trainer(model=model, args=args, train_dataset=Tokens(4096, 16, 12, 1),
                      eval_dataset=Tokens(512, 16, 12, 2), callbacks=[timed(cb, spent)] if with_callback else [])
    start = time.perf_counter()
    trainer.train()
    return (time.perf_counter() - start) / epochs, spent[0] / epochs


def measure(name: str, fn, epochs: int, reps: int) -> None:
    fn(False, 1)  # warm up imports and caches
    bare, wrapped, hooks = [], [], []
    for _ in range(reps):
        bare.append(fn(False, epochs)[0])
        epoch, spent = fn(True, epochs)
        wrapped.append(epoch)
        hooks.append(spent)
    b, w, h = statistics.median(bare), statistics.median(wrapped), statistics.median(hooks)
    print(f"{name:10s} bare {b * 1e3:7.1f} ms/epoch, with callback {w * 1e3:7.1f} ms/epoch (ratio {w / b:.3f}); "
          f"in the callback's hooks {h * 1e3:6.1f} ms/epoch = {h / b:.2%} of a bare epoch (goal < 2%)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--which", default="lightning,hf")
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = {"lightning": lightning_epoch, "hf": hf_epoch}
    for name in args.which.split(","):
        measure(name, runs[name], args.epochs, args.reps)


if __name__ == "__main__":
    main()
