"""Trainables for the ledger tests: real torn writes and slow runs (no fakes)."""

from __future__ import annotations

import os
import time


def torn_once(ctx):
    """Five epochs; on its first attempt, at epoch 3, writes half a metrics row and dies."""
    state = ctx.restore()
    start = 0 if state is None else state["epoch"] + 1
    for epoch in range(start, ctx.config["train"]["epochs"]):
        time.sleep(ctx.config["train"]["sleep"])
        if epoch == ctx.config["train"]["tear_at"] and ctx.attempt == 1:
            with open(ctx.trial_dir / "metrics.jsonl", "a") as fh:
                fh.write(f'{{"step": {epoch}, "attempt": 1, "sco')
                fh.flush()
            os._exit(1)
        ctx.report({"score": 1.0 + 0.1 * epoch + 0.01 * ctx.seed}, checkpoint={"epoch": epoch})
