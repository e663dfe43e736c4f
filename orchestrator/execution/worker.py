"""The body of one trial attempt, run inside a Ray worker process."""

from __future__ import annotations

import functools
import os
import platform
import sys
import time
import traceback
from pathlib import Path

from ..config import get_path, load_yaml, resolve_callable
from ..ledger import COMPLETED, RUNNING, Study, TrialStore
from ..provenance import hardware
from ..trial import CUBLAS_WORKSPACE, TrialContext, TrialStopped, set_seeds

_hardware = functools.cache(hardware)  # once per worker process

WORKER_DIED = "the worker running this attempt died (process killed, out of memory or node lost)"


@functools.cache
def _deterministic(study_path: str) -> bool:
    """reproducibility.deterministic of the study (read once per worker process)."""
    data, _ = load_yaml(Study(study_path).config_path)
    return bool(get_path(data, "reproducibility.deterministic", False))


def run_attempt(study_path: str, spec: dict, config: dict, entry: str, code_dir: str, threads: int,
                stop_hook=None) -> dict:
    """Run one attempt of a trial; record it durably; return the trial record.

    A previous attempt that left the record RUNNING without an end died with its worker:
    that is recorded as its error before this attempt starts from the last checkpoint.
    """
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    trials = Path(study_path) / "trials"
    store = TrialStore(trials / spec["trial_id"])
    record = store.read()
    now = time.time()
    if record.get("attempt_started"):
        last_seen = max([r["time"] for r in store.history()[-1:]] + [record["attempt_started"]])
        record["duration_s"] += last_seen - record["attempt_started"]
        record["errors"].append({"attempt": record["attempts"], "error": WORKER_DIED, "traceback": None,
                                 "time": now})
    record.update(state=RUNNING, attempts=record["attempts"] + 1, attempt_started=now,
                  started_at=record.get("started_at") or now, host=platform.node(), pid=os.getpid(),
                  hardware=_hardware())
    store.write(record)

    source = TrialStore(trials / spec["source_trial"]) if spec.get("source_trial") else None
    deterministic = _deterministic(study_path)
    if deterministic:  # cuBLAS reads it when CUDA starts: before any CUDA call in this process
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    record["reproducibility"] = {"deterministic": deterministic,
                                 "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}
    store.write(record)
    set_seeds(spec["seed"], threads, deterministic)
    ctx = TrialContext(config, spec["seed"], store, trial_id=spec["trial_id"], variant=spec["variant"],
                       removed=spec["removed"], stage=spec["stage"], attempt=record["attempts"],
                       source=source, stop_hook=stop_hook)
    stopped = False
    try:
        resolve_callable(entry)(ctx)
    except TrialStopped:
        stopped = True
    except BaseException as exc:
        record = store.read()
        record["errors"].append({"attempt": record["attempts"], "error": f"{type(exc).__name__}: {exc}",
                                 "traceback": traceback.format_exc(), "time": time.time()})
        record["duration_s"] += time.time() - now
        record["attempt_started"] = None
        store.write(record)
        raise
    record = store.read()
    history = store.history()
    record.update(
        state=COMPLETED,
        final=history[-1] if history else ctx.final,
        stopped_early=stopped,
        ended_at=time.time(),
        duration_s=record["duration_s"] + time.time() - now,
        attempt_started=None,
        data_fingerprints=ctx.fingerprints or record.get("data_fingerprints", {}),
    )
    if record["final"]:
        record["final"] = {k: v for k, v in record["final"].items() if k not in ("step", "attempt", "time")}
    if source is not None:
        record["saved_s"] = (source.read() or {}).get("duration_s", 0.0)
    store.write(record)
    return record
