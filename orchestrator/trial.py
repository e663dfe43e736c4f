"""TrialContext: the only API a user's trainable sees."""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.util
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .config import StudyConfig
from .errors import UserError
from .ledger import TrialStore, write_json

CUBLAS_WORKSPACE = ":4096:8"  # what torch.use_deterministic_algorithms needs from cuBLAS (CUDA >= 10.2)


def set_seeds(seed: int, threads: int | None = None, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (CPU and CUDA) and make cuDNN deterministic.

    torch is seeded now if this process has imported it, else the moment it is first imported
    (a trainable that never imports torch does not pay for its import, a second of CPU per fresh
    worker). ``deterministic`` also turns on ``torch.use_deterministic_algorithms`` (an op without
    a deterministic implementation then raises); ``CUBLAS_WORKSPACE_CONFIG`` must already be in
    the environment before CUDA starts (the worker sets it).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    for hook in [h for h in sys.meta_path if isinstance(h, _SeedTorchOnImport)]:
        sys.meta_path.remove(hook)  # an earlier trial's, in a reused worker, that never imported torch
    if "torch" in sys.modules:
        _seed_torch(sys.modules["torch"], seed, threads, deterministic)
    else:
        sys.meta_path.insert(0, _SeedTorchOnImport(seed, threads, deterministic))


def _seed_torch(torch, seed: int, threads: int | None, deterministic: bool) -> None:
    torch.manual_seed(seed)  # every device's generator: CPU, CUDA (lazily, when it starts), ...
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    if deterministic != torch.are_deterministic_algorithms_enabled():  # the call imports torch's compiler
        torch.use_deterministic_algorithms(deterministic)  # config (a second per fresh worker): only on a change
    if threads:
        torch.set_num_threads(threads)


class _SeedTorchOnImport(importlib.abc.MetaPathFinder):
    """Seeds torch right after it is imported, before the importing code goes on. A lookup that does not
    import it (`importlib.util.find_spec("torch")`, as libraries check that torch is installed) leaves
    the hook in place."""

    def __init__(self, seed: int, threads: int | None, deterministic: bool):
        self.args = (seed, threads, deterministic)
        self.looking = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torch" or self.looking:
            return None
        self.looking = True
        try:
            spec = importlib.util.find_spec("torch")  # the other finders
        finally:
            self.looking = False
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module  # this spec's own loader: only torch's import is wrapped

        def exec_module(module):
            execute(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
                _seed_torch(module, *self.args)

        spec.loader.exec_module = exec_module
        return spec


def rng_state() -> dict:
    """The python, numpy, torch CPU and (if started) CUDA random states, to put back later (torch's only
    where this process has imported it)."""
    version, words, gauss = random.getstate()  # 625 ints: one array pickles in one piece, not 625
    state = {"python": (version, np.array(words, dtype=np.uint32), gauss), "numpy": np.random.get_state()}
    torch = sys.modules.get("torch")
    if torch is not None:
        state["torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Put back what ``rng_state`` saved."""
    version, words, gauss = state["python"]
    random.setstate((version, tuple(int(w) for w in words), gauss))
    np.random.set_state(state["numpy"])
    if "torch" not in state:
        return
    import torch

    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


CHECKPOINT_FORMAT = "ablator-checkpoint/1"
#: the most metrics lines a checkpoint carries (then a report fsyncs metrics.jsonl itself)
CARRIED_ROWS = 64
#: the environment variable that points a script trainable at its context file
CONTEXT_ENV = "ABLATOR_TRIAL_CONTEXT"
CONTEXT_FILE = "context.json"


class TrialStopped(Exception):
    """Raised by `report` when the stage asks a trial to stop early (tuning pruning)."""


class TrialContext:
    """What a trainable gets: its config, seed, and a way to report and checkpoint.

    ``report(metrics, checkpoint=...)`` records one step durably (metrics line, then the
    checkpoint); ``restore()`` returns the last checkpoint after a restart, or None.

    Every checkpoint is saved with the random states (python, numpy, torch CPU and CUDA) and
    the next step number; ``restore()`` puts both back, so a trial killed at any step and
    restarted ends bit-identical to an uninterrupted one on CPU, and a kill between a step's
    metrics line and its checkpoint re-reports that step (the ledger keeps its last value)
    rather than losing, duplicating or shifting steps. The user's checkpoint holds only what
    the trainable needs (model, optimizer, epoch).

    One fsync per step: a report without a checkpoint fsyncs its metrics line; a report with
    one appends the line without fsync and the (fsynced) checkpoint carries the lines not yet
    fsynced (at most ``CARRIED_ROWS``), which ``restore()`` appends again if a power loss took
    them. The worker fsyncs metrics.jsonl before it records the attempt's end.

    In a trial of several workers (``world_size`` > 1, torch.distributed already initialised)
    every rank runs the trainable; only rank 0's ``report`` is recorded (metrics and
    checkpoint), the other ranks' reports are ignored, and ``restore()`` returns the same
    checkpoint on every rank.
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
        purpose: str = "variant",
        attempt: int = 1,
        source: TrialStore | None = None,
        stop_hook: Callable[[int, dict], bool] | None = None,
        device: str | None = None,
        rank: int = 0,
        local_rank: int = 0,
        world_size: int = 1,
    ):
        self.config = config
        self.seed = seed
        self.trial_id = trial_id
        self.variant = variant
        self.removed = list(removed)
        self.stage = stage
        self.purpose = purpose
        self.attempt = attempt
        self.trial_dir = store.path
        self._store = store
        self._source = source
        self._stop_hook = stop_hook
        self._device = device
        self._step = 0  # a restart starts over unless restore() finds a checkpoint
        self.rank, self.local_rank, self.world_size = rank, local_rank, world_size
        self._pinned: tuple | None = None  # (checkpoint,) read once for every rank of a group
        self._unsynced: list[dict] = []  # metrics lines appended since metrics.jsonl was last fsynced
        self.final: dict[str, float] | None = None
        self.fingerprints: dict[str, dict] = {}

    @classmethod
    def local(
        cls,
        config: dict | StudyConfig | str | Path,
        seed: int = 0,
        trial_dir: str | Path | None = None,
        variant: str = "baseline",
        checkpoint: Any = None,
    ) -> TrialContext:
        """A context for running a trainable by hand, outside Ray (debugging, notebooks).

        `config` is the trainable's config as it is, or a study (its YAML path or StudyConfig):
        then `ctx.config` is that variant's config (``"no-dropout"``, ``"norm=batch"``), with its
        removals, alternatives and levels applied exactly as the study applies them.
        """
        removed: list[str] = []
        if not isinstance(config, dict):
            config, removed = _variant_config(config, variant)
        store = TrialStore(Path(trial_dir or tempfile.mkdtemp(prefix="ablator-trial-")))
        store.path.mkdir(parents=True, exist_ok=True)
        if checkpoint is not None:
            store.save_checkpoint(checkpoint)
        set_seeds(seed)
        return cls(config, seed, store, variant=variant, removed=removed)

    @classmethod
    def from_env(cls) -> TrialContext:
        """The context of the trial this process runs for, inside a script trainable.

        The Ray worker writes it (`write_env_file`) and points ``ABLATOR_TRIAL_CONTEXT`` at it;
        the same config, seed, trial_dir, attempt, device and checkpoints as a ``run(ctx)``
        gets, and the seeds set the same way.
        """
        path = os.environ.get(CONTEXT_ENV)
        if not path:
            raise UserError(f"TrialContext.from_env(): ${CONTEXT_ENV} is not set; this script runs as a "
                            "study's trainable ({script: ...}); by hand, use TrialContext.local(config)")
        data = json.loads(Path(path).read_text())
        set_seeds(data["seed"], data["threads"], data["deterministic"])
        source = TrialStore(Path(data["source"])) if data["source"] else None
        return cls(data["config"], data["seed"], TrialStore(Path(data["trial_dir"])), trial_id=data["trial_id"],
                   variant=data["variant"], removed=data["removed"], stage=data["stage"],
                   purpose=data.get("purpose", "variant"), attempt=data["attempt"],
                   source=source, device=data["device"])

    def write_env_file(self, threads: int, deterministic: bool) -> Path:
        """Write what `from_env` rebuilds this context from (in the trial dir); return its path."""
        path = self.trial_dir / CONTEXT_FILE
        write_json(path, {
            "config": self.config, "seed": self.seed, "trial_dir": str(self.trial_dir.resolve()),
            "trial_id": self.trial_id, "variant": self.variant, "removed": self.removed, "stage": self.stage,
            "purpose": self.purpose,
            "attempt": self.attempt, "device": self._device, "threads": threads, "deterministic": deterministic,
            "source": str(self._source.path.resolve()) if self._source is not None else None})
        return path

    # ------------------------------------------------------------ the trainable's API

    def restore(self) -> Any | None:
        """The last checkpoint of this trial (or of the trained baseline, for inference-only).

        For this trial's own checkpoint the random states and the step counter are put back
        as they were when it was saved.
        """
        if self._source is not None:
            return _user_state(self._source.load_checkpoint())
        saved = self._pinned[0] if self._pinned else self._store.load_checkpoint()
        if saved is None:
            return None
        if not _wrapped(saved):  # saved without TrialContext (TrialContext.local, an older ledger)
            self._step = len(self._store.history())
            return saved
        if saved.get("rows") and not self.rank:
            self._store.restore_metrics(saved["rows"])
        set_rng_state(saved["rng"])
        self._step = int(saved["next_step"])
        return saved["state"]

    def report(self, metrics: dict[str, Any], checkpoint: Any = None, step: int | None = None) -> None:
        """Record one step's metrics (and a checkpoint to restart from) durably."""
        step = self._step if step is None else int(step)
        row = {k: _number(v) for k, v in metrics.items()}
        if self.rank:  # rank 0 records the group's steps
            self._step = step + 1
            return
        line = {"step": step, "attempt": self.attempt, "time": time.time(), **row}
        carried = checkpoint is not None and self._source is None and len(self._unsynced) < CARRIED_ROWS
        self._store.append_metrics(line, sync=not carried)
        self._unsynced = [*self._unsynced, line] if carried else []
        if checkpoint is not None and self._source is None:
            self._store.save_checkpoint({"format": CHECKPOINT_FORMAT, "state": checkpoint, "rng": rng_state(),
                                         "next_step": step + 1, "rows": self._unsynced})
        self.heard(step, row)

    def heard(self, step: int, row: dict[str, float]) -> None:
        """A step has been recorded (by `report`, or by this trial's script in its own process);
        raises TrialStopped when the stage asks the trial to stop."""
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

    def pin_checkpoint(self) -> None:
        """Read the checkpoint now, so that ``restore()`` returns it even after rank 0 saves a newer one."""
        self._pinned = (self._store.load_checkpoint(),)

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


def _wrapped(saved: Any) -> bool:
    return isinstance(saved, dict) and saved.get("format") == CHECKPOINT_FORMAT


def _user_state(saved: Any) -> Any:
    return saved["state"] if _wrapped(saved) else saved


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


def _variant_config(study: StudyConfig | str | Path, variant: str) -> tuple[dict, list[str]]:
    """The config a study hands to the trainable for one variant (first tier and sweep value)."""
    from .config import load_config
    from .plan import ablation_trials, variant_by_name

    if not isinstance(study, StudyConfig):
        study = load_config(study)
    try:
        chosen = variant_by_name(study, variant)
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from None
    spec = ablation_trials(study, seeds=[0], only=[chosen])[0]
    return study.resolved(spec.removed, spec.overrides), list(spec.removed)
