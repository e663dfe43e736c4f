"""A Hugging Face project as a trainable: a tiny BERT, built from a config (no hub download),
trained by ``transformers.Trainer`` on synthetic token sequences.

The label says whether token A occurs more often than token B in the sequence: the classifier
reads the [CLS] position, so without attention layers it cannot see the rest. The study
(configs/hf_tokens.yaml) asks whether the encoder layers and gradient clipping earn their
place. ``AblatorTrainerCallback`` reports every evaluation, and a restarted trial resumes from
the newest complete ``checkpoint-*`` of its trial directory.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import BertConfig, BertForSequenceClassification, EarlyStoppingCallback, Trainer, TrainingArguments

from orchestrator.integrations.huggingface import AblatorTrainerCallback

TOKEN_A, TOKEN_B, CLS = 3, 4, 1


class Tokens(torch.utils.data.Dataset):
    """Random sequences [CLS, t1..tn]; label 1 when TOKEN_A occurs more often than TOKEN_B."""

    def __init__(self, n: int, length: int, vocab: int, seed: int):
        rng = np.random.default_rng(seed)
        ids = rng.integers(TOKEN_A, vocab, (n, length))
        ids[:, 0] = CLS
        self.ids = torch.tensor(ids)
        self.labels = torch.tensor(((ids == TOKEN_A).sum(1) > (ids == TOKEN_B).sum(1)).astype(np.int64))

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def accuracy(pred) -> dict:
    return {"accuracy": float((pred.predictions.argmax(-1) == pred.label_ids).mean())}


def fit(ctx, callbacks=()) -> None:
    """Train one trial; `callbacks` go to the Trainer after the orchestrator's (tests add fault hooks)."""
    cfg = ctx.config
    data, model_cfg, train = cfg["data"], cfg["model"], cfg["train"]
    train_set = Tokens(data["n_train"], data["length"], data["vocab"], seed=1)  # the same data for every trial
    val_set = Tokens(data["n_val"], data["length"], data["vocab"], seed=2)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=data["vocab"], hidden_size=model_cfg["hidden"], num_hidden_layers=model_cfg["layers"],
        num_attention_heads=2, intermediate_size=2 * model_cfg["hidden"], max_position_embeddings=data["length"],
        num_labels=2))
    cb = AblatorTrainerCallback(ctx)
    args = TrainingArguments(
        output_dir=cb.output_dir, num_train_epochs=train["epochs"], learning_rate=train["lr"],
        per_device_train_batch_size=train["batch_size"], per_device_eval_batch_size=256,
        max_grad_norm=train["max_grad_norm"], eval_strategy="epoch", save_strategy="epoch",
        load_best_model_at_end=True, metric_for_best_model="accuracy", seed=ctx.seed,
        report_to="none", disable_tqdm=True, logging_strategy="no", use_cpu=ctx.device.type == "cpu",
        dataloader_num_workers=0)
    stop = EarlyStoppingCallback(early_stopping_patience=train["patience"])
    trainer = Trainer(model=model, args=args, train_dataset=train_set, eval_dataset=val_set,
                      compute_metrics=accuracy, callbacks=[cb, stop, *callbacks])
    trainer.train(resume_from_checkpoint=cb.resume_from_checkpoint)


def run(ctx) -> None:
    fit(ctx)
