"""`ablator init`: a new study in a project, and the deployment templates the wheel carries.

The starter files (`study.yaml`, `train.py`) live in ``orchestrator/starter``; the launch and docker
templates in the repository's ``launch/`` and ``docker/``, shipped as the data packages
``orchestrator._launch`` and ``orchestrator._docker``. Each is written at the path the docs and the
tool's hints name (``launch/slurm/ablate.sbatch``...), and never over an existing file without
``force``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .config import NAME_RE, json_schema
from .config.trainable import resolve_callable
from .errors import UserError

#: what `ablator init --launch TARGET` writes: project path -> (data package, file in it)
LAUNCH_FILES: dict[str, dict[str, tuple[str, str]]] = {
    "slurm": {"launch/slurm/ablate.sbatch": ("_launch", "slurm/ablate.sbatch")},
    "kuberay": {f"launch/kuberay/{name}": ("_launch", f"kuberay/{name}")
                for name in ("rayjob-project.yaml", "studies-pvc.yaml", "tune-cronjob.yaml")},
    "ray": {"launch/ray-cluster.yaml": ("_launch", "ray-cluster.yaml")},
    "docker": {"docker/Dockerfile": ("_docker", "Dockerfile.project"),
               "docker/Dockerfile.dockerignore": ("_docker", "Dockerfile.project.dockerignore"),
               "docker/entrypoint.sh": ("_docker", "entrypoint.sh")},
    "monitoring": {f"launch/monitoring/{name}": ("_launch", f"monitoring/{name}")
                   for name in ("prometheus.yml", "podmonitor.yaml", "grafana-ablator.json")},
}
EXECUTABLE = {"launch/slurm/ablate.sbatch", "docker/entrypoint.sh"}
STARTER_TRAINABLE = "train:run"


def template(package: str, name: str) -> str:
    """The text of a file the package carries: ``package`` is starter, _launch or _docker."""
    folder = Path(__file__).parent / package
    if not folder.is_dir():  # a source checkout (editable install): the repository's launch/ and docker/
        folder = Path(__file__).parents[1] / package.removeprefix("_")
    return (folder / name).read_text()


def init_hint(path: str) -> str:
    """For a hint that names template ``path``: "" where it exists here, else the command that writes it."""
    target = next(t for t, written in LAUNCH_FILES.items() if path in written)
    return "" if Path(path).exists() else f"; `ablator init --launch {target}` writes {path}"


def study_files(project: Path, trainable: str | None = None, name: str | None = None) -> dict[str, str]:
    """The new study's files by path: study.yaml, its schema and, without ``trainable``, train.py."""
    name = name or re.sub(r"[^A-Za-z0-9_.-]+", "-", project.resolve().name).strip("-.") or "study"
    study = (template("starter", "study.yaml").replace("__NAME__", name)
             .replace("__TRAINABLE__", trainable or STARTER_TRAINABLE))
    out = {"study.yaml": study, "study.schema.json": json.dumps(json_schema(), indent=2) + "\n"}
    if trainable is None:
        out["train.py"] = template("starter", "train.py")
    return out


def launch_files(targets: list[str]) -> dict[str, str]:
    """The templates of these targets by project path."""
    unknown = [t for t in targets if t not in LAUNCH_FILES]
    if unknown:
        raise UserError(f"--launch {unknown[0]}: unknown; choose from {', '.join(LAUNCH_FILES)}")
    return {path: template(*src) for t in targets for path, src in LAUNCH_FILES[t].items()}


def init(project: Path, trainable: str | None = None, launch: list[str] | None = None,
         name: str | None = None, force: bool = False) -> list[Path]:
    """Write a new study (or, with ``launch``, those templates) into ``project``; return the paths written."""
    if trainable is not None:
        try:
            resolve_callable(trainable)
        except ValueError as exc:
            raise UserError(f"--from {trainable}: {exc} (`ablator init` runs in the directory it imports from)") \
                from None
    if name is not None and not NAME_RE.match(name):
        raise UserError(f"--name {name!r}: a study name is letters, digits, '_', '.' and '-', starting with a "
                        "letter or digit")
    wanted = launch_files(launch) if launch else study_files(project, trainable, name)
    existing = [p for p in wanted if (project / p).exists()]
    if existing and not force:
        raise UserError(f"Not overwriting {', '.join(existing)} in {project}: move them away or pass --force.")
    written = []
    for rel, text in wanted.items():
        path = project / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if rel in EXECUTABLE:
            path.chmod(0o755)
        written.append(path)
    return written
