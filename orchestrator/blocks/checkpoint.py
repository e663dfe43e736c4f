"""The checkpoint of a plain training loop: epoch, model, optimizer (and scheduler).

The random states are not part of it: TrialContext saves them with every checkpoint and
puts them back in ``restore()``, so a restarted trial ends exactly where an uninterrupted
one would::

    start = resume(ctx, model, opt, sched)
    for epoch in range(start, epochs):
        ...
        ctx.report(metrics, checkpoint=checkpoint(epoch, model, opt, sched))
"""

from __future__ import annotations

from typing import Any


def checkpoint(epoch: int, model, optimizer, scheduler=None) -> dict[str, Any]:
    """What a restart needs: the epoch just finished and the model's and optimizer's state."""
    state = {"epoch": int(epoch), "model": model.state_dict(), "optimizer": optimizer.state_dict()}
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    return state


def resume(ctx, model, optimizer, scheduler=None) -> int:
    """Load the last checkpoint (if any) into model, optimizer and scheduler; the epoch to start at."""
    state = ctx.restore()
    if state is None:
        return 0
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    return int(state["epoch"]) + 1
