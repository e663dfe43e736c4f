"""TrialContext: the only API a user's trainable sees."""

from __future__ import annotations

import hashlib
import random
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .ledger import TrialStore, write_json


def set_seeds(seed: int, threads: int | None = None) -> None:
    """Seed python, numpy and torch (CPU and CUDA) and make cuDNN deterministic."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    if threads:
        torch.set_num_threads(threads)


class TrialStopped(Exception):
    """Raised by `report` when the stage asks a trial to stop early (tuning pruning)."""


class TrialContext:
    """What a trainable gets: its config, seed, and a way to report and checkpoint.

    ``report(metrics, checkpoint=...)`` records one step durably (metrics line, then the
    checkpoint); ``restore()`` returns the last checkpoint after a restart, or None.
    """

    def __init__(
        self,
        config: dict,
        seed: int,
        store: TrialStore,
        *,
        trial_id: str = "local",
        variant: str = "baseline",
        removed: Iterable[str] = (),
        stage: str = "ablation",
        attempt: int = 1,
        source: TrialStore | None = None,
        stop_hook: Callable[[int, dict], bool] | None = None,
        device: str | None = None,
    ):
        self.config = config
        self.seed = seed
        self.trial_id = trial_id
        self.variant = variant
        self.removed = list(removed)
        self.stage = stage
        self.attempt = attempt
        self.trial_dir = store.path
        self._store = store
        self._source = source
        self._stop_hook = stop_hook
        self._device = device
        self._step = len(store.history())
        self.final: dict[str, float] | None = None
        self.fingerprints: dict[str, dict] = {}

    @classmethod
    def local(
        cls,
        config: dict,
        seed: int = 0,
        trial_dir: str | Path | None = None,
        variant: str = "baseline",
        removed: Iterable[str] = (),
        checkpoint: Any = None,
    ) -> TrialContext:
        """A context for running a trainable by hand, outside Ray (debugging, notebooks)."""
        store = TrialStore(Path(trial_dir or tempfile.mkdtemp(prefix="ablator-trial-")))
        store.path.mkdir(parents=True, exist_ok=True)
        if checkpoint is not None:
            store.save_checkpoint(checkpoint)
        set_seeds(seed)
        return cls(config, seed, store, variant=variant, removed=removed)

    # ------------------------------------------------------------ the trainable's API

    def restore(self) -> Any | None:
        """The last checkpoint of this trial (or of the trained baseline, for inference-only)."""
        if self._source is not None:
            return self._source.load_checkpoint()
        return self._store.load_checkpoint()

    def report(self, metrics: dict[str, Any], checkpoint: Any = None, step: int | None = None) -> None:
        """Record one step's metrics (and a checkpoint to restart from) durably."""
        step = self._step if step is None else int(step)
        row = {k: _number(v) for k, v in metrics.items()}
        self._store.append_metrics({"step": step, "attempt": self.attempt, "time": time.time(), **row})
        if checkpoint is not None and self._source is None:
            self._store.save_checkpoint(checkpoint)
        self._step = step + 1
        self.final = row
        if self._stop_hook is not None and self._stop_hook(step, row):
            raise TrialStopped(f"stopped at step {step}")

    def fingerprint_data(self, split: str, items: Iterable[Any]) -> str:
        """Hash each sample of a data split (for the contamination check); return the split's hash."""
        hashes = [_hash_item(x) for x in items]
        whole = hashlib.sha256("".join(sorted(hashes)).encode()).hexdigest()[:16]
        write_json(self.trial_dir / f"data_{split}.json", {"hash": whole, "items": hashes})
        self.fingerprints[split] = {"hash": whole, "n": len(hashes)}
        return whole

    @property
    def device(self):
        """The torch device of this trial: the GPU Ray assigned it, else the CPU."""
        import torch

        if self._device == "cuda" or (self._device is None and torch.cuda.is_available()):
            return torch.device("cuda", 0)  # Ray sets CUDA_VISIBLE_DEVICES to the trial's GPUs
        return torch.device("cpu")

    @property
    def history(self) -> list[dict]:
        """Every step reported so far (this attempt and earlier ones)."""
        return self._store.history()


def _number(v: Any) -> float:
    try:
        return float(v.item() if hasattr(v, "item") else v)
    except (TypeError, ValueError):
        raise TypeError(f"metric values must be numbers, got {type(v).__name__}") from None


def _hash_item(x: Any) -> str:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        data = np.ascontiguousarray(x).tobytes() + str(x.dtype).encode() + str(x.shape).encode()
    elif isinstance(x, bytes):
        data = x
    else:
        data = repr(x).encode()
    return hashlib.sha1(data).hexdigest()[:16]
