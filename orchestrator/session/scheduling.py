"""The tuning stage on a schedule: record it, submit or print what waits for it, move, cancel, wait."""

from __future__ import annotations

import shlex
import signal
from datetime import datetime
from pathlib import Path

import ray
from rich.console import Console

from ..config import StudyConfig
from ..errors import Interrupted, StudyError
from ..execution import jobs, runner
from ..ledger import Study
from ..scaffold import init_hint
from ..tuning import schedule


def schedule_tuning(study: Study, config: StudyConfig, console: Console, at: datetime,
                    jobs_address: str | None = None, *, n_trials: int | None = None, upload: bool = True,
                    extra_excludes: list[str] = ()) -> None:
    """Record the tuning stage as scheduled for `at` (a schedule before is replaced, its Ray job
    stopped; a moved one keeps its budget), with its trial budget when one was asked for (whatever
    runs the stage then uses it); with a Jobs API address, submit the Ray job that waits for the time and runs it."""
    at = schedule.utc(at)
    n_trials = n_trials or schedule.scheduled_trials(study)  # a moved schedule keeps its budget
    stop_runner(study, console)
    study.set_stage("tuning", "scheduled", at=at.isoformat(), **({"n_trials": n_trials} if n_trials else {}))
    path = study.path
    if jobs_address:
        job_id = jobs.submit(jobs_address, ["tune", str(path), "--wait"], config.name, console,
                             upload=upload, name=schedule.job_name(config.name, at),
                             extra_excludes=extra_excludes)
        schedule.set_runner(study, job_id=job_id, address=jobs_address)
        console.print(
            f"Tuning stage scheduled for {at.isoformat()}: Ray job {job_id} waits for it on the cluster "
            f"(holding no CPU or GPU), then runs it there.\n"
            f"  see it: ablator status {path}\n"
            f"  cancel: ablator tune {path} --cancel --address {jobs_address}\n"
            f"  move:   ablator tune {path} --at NEW_TIME --address {jobs_address}",
            markup=False, highlight=False, soft_wrap=True)
        return
    tune = shlex.join(["ablator", "tune", str(path)])
    here = shlex.quote(str(Path.cwd()))
    console.print(
        f"Tuning stage scheduled for {at.isoformat()}. Nothing waits for it yet; start one of:\n"
        f"  {schedule.wait_command(path)}      (this machine: sleeps until then and runs it; "
        f"Ctrl-C leaves it scheduled)\n"
        f"  systemd-run --user --on-calendar='{at.strftime('%Y-%m-%d %H:%M:%S')} UTC' "
        f"--working-directory={here} {tune}      (this machine, no terminal kept open)\n"
        f"  sbatch --begin={at.strftime('%Y-%m-%dT%H:%M:%S')} launch/slurm/ablate.sbatch "
        f"tune {shlex.quote(str(path))}      (Slurm; --begin is in the cluster's local time"
        f"{init_hint('launch/slurm/ablate.sbatch')})\n"
        f"  Kubernetes: launch/kuberay/tune-cronjob.yaml with schedule "
        f"\"{at.minute} {at.hour} {at.day} {at.month} *\" (UTC{init_hint('launch/kuberay/tune-cronjob.yaml')})\n"
        f"  a Ray cluster: ablator tune {path} --at {at.isoformat()} --address http://HEAD:8265",
        markup=False, highlight=False, soft_wrap=True,
    )


def cancel_schedule(study: Study, console: Console, address: str | None = None) -> None:
    """`ablator tune DIR --cancel`: stop the scheduled stage's Ray job; the stage becomes manual."""
    at = schedule.scheduled_at(study)
    if at is None:
        raise StudyError(f"Nothing to cancel: the tuning stage of {study.path} is "
                         f"{schedule.stage(study).get('state', 'not started')}, not scheduled.")
    with study.lock():
        stop_runner(study, console, address)
        study.set_stage("tuning", "manual", cancelled=at.isoformat())
    console.print(f"The tuning stage scheduled for {at.isoformat()} is cancelled; it is manual now: run "
                  f"`ablator tune {study.path}` when you like.", soft_wrap=True)


class NotScheduled(Exception):
    """Under the study lock, a waiting runner finds its stage no longer scheduled (run, moved, cancelled)."""


def stop_runner(study: Study, console: Console, address: str | None = None) -> None:
    """Stop the Ray job that waits for a scheduled stage, if one does (`address` overrides the recorded one).

    A `tune --wait` process needs no stopping: it sees the schedule change and ends itself.
    """
    waiting = schedule.stage(study).get("runner") or {} if schedule.scheduled_at(study) else {}
    if "job_id" not in waiting:
        return
    where = address if jobs.is_job_address(address) else waiting["address"]
    state = jobs.stop(where, waiting["job_id"])
    console.print(f"Stopped Ray job {waiting['job_id']} on {where}, which waited for the old schedule"
                  if state in jobs.ALIVE else f"Ray job {waiting['job_id']} on {where} was {state.lower()} already",
                  soft_wrap=True)


def jobs_api_address(study: Study, address: str | None) -> str | None:
    """The Jobs API a scheduled stage's Ray job goes to: `--address http://…`, the dashboard of the
    cluster at `--address` (auto, host:port, ray://), or the cluster of the schedule it replaces."""
    if jobs.is_job_address(address):
        return address
    if address:
        url = runner.connect(address)
        ray.shutdown()
        return url
    return (schedule.stage(study).get("runner") or {}).get("address") if schedule.scheduled_at(study) else None


def wait_for_schedule(study: Study, at: datetime, console: Console) -> bool:
    """Sleep until the scheduled time; False when the schedule changed meanwhile."""
    if not schedule.in_ray_job():  # a Ray job's runner is recorded by whoever submitted it
        schedule.set_runner(study, **schedule.this_process())
    console.print(f"Waiting until {at.isoformat()} to run the tuning stage of {study.path} "
                  "(Ctrl-C leaves it scheduled).", soft_wrap=True)
    try:
        due = schedule.wait_until(study, at)
    except KeyboardInterrupt:
        raise Interrupted(signal.SIGINT, f"Stopped waiting: the tuning stage of {study.path} stays scheduled "
                                         f"for {at.isoformat()}.") from None
    if not due:
        console.print(f"The tuning stage of {study.path} is no longer scheduled for {at.isoformat()} "
                      f"(now: {schedule.stage(study).get('state')}): this runner stops.", soft_wrap=True)
    return due
