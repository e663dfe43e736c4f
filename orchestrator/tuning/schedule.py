"""A tuning stage scheduled for a set time: its runner, its state as status shows it, the wait.

study.json records it as ``stages.tuning = {state: scheduled, at: ISO time, runner: ...}``,
the runner being what waits for the time and then runs the stage:

    {"job_id", "address"}   a Ray job on the cluster (`ablator tune DIR --wait` as its entrypoint)
    {"pid", "host"}         `ablator tune DIR --wait` on a workstation
    absent                  nothing waits: sbatch --begin, a CronJob, systemd-run or a person starts it

The runner takes the study lock only when the time comes, so whichever runner comes first
runs the stage and any other finds it no longer scheduled.
"""

from __future__ import annotations

import os
import shlex
import time
from datetime import UTC, datetime
from pathlib import Path

from ..execution import jobs
from ..ledger import Study

#: how often a waiting runner re-reads the schedule (a cancel or a move stops it)
POLL_S = 10.0


def utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def in_future(at: datetime) -> bool:
    return utc(at) > datetime.now(UTC)


def stage(study: Study) -> dict:
    """The tuning stage's record in study.json ({} before it has one)."""
    return study.info.get("stages", {}).get("tuning") or {}


def scheduled_at(study: Study) -> datetime | None:
    """The time the tuning stage is scheduled for, or None when it is not scheduled."""
    record = stage(study)
    return datetime.fromisoformat(record["at"]) if record.get("state") == "scheduled" else None


def scheduled_trials(study: Study) -> int | None:
    """The trial budget the scheduled stage was given (`--n-trials` with `--at`), or None."""
    return stage(study).get("n_trials") if scheduled_at(study) is not None else None


def job_name(study_name: str, at: datetime) -> str:
    return f"ablator tune {study_name} at {utc(at).isoformat()}"


def wait_command(study_path: Path) -> str:
    return shlex.join(["ablator", "tune", str(study_path), "--wait"])


def set_runner(study: Study, **runner) -> None:
    """Record who waits for the scheduled stage (the stage stays scheduled)."""
    record = {k: v for k, v in stage(study).items() if k != "time"}
    study.set_stage("tuning", **{**record, "runner": runner})


def this_process() -> dict:
    return {"pid": os.getpid(), "host": os.uname().nodename}


def describe(study: Study) -> dict | None:
    """The scheduled stage as `ablator status` shows it; None when the stage is not scheduled.

    state: ``scheduled`` (its runner waits, or nothing waits yet), ``due`` (the time passed and the
    runner is alive: it runs or waits for the study lock), ``missed`` (the time passed and no
    runner is alive). `alive` is None when it cannot be told from here (another host, a cluster
    out of reach): then the stage is never called missed.
    """
    at = scheduled_at(study)
    if at is None:
        return None
    runner = stage(study).get("runner") or {}
    start = f"start it with `{wait_command(study.path)}`"
    if "job_id" in runner:
        job = jobs.job_state(runner["address"], runner["job_id"])
        alive = None if job is None else job in jobs.ALIVE
        where = (f"Ray job {runner['job_id']} on {runner['address']} "
                 f"({job or 'state unknown: the cluster does not answer from here'})")
    elif "pid" in runner:
        alive = _pid_alive(runner["pid"]) if runner.get("host") == os.uname().nodename else None
        where = f"`ablator tune --wait`, pid {runner['pid']} on {runner.get('host', '?')}"
        if alive is False:
            where += f" (gone); {start}"
    else:
        alive, where = False, f"no runner: {start}"
    state = "scheduled" if in_future(at) else "missed" if alive is False else "due"
    if state == "missed":
        where += f", or run it now with `ablator tune {study.path}`"
    return {"at": utc(at).isoformat(), "state": state, "runner": where, "alive": alive,
            "n_trials": scheduled_trials(study)}


def wait_until(study: Study, at: datetime) -> bool:
    """Sleep until `at` while the stage stays scheduled for it; False when it was cancelled or moved."""
    at = utc(at)
    while True:
        if scheduled_at(study) != at:
            return False
        left = (at - datetime.now(UTC)).total_seconds()
        if left <= 0:
            return True
        time.sleep(min(left, POLL_S))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def in_ray_job() -> bool:
    """Whether this process is a Ray job's entrypoint (the job supervisor sets this for it)."""
    return "RAY_JOB_CONFIG_JSON_ENV_VAR" in os.environ
