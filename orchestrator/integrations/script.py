"""Script trainables: each attempt runs the user's script as a subprocess of its Ray worker.

The script calls ``TrialContext.from_env()`` and reports as a ``run(ctx)`` does; its metrics
lines go straight to the trial's ledger files, and this side reads them as they grow, so the
worker's stall watchdog and a stage's stop requests see every step. The script runs in its own
process group, which SIGTERM, trial_timeout and stall_timeout end as a whole; it dies with its
worker (PR_SET_PDEATHSIG) when that is killed outright.
"""

from __future__ import annotations

import collections
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from ..ledger import TrialStore, read_json
from ..ledger.files import complete_lines, parse_lines
from ..trial import CONTEXT_ENV, TrialContext

LOG_FILE = "script.log"  # the script's stdout and stderr, every attempt, in the trial dir
POLL_S = 0.5
TERM_GRACE_S = 10.0  # after SIGTERM, a script has this long to end before SIGKILL
STDERR_LINES = 20  # the last lines of stderr a failed attempt's error holds
_PR_SET_PDEATHSIG = 1
try:  # resolved here, not in the forked child, which must not take the loader's locks
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: the group is still ended by SIGTERM and the watchdog
    _prctl = None

_running: set[int] = set()  # process groups of the scripts this process runs


class ScriptFailed(RuntimeError):
    """The script exited with a non-zero status (the error holds the last lines of its stderr)."""


def script_trainable(spec: dict, project: str) -> Callable[[TrialContext], None]:
    """The trainable for ``trainable: {script, args, script_overrides}`` of the project at `project`."""

    def run(ctx: TrialContext) -> None:
        run_script(ctx, Path(project), spec)

    return run


def command(ctx: TrialContext, project: Path, spec: dict) -> list[str]:
    """The script's command line: python, the script, its args, and Hydra overrides if asked."""
    argv = [sys.executable, str(project / spec["script"]), *spec.get("args", [])]
    if spec.get("script_overrides") == "hydra":
        argv += [f"{key}={hydra_value(v)}" for key, v in leaves(ctx.config)]
        argv.append(f"hydra.run.dir={ctx.trial_dir.resolve() / 'hydra'}")
    return argv


def leaves(tree: dict, prefix: str = "") -> list[tuple[str, object]]:
    """(dotted path, value) of every leaf of a nested config (lists are leaves)."""
    out = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out += leaves(value, path + ".")
        else:
            out.append((path, value))
    return out


def hydra_value(value) -> str:
    """A value in Hydra's override grammar (strings quoted, so '1' stays a string)."""
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, list):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)  # numbers, true/false, null


def run_script(ctx: TrialContext, project: Path, spec: dict) -> None:
    """Run one attempt of the script; raise ScriptFailed on a non-zero exit, TrialStopped if stopped."""
    import torch

    context = ctx.write_env_file(torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, CONTEXT_ENV: str(context),
           "PYTHONPATH": str(project) + (os.pathsep + path if path else ""), "PYTHONUNBUFFERED": "1"}
    metrics = TrialStore(ctx.trial_dir).metrics_path
    offset = complete_lines(metrics)[1] if metrics.exists() else 0  # a torn last line is the script's to cut
    argv = command(ctx, project, spec)
    with open(ctx.trial_dir / LOG_FILE, "ab") as log:
        log.write(f"--- attempt {ctx.attempt}: {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(argv, cwd=project, env=env, stdout=log,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=_die_with_parent)
        _running.add(proc.pid)
        tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        copier = threading.Thread(target=_copy_stderr, args=(proc.stderr, log, tail), daemon=True)
        copier.start()
        try:
            while True:
                try:
                    code = proc.wait(POLL_S)
                except subprocess.TimeoutExpired:
                    code = None
                offset = _hear(ctx, metrics, offset)
                if code is not None:
                    break
        except BaseException:  # SIGTERM, Ctrl-C or a stop request: the whole group ends with this attempt
            end_group(proc)
            raise
        finally:
            _running.discard(proc.pid)
            copier.join(5)
    _collect_fingerprints(ctx)
    if code != 0:
        how = f"exited with {code}" if code > 0 else f"was killed by {signal.Signals(-code).name}"
        raise ScriptFailed(f"script {spec['script']} {how}; last lines of its stderr:\n" + "".join(tail).rstrip())


def _hear(ctx: TrialContext, metrics: Path, offset: int) -> int:
    """Pass each metrics line the script wrote since `offset` to the context (stall watchdog,
    stop requests); return the new offset."""
    if not metrics.exists():
        return offset
    data, end = complete_lines(metrics, offset)
    rows, _ = parse_lines(data, metrics)
    for row in rows:
        step = row.get("step")
        if step is not None:
            ctx.heard(int(step), {k: v for k, v in row.items() if k not in ("step", "attempt", "time")})
    return end


def _collect_fingerprints(ctx: TrialContext) -> None:
    """The data fingerprints the script wrote (ctx.fingerprint_data) go into the trial record too."""
    for path in ctx.trial_dir.glob("data_*.json"):
        data = read_json(path) or {}
        if "hash" in data:
            ctx.fingerprints[path.stem.removeprefix("data_")] = {"hash": data["hash"], "n": len(data.get("items", []))}


def _copy_stderr(pipe, log, tail: collections.deque) -> None:
    for line in iter(pipe.readline, b""):
        log.write(line)
        log.flush()
        tail.append(line.decode(errors="replace"))
    pipe.close()


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the worker that started it dies."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))


def end_group(proc: subprocess.Popen, grace: float = TERM_GRACE_S) -> None:
    """SIGTERM a script's process group, then SIGKILL what is left of it after `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass


def kill_running() -> None:
    """SIGKILL every script this process runs (the watchdog, before it ends the worker)."""
    for pgid in list(_running):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass

