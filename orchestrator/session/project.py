"""The study's project directory: the launch's, recorded with a hash of its code; every later
command (resume, tune, a scheduled stage, their Ray jobs) runs and ships that directory, and
refuses when the code there changed since, naming both paths and the files (`--code-changed ok`
accepts, recorded in provenance.json).

`project.json` in the study directory: the project directory, the code's hash and each code
file's hash (so a change is named by file). A study launched before this was recorded has none:
its commands take the directory they run in, as they did.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from ..config import StudyConfig
from ..errors import StudyError, UserError
from ..execution.code import PROJECT_ENV, changes, code_files, code_hash
from ..ledger import Study, read_json, write_json

PROJECT_FILE = "project.json"
CODE_CHANGED = ("ok",)


def excludes(config: StudyConfig, project: Path) -> list[str]:
    """The study storage's path inside the project (never code, never shipped), if it is inside."""
    root = Path(config.storage.root)
    root = (root if root.is_absolute() else project / root).resolve()
    return [str(root.relative_to(project.resolve()))] if root.is_relative_to(project.resolve()) else []


def shipped_job() -> bool:
    """Whether this process is a Ray job's entrypoint run inside the working_dir its submitter shipped."""
    raw = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    try:
        return bool(raw and json.loads(raw).get("runtime_env", {}).get("working_dir"))
    except (ValueError, AttributeError):
        return False


def record_project(study: Study, config: StudyConfig) -> dict:
    """Record the launch's project directory (this one) and its code; return what provenance lists."""
    here = Path.cwd().resolve()
    files = code_files(here, excludes(config, here))
    shipped = shipped_job()
    where = os.environ.get(PROJECT_ENV) if shipped else None  # the submitter's, not the job's copy
    recorded = {"dir": where or str(here), "code_hash": code_hash(files)}
    write_json(study.path / PROJECT_FILE, {**recorded, "files": files, "shipped": shipped})
    return recorded


def enter_project(study: Study, config: StudyConfig, command: str, code_changed: str | None = None) -> Path:
    """Make the study's project directory this process's (cwd and first on sys.path); return it.

    Inside a Ray job that shipped the project, that copy is the project. Raises StudyError when
    the recorded directory is gone or its code changed since the launch (unless `code_changed` is
    'ok': then the change is appended to provenance.json and the changed code is the study's from now on).
    """
    if code_changed is not None and code_changed not in CODE_CHANGED:
        raise UserError(f"--code-changed takes {' or '.join(CODE_CHANGED)}, not '{code_changed}'")
    recorded = read_json(study.path / PROJECT_FILE, None, mend=f"remove it to take the directory a command runs in "
                         f"as the project of {study.path}, as before the launch recorded it")
    if not isinstance(recorded, dict) or "dir" not in recorded:
        return Path.cwd()  # a study from before the project was recorded: here, as it was
    here, shipped = Path.cwd().resolve(), shipped_job()
    project = here if shipped else Path(recorded["dir"])
    if not project.is_dir():
        raise StudyError(f"The project directory of {study.path}, {project} (where it was launched), is gone: "
                         f"`ablator {command}` runs and ships the launch's code from there. Put the project back "
                         "there, or launch the study anew from where the project is now.")
    files = code_files(project, excludes(config, project))
    before, now = recorded.get("files") or {}, files or {}
    # Ray's copy leaves out what .gitignore lists: a file only one side of a shipped copy has is no change
    if shipped:
        before = {rel: h for rel, h in before.items() if rel in now}
    if recorded.get("shipped"):
        now = {rel: h for rel, h in now.items() if rel in before}
    changed = changes(before, now) if recorded.get("code_hash") and files is not None else []
    if changed:
        listed = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
        if code_changed != "ok":
            raise StudyError(
                f"The code in the project directory of {study.path} changed since the launch: {listed}.\n"
                f"  project directory (the launch's): {project}\n  this command runs in: {here}\n"
                f"  The study's trials ran the launch's code. Put it back, or accept the change with "
                f"`ablator {command} {study.path} --code-changed ok` (recorded in provenance.json).")
        provenance = study.read_provenance()
        provenance.setdefault("code_changes", []).append({
            "time": time.time(), "command": command, "run_in": str(here), "project": str(project),
            "code_hash_before": recorded.get("code_hash"), "code_hash": code_hash(files), "files": changed})
        study.write_provenance(provenance)
        write_json(study.path / PROJECT_FILE, {**recorded, "code_hash": code_hash(files), "files": files,
                                               "shipped": shipped})
    os.chdir(project)
    if sys.path[:1] != [str(project)]:
        sys.path.insert(0, str(project))
    return project
