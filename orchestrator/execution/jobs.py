"""Submitting an `ablator` command to a Ray cluster as a Ray job (`--address http://head:8265`).

The whole command (every stage of a launch) then runs in one driver on the cluster: it
outlives the laptop that submitted it. The user's project travels as the job's
working_dir unless the cluster's image holds it (`--no-upload`). A job's metadata names it
(`job_name`, the Name column of the dashboard's Jobs list) and carries the `ablator_*` keys.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from rich.console import Console

from ..errors import ClusterError
from .code import PROJECT_ENV, working_dir_env

#: how long a submission waits for a head that is not ready yet (its dashboard not listening,
#: or "No available agent to submit job, please try again later": the head's job agent starting)
AGENT_WAIT_S = 180
#: a dashboard that refuses connections: a head still starting, or a wrong address (fail sooner)
CONNECT_WAIT_S = 30
RETRY_EVERY_S = 2
#: job states in which a job is alive (waiting or running)
ALIVE = ("PENDING", "RUNNING")
MISSING = "MISSING"


def is_job_address(address: str | None) -> bool:
    return bool(address) and address.startswith(("http://", "https://"))


def submit(address: str, args: list[str], study: str, console: Console, upload: bool = True,
           name: str | None = None, extra_excludes: list[str] = ()) -> str:
    """Submit `ablator <args> --address auto` as a Ray job; return its submission id.

    The job holds no CPU or GPU itself (its driver's trials ask for their own); `name` is its
    `job_name` (default: `ablator <study>`).
    """
    entrypoint = shlex.join(["ablator", *args, "--address", "auto"])
    runtime_env = working_dir_env(Path.cwd(), extra_excludes)[0] if upload else None
    if runtime_env:  # a launch in the job records this directory as the study's project, not its copy
        runtime_env["env_vars"] = {PROJECT_ENV: str(Path.cwd().resolve())}
    metadata = {"job_name": name or f"ablator {study}", "ablator_command": args[0], "ablator_study": study}
    job_id = _when_ready(address, f"submit `ablator {args[0]}`", console, lambda client: client.submit_job(
        entrypoint=entrypoint, runtime_env=runtime_env, metadata=metadata, entrypoint_num_cpus=0))
    console.print(f"Submitted `ablator {args[0]}` of '{study}' as Ray job [bold]{job_id}[/bold] to {address}\n"
                  f"  follow it: ray job logs -f {job_id} --address {address}   (or the dashboard)", soft_wrap=True)
    return job_id


def stop(address: str, job_id: str) -> str:
    """Stop a job; return its state before (ClusterError when the cluster cannot be asked)."""
    state = job_state(address, job_id, quiet=False)
    if state in ALIVE:
        _client(address).stop_job(job_id)
    return state


def job_state(address: str, job_id: str, quiet: bool = True) -> str | None:
    """A job's state (PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED; MISSING when the cluster does not
    know it, e.g. a head started again); None when the cluster cannot be asked (`quiet`; else ClusterError).
    """
    try:
        return str(_client(address).get_job_status(job_id).value)
    except RuntimeError as exc:  # the Jobs API answers 404 for a job it does not know
        if "does not exist" in str(exc) or "404" in str(exc):
            return MISSING
        if quiet:
            return None
        raise ClusterError(f"could not ask the Ray cluster at {address} about job {job_id}: {exc}") from None
    except (ConnectionError, OSError) as exc:
        if quiet:
            return None
        raise ClusterError(f"could not reach the Ray cluster at {address}: {exc}") from None


def _client(address: str):
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except (ConnectionError, RuntimeError, OSError) as exc:
        raise ConnectionError(str(exc)) from None


def _when_ready(address: str, what: str, console: Console, call):
    """`call(client)`, retried with a progress line while the head is not ready yet (bounded).

    Right after `ray start` the dashboard first refuses connections, then answers HTTP 500
    "No available agent ... try again later" (after waiting 10 s for the agent) until the
    head's job agent has started; both pass. Anything else fails at once, as ClusterError.
    """
    started, said = time.monotonic(), set()
    while True:
        try:
            return call(_client(address))
        except (ConnectionError, RuntimeError, OSError) as exc:
            no_agent = "try again later" in str(exc)
            wait_s = AGENT_WAIT_S if no_agent else CONNECT_WAIT_S if "Failed to connect" in str(exc) else 0
            if time.monotonic() - started > wait_s:
                waited = f" (retried for {wait_s} s)" if wait_s else ""
                raise ClusterError(f"could not {what} to the Ray cluster at {address}{waited}: {exc}") from None
            if no_agent not in said:
                said.add(no_agent)
                console.print(f"The Ray cluster at {address} is not ready to take jobs yet "
                              f"({'its job agent is starting' if no_agent else 'its dashboard does not answer'}); "
                              f"retrying for up to {wait_s} s...", soft_wrap=True)
            time.sleep(RETRY_EVERY_S)
