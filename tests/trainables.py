"""Trainables that fail on purpose, for the fault-tolerance tests (real faults, no fakes)."""

from __future__ import annotations

import os
import signal
import time


def faulty(ctx):
    """Four epochs; `fault.mode` decides how the first attempt goes wrong at `fault.epoch`.

    none: never; raise_once: raises on the first attempt; always: raises every attempt;
    sigkill_once: the worker process kills itself with SIGKILL on the first attempt; sigterm_once: it gets
    SIGTERM (as from a node being drained) on the first attempt.
    """
    cfg = ctx.config
    state = ctx.restore()
    start = 0 if state is None else state["epoch"] + 1
    ctx.fingerprint_data("train", [b"a", b"b"])
    ctx.fingerprint_data("test", [b"c"])
    for epoch in range(start, cfg["train"]["epochs"]):
        time.sleep(cfg["train"]["sleep"])
        mode = cfg["fault"]["mode"]
        if epoch == cfg["fault"]["epoch"]:
            if mode == "always" or (mode == "raise_once" and ctx.attempt == 1):
                raise RuntimeError(f"injected failure at epoch {epoch}")
            if mode == "sigkill_once" and ctx.attempt == 1:
                os.kill(os.getpid(), signal.SIGKILL)
            if mode == "sigterm_once" and ctx.attempt == 1:
                os.kill(os.getpid(), signal.SIGTERM)
        score = 1.0 + 0.1 * epoch + 0.01 * ctx.seed - 0.5 * (mode != "none")
        ctx.report({"score": score, "started_at_epoch": start}, checkpoint={"epoch": epoch})

