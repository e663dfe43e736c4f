"""`ablator launch --address http://head:8265` submits the study as a Ray job to a real cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from orchestrator.ledger import Study
from tests.conftest import REPO, ray_head, write_study

#: every test here starts Ray or a subprocess: not in the quick loop (`pytest -m "not slow"`)
pytestmark = pytest.mark.slow


@pytest.fixture
def ray_head_url():
    """A separate Ray head with a dashboard, to submit a Ray job to."""
    with ray_head("--num-cpus=2") as head:
        yield head["dashboard"]


def test_launch_with_http_address_runs_the_study_as_a_ray_job(ray_head_url, tmp_path):
    from ray.job_submission import JobStatus, JobSubmissionClient

    config = write_study(tmp_path, REPO / "tests/faulty.yaml", name="job-study",
                         components={"flaky": {"kind": "training", "description": "raises once",
                                               "removal": {"fault.mode": "raise_once"}}})
    local = REPO / "tests" / f"_job_{os.getpid()}.yaml"  # the job uploads the working dir
    local.write_text(config.read_text())
    try:
        result = subprocess.run(
            [sys.executable, "-c", "from orchestrator.cli import app; app()", "launch", str(local.relative_to(REPO)),
             "--address", ray_head_url],
            cwd=REPO, capture_output=True, text=True, timeout=120,
            env={**os.environ, "RAY_AUTH_MODE": "disabled"}, check=False,
        )
    finally:
        local.unlink()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Submitted `ablator launch` of 'job-study' as Ray job" in result.stdout
    client = JobSubmissionClient(ray_head_url)
    job = next(j for j in client.list_jobs() if (j.metadata or {}).get("ablator_study") == "job-study")
    assert job.metadata["ablator_command"] == "launch"
    deadline = time.time() + 300
    while client.get_job_status(job.submission_id) not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
        assert time.time() < deadline, "the job did not finish"
        time.sleep(2)
    logs = client.get_job_logs(job.submission_id)
    assert client.get_job_status(job.submission_id) == JobStatus.SUCCEEDED, logs[-3000:]
    records = Study(tmp_path / "studies" / "job-study").records()
    assert len(records) == 4 and all(r.state == "COMPLETED" for r in records)
    assert {r.attempts for r in records if r.variant == "no-flaky"} == {2}
