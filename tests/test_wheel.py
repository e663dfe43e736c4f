"""The tool as a user gets it: `python -m build` (sdist, then the wheel from it) installed into a fresh
virtual environment, used from an empty project directory without the repository on the path.

The fresh environment is offline: the wheel goes in with --no-deps, and a .pth file puts this
environment's site-packages (torch, Ray...) after its own, so `orchestrator` comes from the wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator.scaffold import LAUNCH_FILES
from tests.conftest import REPO, short_tmp
from tests.test_launch_files import _run_sbatch

pytestmark = pytest.mark.slow

TEMPLATES = [f"{package.removeprefix('_')}/{name}" for written in LAUNCH_FILES.values()
             for package, name in written.values()]


def run(*cmd, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, REPO, cwd=out)
    return out


@pytest.fixture(scope="module")
def fresh_env(dist, tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", venv, cwd=venv)
    python = venv / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=venv).stdout.strip()
    ours = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    (Path(site) / "outer_deps.pth").write_text("\n".join(sorted(ours)) + "\n")
    (wheel,) = dist.glob("*.whl")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel, cwd=venv)
    return venv / "bin"


def test_sdist_and_wheel_carry_the_templates_and_the_starter(dist):
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    with tarfile.open(sdist) as tar:
        in_sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    for rel in TEMPLATES:
        assert rel in in_sdist, rel
        assert f"orchestrator/_{rel}" in in_wheel, rel
    assert {"orchestrator/starter/study.yaml", "orchestrator/starter/train.py"} <= in_wheel


def test_a_new_project_from_the_wheel_runs_its_study_and_its_sbatch(fresh_env, tmp_path):
    project = tmp_path / "my-project"
    project.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PATH=f"{fresh_env}:{env['PATH']}", COLUMNS="250")
    ablator = fresh_env / "ablator"

    where = run(fresh_env / "python", "-c", "import orchestrator; print(orchestrator.__file__)", cwd=project, env=env)
    assert where.stdout.startswith(str(fresh_env.parent)), where.stdout
    run(ablator, "init", cwd=project, env=env)
    assert (project / "train.py").is_file()
    run(ablator, "validate", "study.yaml", cwd=project, env=env)

    # the ablation to its report, with the tuning stage scheduled: its hints name the templates
    at = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0).isoformat()
    launched = run(ablator, "launch", "study.yaml", f"tuning.schedule={{at: '{at}'}}", "--no-dashboard",
                   "--ray-temp-dir", short_tmp("rt_"), cwd=project, env=env)
    study = project / "studies" / "my-project"
    assert (study / "report.md").is_file()
    assert "`ablator init --launch slurm` writes launch/slurm/ablate.sbatch" in launched.stdout

    run(ablator, "init", "--launch", "slurm", cwd=project, env=env)
    moved = run(ablator, "tune", study, "--at", at, cwd=project, env=env).stdout
    assert " launch/slurm/ablate.sbatch tune " in moved and "--launch slurm" not in moved
    sbatch = project / "launch/slurm/ablate.sbatch"
    stubbed = _run_sbatch(tmp_path, "tune", str(study), script=sbatch)
    assert stubbed.returncode == 0, stubbed.stdout + stubbed.stderr
    assert (tmp_path / "ablator.args").read_text().splitlines() == ["tune", str(study), "--address", "auto"]

    # what the scheduler runs at that time: the tuning stage, to completion
    run(ablator, "tune", study, "--no-dashboard", "--ray-temp-dir", short_tmp("rt_"), cwd=project, env=env)
    assert (study / "tuning" / "report.md").is_file()
