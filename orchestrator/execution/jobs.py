"""Submitting an `ablator` command to a Ray cluster as a Ray job (`--address http://head:8265`).

The whole command (every stage of a launch) then runs in one driver on the cluster: it
outlives the laptop that submitted it. The user's project travels as the job's
working_dir unless the cluster's image holds it (`--no-upload`).
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from rich.console import Console

from ..errors import ClusterError
from .code import working_dir_env

AGENT_WAIT_S = 60


def is_job_address(address: str | None) -> bool:
    return bool(address) and address.startswith(("http://", "https://"))


def submit(address: str, args: list[str], study: str, console: Console,
           upload: bool = True) -> str:
    """Submit `ablator <args> --address auto` as a Ray job; return its submission id."""
    from ray.job_submission import JobSubmissionClient

    entrypoint = shlex.join(["ablator", *args, "--address", "auto"])
    runtime_env = working_dir_env(Path.cwd())[0] if upload else None
    deadline = time.monotonic() + AGENT_WAIT_S
    while True:
        try:
            client = JobSubmissionClient(address)
            job_id = client.submit_job(
                entrypoint=entrypoint,
                runtime_env=runtime_env,
                metadata={"ablator_command": args[0], "ablator_study": study},
            )
            break
        except (ConnectionError, RuntimeError) as exc:
            # a head that just started has no job agent yet: it says "try again later"
            if "try again later" in str(exc) and time.monotonic() < deadline:
                time.sleep(2)
                continue
            raise ClusterError(f"could not submit `ablator {args[0]}` to the Ray cluster at {address}: {exc}") from None
    console.print(f"Submitted `ablator {args[0]}` of '{study}' as Ray job [bold]{job_id}[/bold] to {address}\n"
                  f"  follow it: ray job logs -f {job_id} --address {address}   (or the dashboard)")
    return job_id
