"""`ablator init`: the files it writes validate, it never overwrites without --force, and the
templates it copies are the repository's launch/ and docker/ files, which the wheel carries."""

from __future__ import annotations

import json
import os
import sys
import tomllib

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.config import json_schema, load_config
from orchestrator.scaffold import LAUNCH_FILES, init_hint
from tests.conftest import REPO


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project directory as the working directory, importable as `ablator` makes it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("train", "mytrain"):
        sys.modules.pop(name, None)


def init(*args: str):
    return CliRunner().invoke(app, ["init", *args])


def test_init_writes_a_study_that_validates_with_its_schema_and_trainable(project):
    result = init()
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in project.iterdir()) == ["study.schema.json", "study.yaml", "train.py"]
    text = (project / "study.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=study.schema.json\n")
    assert json.loads((project / "study.schema.json").read_text()) == json_schema()
    cfg = load_config(project / "study.yaml")  # imports train:run from the project
    assert cfg.name == project.name and cfg.trainable == "train:run"
    assert set(cfg.components) == {"hidden_layer", "input_norm", "weight_decay"}
    for section in ("metrics", "baseline", "components", "design", "seeds", "analysis", "resources",
                    "fault_tolerance", "storage", "tracking", "tuning"):
        assert f"\n{section}:" in text, f"study.yaml has no {section} section"


def test_init_refuses_to_overwrite_without_force(project):
    assert init().exit_code == 0
    (project / "train.py").write_text("# mine\n")
    result = init()
    assert result.exit_code == 2 and "Not overwriting study.yaml, study.schema.json, train.py" in result.output
    assert "--force" in result.output
    assert (project / "train.py").read_text() == "# mine\n"
    assert init("--force").exit_code == 0
    assert "def run(ctx)" in (project / "train.py").read_text()


def test_init_from_the_users_own_trainable_writes_no_train_py(project):
    (project / "mytrain.py").write_text("def fit(ctx):\n    ctx.report({'val_acc': 1.0})\n")
    result = init("--from", "mytrain:fit", "--name", "mine")
    assert result.exit_code == 0, result.output
    assert not (project / "train.py").exists()
    cfg = load_config(project / "study.yaml")
    assert (cfg.name, cfg.trainable) == ("mine", "mytrain:fit")

    result = init("--name", "my study", "--force")
    assert result.exit_code == 2 and "--name 'my study': a study name is letters" in result.output

    result = init("--from", "nowhere:fit", "--force")
    assert result.exit_code == 2 and "--from nowhere:fit: cannot import module 'nowhere'" in result.output


def test_init_launch_writes_the_repository_templates_and_refuses_to_overwrite(project):
    result = init("--launch", "slurm", "--launch", "docker")
    assert result.exit_code == 0, result.output
    sbatch = project / "launch/slurm/ablate.sbatch"
    assert sbatch.read_text() == (REPO / "launch/slurm/ablate.sbatch").read_text()
    assert os.access(sbatch, os.X_OK) and os.access(project / "docker/entrypoint.sh", os.X_OK)
    assert (project / "docker/Dockerfile").read_text() == (REPO / "docker/Dockerfile.project").read_text()
    assert not (project / "study.yaml").exists(), "--launch writes only the templates"

    sbatch.write_text("# edited\n")
    result = init("--launch", "slurm")
    assert result.exit_code == 2 and "launch/slurm/ablate.sbatch" in result.output
    assert sbatch.read_text() == "# edited\n"

    result = init("--launch", "lsf")
    assert result.exit_code == 2 and "--launch lsf: unknown; choose from slurm, kuberay" in result.output


def test_every_template_exists_in_the_repository_and_every_target_writes(project):
    for target, written in LAUNCH_FILES.items():
        for package, name in written.values():
            assert (REPO / package.removeprefix("_") / name).is_file(), (target, name)
        assert init("--launch", target).exit_code == 0
        assert all((project / path).is_file() for path in written)


def test_a_hint_names_the_command_that_writes_a_missing_template(project):
    assert init_hint("launch/slurm/ablate.sbatch") == (
        "; `ablator init --launch slurm` writes launch/slurm/ablate.sbatch")
    init("--launch", "kuberay")
    assert init_hint("launch/kuberay/tune-cronjob.yaml") == ""


def test_the_wheel_lists_every_package_under_orchestrator():
    with open(REPO / "pyproject.toml", "rb") as f:
        setuptools = tomllib.load(f)["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "orchestrator").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert on_disk <= set(setuptools["packages"]), "add the new package to [tool.setuptools] packages"
    assert setuptools["package-dir"] == {"orchestrator._launch": "launch", "orchestrator._docker": "docker"}
