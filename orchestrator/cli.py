"""The `ablator` command."""

from __future__ import annotations

import functools
import json
import os
import sys
from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from .config import json_schema, load_config
from .errors import AblatorError, Interrupted, UserError
from .execution import jobs
from .ledger import COMPLETED, FAILED, PENDING, RUNNING, Study
from .ledger.files import looks_whole
from .ledger.tuning_results import BestTrial
from .overrides import parse as parse_overrides
from .terminal import FitTable

app = typer.Typer(add_completion=True, no_args_is_help=True,
                  help="Ablation studies that prove each component earns its place, then tune the survivors.")
console = Console()


def _version(value: bool) -> None:
    if value:
        from . import __version__

        sys.stdout.write(f"ablator {__version__}\n")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the version and exit.")):
    """Ablation studies that prove each component earns its place, then tune the survivors."""
    # `module:function` resolves from the directory `ablator` runs in, as with `python -m`
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


ADDRESS = typer.Option(None, "--address", help="Ray cluster: 'http://head:8265' runs this command there as a "
                       "Ray job; 'auto', 'host:6379' or 'ray://host:10001' drive it from here. Default: embedded "
                       "local Ray.")
TEMP_DIR = typer.Option(None, "--ray-temp-dir", help="Temp dir of the embedded local Ray.")
OVERRIDES = typer.Argument(None, help="Overrides of the config: key.path=value, +key=value (add), "
                           "~key (delete); values in YAML: 3, 0.1, true, null, [0,1], {a: 1}.",
                           show_default=False)
DASHBOARD = typer.Option(True, "--dashboard/--no-dashboard", help="Start the Ray dashboard (embedded Ray).")
CODE_CHANGED = typer.Option(None, "--code-changed", help="'ok': run on although the code in the study's project "
                            "directory changed since the launch (recorded in provenance.json).")
UPLOAD = typer.Option(True, "--upload/--no-upload", help="With --address: ship the current directory to the "
                      "cluster (Ray runtime_env working_dir); --no-upload when the cluster's image holds the code.")


def user_errors(fn):
    """Turn user mistakes into one readable block and their exit code (2; 130/143 interrupted)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Interrupted as exc:
            told = "" if exc.told else ": finished trials are kept; `ablator resume DIR` continues a study"
            sys.stderr.write(f"{exc}{told}\n")
            raise typer.Exit(exc.exit_code) from None
        except AblatorError as exc:
            sys.stderr.write(f"{exc}\n")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            sys.stderr.write("Interrupted: finished trials are kept; `ablator resume DIR` continues.\n")
            raise typer.Exit(130) from None

    return wrapper


def _finish(study) -> None:
    """Exit 1 when any trial FAILED (the report is written): a job chain or CI can tell."""
    from .session import failed_trials

    failed = failed_trials(study) if study is not None else []
    if failed:
        console.print(f"[red]{len(failed)} trial(s) FAILED[/red] (the report lists them; "
                      f"`ablator resume {study.path} --retry-failed` runs them again):")
        for r in failed[:20]:
            console.print(f"  {r.trial_id}: {escape(r.last_error or '?')}")
        raise typer.Exit(1)


@app.command()
@user_errors
def validate(config: Path = typer.Argument(..., help="Study YAML file."),
             overrides: list[str] | None = OVERRIDES):
    """Check a study config; print a summary or every problem with its line."""
    cfg = load_config(config, parse_overrides(overrides or []))
    from .session import print_plan

    console.print(f"[green]OK[/green] {config}: study '{cfg.name}', {len(cfg.components)} components")
    print_plan(cfg, console)


@app.command()
@user_errors
def convert(config: Path = typer.Argument(..., help="ABLATOR ParallelConfig or RunConfig YAML file."),
            trainable: str = typer.Option(None, "--trainable", help="module:function of the study's trainable "
                                          "(without it: a placeholder that `ablator validate` names)."),
            gpu_memory_mb: float = typer.Option(24576, "--gpu-memory-mb", min=1, help="GPU memory that "
                                                "gpu_mb_per_experiment is a share of (gpus_per_trial).")):
    """Write a study config converted from an ABLATOR config to stdout (see the docs: Coming from ABLATOR)."""
    from .convert import convert as to_study

    sys.stdout.write(to_study(config, trainable, gpu_memory_mb))


@app.command()
@user_errors
def init(trainable: str | None = typer.Option(None, "--from", help="module:function of your own trainable "
                                              "(without it: train.py, a tiny example to start from)."),
         launch: list[str] | None = typer.Option(None, "--launch", help="Write these deployment templates instead: "
                                                 "slurm, kuberay, ray, docker, monitoring (repeatable)."),
         name: str | None = typer.Option(None, "--name", help="The study's name (default: this directory's)."),
         force: bool = typer.Option(False, "--force", help="Overwrite files that exist.")):
    """Start a study in the current directory: study.yaml, its schema and train.py."""
    from .scaffold import init as scaffold

    for path in scaffold(Path.cwd(), trainable, launch, name, force):
        console.print(f"wrote {path.relative_to(Path.cwd())}", markup=False, highlight=False)
    if not launch:
        console.print("next: ablator validate study.yaml, then ablator launch study.yaml"
                      + ("; first point baseline and the components' removals at the config your trainable reads"
                         if trainable else ""), markup=False, highlight=False)


@app.command()
def schema():
    """Print the JSON Schema of study configs (for editors)."""
    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


@app.command()
@user_errors
def launch(
    config: Path = typer.Argument(..., help="Study YAML file."),
    overrides: list[str] | None = OVERRIDES,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (variants x seeds) and exit."),
    variants: str | None = typer.Option(None, "--variants",
                                        help="Re-run only these variants (comma-separated); reuse the rest."),
    address: str | None = ADDRESS,
    ray_temp_dir: str | None = TEMP_DIR,
    dashboard: bool = DASHBOARD,
    upload: bool = UPLOAD,
):
    """Run a study: the ablation stage, the report, then tuning as scheduled; return when all is done."""
    chosen = [v.strip() for v in variants.split(",") if v.strip()] if variants else None
    parsed = parse_overrides(overrides or [])
    cfg = load_config(config, parsed)  # a mistake in the file exits 2 before the session's imports (a second or two)
    if jobs.is_job_address(address) and not dry_run:
        if not Path(cfg.storage.root).is_absolute():
            console.print(f"[yellow]storage.root '{cfg.storage.root}' is relative: the study dir will live in the "
                          "job's working dir on the head node. Use an absolute path on shared storage.[/yellow]")
        args = ["launch", _inside_cwd(config), *(overrides or [])] + (["--variants", variants] if variants else [])
        jobs.submit(address, args, cfg.name, console, upload=upload)
        return
    from . import session

    _finish(session.launch(config, address=address, variants=chosen, dry_run=dry_run, console=console,
                           ray_temp_dir=ray_temp_dir, dashboard=dashboard, upload=upload, overrides=parsed))


@app.command()
@user_errors
def resume(
    study_dir: Path = typer.Argument(..., help="Study directory."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Also re-run trials recorded FAILED."),
    address: str | None = ADDRESS,
    ray_temp_dir: str | None = TEMP_DIR,
    dashboard: bool = DASHBOARD,
    upload: bool = UPLOAD,
    code_changed: str | None = CODE_CHANGED,
    budget: str | None = typer.Option(None, "--budget", help="A new budget, e.g. trial_hours=12, gpu_hours=40 or "
                                      "max_trials=60: replaces the one in force (a spent one exits 3) and continues."),
):
    """Complete an interrupted study; finished trials are never re-run. Runs the launch's project directory."""
    study = _study(study_dir)  # a missing or damaged study.json exits 2 before the session's imports
    from . import session

    if jobs.is_job_address(address):
        session.in_project(study, "resume", code_changed)  # the job ships the launch's project
        args = (["resume", str(study.path.resolve())] + (["--retry-failed"] if retry_failed else [])
                + (["--budget", budget] if budget else []))
        jobs.submit(address, args + _code_changed(code_changed), study.info["name"], console, upload=upload)
        return
    _finish(session.resume(study_dir, address=address, console=console, ray_temp_dir=ray_temp_dir,
                           dashboard=dashboard, retry_failed=retry_failed, upload=upload, code_changed=code_changed,
                           budget=budget))


@app.command()
@user_errors
def status(study_dir: Path = typer.Argument(..., help="Study directory."),
           as_json: bool = typer.Option(False, "--json", help="Print one JSON object, for scripts.")):
    """Summarize a study: stages, trial states, attempts, failures, and where each running trial runs."""
    study = _study(study_dir)
    data = _status_data(study)
    if as_json:
        sys.stdout.write(json.dumps(data, indent=1, default=str) + "\n")
        return
    for problem in data["damaged"]:
        console.print(f"[red]damaged:[/red] {escape(problem)}")
    console.print(f"Study [bold]{data['name']}[/bold] ({data['study_id']}) in {study.path}")
    if data["driver"]:
        console.print(f"  running: {data['driver']}"
                      + (f"  (Ray dashboard: {data['dashboard']})" if data["dashboard"] else ""))
    for stage, state in data["stages"].items():
        if stage == "tuning" and data["schedule"]:
            sched = data["schedule"]
            console.print(f"  stage tuning: [bold]{sched['state']}[/bold]  "
                          f"{escape(('was due at ' if sched['state'] == 'missed' else 'for ') + sched['at'])}; "
                          + (f"{sched['n_trials']} trials; " if sched.get("n_trials") else "") +
                          f"runner: {escape(sched['runner'])}", soft_wrap=True)
            continue
        extra = [f"{k}={v}" for k, v in state.items() if k not in ("state", "time") and not isinstance(v, dict)]
        best = state.get("best")
        if isinstance(best, dict) and "trial_id" in best:
            extra.append(BestTrial.model_validate(best).line())
        console.print(f"  stage {stage}: [bold]{state['state']}[/bold]  {escape('  '.join(extra))}")
    header = ("stage", "total", *STATES, "restarts", "trial-hours")
    console.print(FitTable("Trials", header, [
        [stage, str(c["total"]), *(str(c[s]) for s in STATES), str(c["restarts"]), f"{c['trial_hours']:.3f}"]
        for stage, c in data["trials"].items()], justify=["left"] + ["right"] * (len(header) - 1)))
    if data["running"]:
        console.print(FitTable("Running trials", ("trial", "node", "GPU", "attempt", "age", "last report"), [
            [r["trial_id"], r["node"] or "?", r["gpu"] or "-", str(r["attempt"]), f"{r['age_s']:.0f} s",
             Text(f"{r['since_report_s']:.0f} s ago" + ("  STALLED" if r["stalled"] else ""),
                  style="red" if r["stalled"] else "")]
            for r in data["running"]]))
    for f in data["failed"]:
        console.print(f"  [red]FAILED[/red] {f['trial_id']} after {f['attempts']} attempt(s): {escape(f['error'])}")
    if data["cost"]:
        console.print(f"  cost per verdict: {escape(data['cost'])}")


STATES = (COMPLETED, RUNNING, PENDING, FAILED)  # the ledger's states, in the order status shows them


def _status_data(study: Study) -> dict:
    """What `status` shows, as plain data (its --json output)."""
    info = study.info
    plan = study.path / "plan.json"
    damaged = []
    if plan.exists() and not looks_whole(plan):  # status goes on without the plan; resume cannot
        damaged.append(f"{plan}: cut short (it does not end its JSON object); "
                       f"`ablator doctor {study.path} --fix` rebuilds it")
    trials = study.statuses()  # from the study index: no trial directory is opened
    counts: dict[str, dict] = {}
    for t in trials.values():
        c = counts.setdefault(t.stage, {"total": 0, **dict.fromkeys(STATES, 0), "restarts": 0, "trial_hours": 0.0})
        c["total"] += 1
        c[t.state] = c.get(t.state, 0) + 1
        c["restarts"] += max(0, t.attempts - 1)
        c["trial_hours"] += (t.duration_s or 0) / 3600
    driver = study.holder()
    return {
        "name": info["name"], "study_id": info["study_id"], "path": str(study.path), "damaged": damaged,
        "driver": driver, "dashboard": info.get("dashboard") if driver else None,
        "stages": info.get("stages", {}), "schedule": _schedule(study), "trials": dict(sorted(counts.items())),
        "running": _running(study, [tid for tid, t in sorted(trials.items()) if t.state == RUNNING]),
        "failed": [{"trial_id": tid, "attempts": t.attempts, "error": t.last_error}
                   for tid, t in sorted(trials.items()) if t.state == FAILED and t.last_error],
        "cost": _cost_line(study),
    }


def _cost_line(study: Study) -> str | None:
    """What each verdict cost, from the last report's verdicts.json (None before one)."""
    from .errors import LedgerDamaged
    from .ledger.verdicts_json import read_verdicts

    try:
        verdicts = read_verdicts(study.path / "verdicts.json")
    except LedgerDamaged:  # `ablator report` rewrites it; status goes on without it
        return None
    cost = verdicts.cost if verdicts is not None else None
    if cost is None:
        return None
    from .ledger.cost_json import status_line

    return status_line(cost)


def _schedule(study: Study) -> dict | None:
    """A scheduled tuning stage: its time, state (scheduled, due, missed) and runner; else None."""
    if study.info.get("stages", {}).get("tuning", {}).get("state") != "scheduled":
        return None
    from .tuning.schedule import describe

    return describe(study)


def _running(study: Study, running: list[str]) -> list[dict]:
    """Each running trial: node, GPU, attempt, age, time since its last report, stalled or not.

    Only the running trials' records are opened.
    """
    records = [r for r in (study.trial(tid).read() for tid in running) if r and r.attempt_started]
    if not records:
        return []
    import time

    stall = load_config(study.config_path, import_trainable=False).fault_tolerance.stall_timeout
    now, out = time.time(), []
    for r in records:
        rows = study.trial(r.trial_id).history()
        since = now - max([rows[-1]["time"]] if rows else [r.attempt_started])
        out.append({"trial_id": r.trial_id, **_where(r),
                    "attempt": r.attempts, "age_s": now - r.attempt_started, "since_report_s": since,
                    "stalled": bool(stall and since > stall)})
    return out


def _where(r) -> dict:
    """Node and GPU(s) of a running trial; of every rank (rank:host, rank:GPUs) for a multi-worker trial."""
    if not r.ranks:
        return {"node": r.host, "gpu": r.gpu_ids}
    gpus = [f"{k['rank']}:{k['gpu_ids']}" for k in r.ranks if k.get("gpu_ids")]
    return {"node": " ".join(f"{k['rank']}:{k['host']}" for k in r.ranks), "gpu": " ".join(gpus) or None}


@app.command()
@user_errors
def doctor(
    study_dir: Path = typer.Argument(..., help="Study directory."),
    fix: bool = typer.Option(False, "--fix", help="Mend what can be mended (takes the study lock)."),
):
    """Check every file of a study's ledger; with --fix, rebuild or set aside what is damaged."""
    from .doctor import doctor as do_doctor

    do_doctor(study_dir, fix=fix, console=console)


@app.command("list")
@user_errors
def list_studies(
    root: Path = typer.Argument(Path("studies"), help="Directory holding study directories."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per study, for scripts."),
):
    """List the studies under a directory with the state of each stage."""
    studies = sorted((Study(p.parent) for p in root.glob("*/study.json")), key=lambda s: s.path.name)
    rows = []
    for study in studies:
        info = study.info
        rows.append({"name": info.get("name"), "study_id": info.get("study_id"), "path": str(study.path),
                     "created": info.get("created"),
                     "stages": {k: v.get("state") for k, v in info.get("stages", {}).items()},
                     "schedule": _schedule(study)})
        if rows[-1]["schedule"]:  # scheduled, due or missed
            rows[-1]["stages"]["tuning"] = rows[-1]["schedule"]["state"]
    if as_json:
        sys.stdout.write("".join(json.dumps(r) + "\n" for r in rows))
        return
    if not rows:
        console.print(f"No studies under {root}")
        return
    console.print(FitTable(f"Studies under {root}", ("name", "study id", "created", "ablation", "tuning", "path"), [
        [r["name"], r["study_id"],
         datetime.fromtimestamp(r["created"]).strftime("%Y-%m-%d %H:%M") if r["created"] else "?",
         r["stages"].get("ablation", "-"),
         r["stages"].get("tuning", "-") + (f" ({r['schedule']['at']})" if r["schedule"] else ""),
         r["path"]] for r in rows]))


@app.command()
@user_errors
def report(study_dir: Path = typer.Argument(..., help="Study directory.")):
    """Write report.md, results.csv, verdicts.json and plots; print the tables."""
    study = _study(study_dir)  # a missing or damaged study.json exits 2 before the session's imports
    from .session import write_report

    write_report(study.path, console)


@app.command()
@user_errors
def compare(old: Path = typer.Argument(..., help="The reference study directory (e.g. the one from main)."),
            new: Path = typer.Argument(..., help="The study directory to check against it."),
            fail_on: list[str] = typer.Option(["changed"], "--fail-on", help="What fails (exit 1): changed, "
                                              "changed-beyond-min-effect, essential-lost, unclear; repeatable."),
            paired: bool = typer.Option(False, "--paired", help="Pair rows by the seeds both studies share "
                                        "(default: unpaired, Welch)."),
            partial: bool = typer.Option(False, "--partial", help="Compare a study whose ablation stage is "
                                         "not finished (its rows are interim)."),
            alpha: float | None = typer.Option(None, "--alpha", min=0, max=1, help="Default: the old study's."),
            min_effect: float | None = typer.Option(None, "--min-effect", min=0, help="Default: the old study's."),
            as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
            html: Path | None = typer.Option(None, "--html", help="Also write this self-contained HTML page.")):
    """Compare two studies row by row: exit 0 when nothing fails the gate, 1 when a row does, 2 on bad input."""
    from .compare.gate import run

    raise typer.Exit(run(old, new, fail_on=fail_on, paired=paired, partial=partial, alpha=alpha,
                         min_effect=min_effect, as_json=as_json, html=html, console=console))


@app.command()
@user_errors
def sync(study_dir: Path = typer.Argument(..., help="Study directory.")):
    """Write the trials (and the analysis run) W&B does not hold yet, e.g. after a W&B failure."""
    from .tracking import sync_study

    sync_study(_study(study_dir).path, echo=lambda line: console.print(line, markup=False, highlight=False))


@app.command()
@user_errors
def tune(
    study_dir: Path = typer.Argument(..., help="Study directory."),
    n_trials: int | None = typer.Option(None, "--n-trials",
                                        help="Trial budget (default: tuning.n_trials); more can be added later."),
    at: datetime | None = typer.Option(None, "--at", help="Schedule the stage for this time (ISO 8601, UTC by "
                                       "default; moves a schedule before). With a Ray cluster's Jobs API "
                                       "(--address http://head:8265) a Ray job waits for it there."),
    wait: bool = typer.Option(False, "--wait", help="Sleep until the scheduled time, then run the stage "
                              "(Ctrl-C leaves it scheduled)."),
    cancel: bool = typer.Option(False, "--cancel", help="Cancel the schedule (its Ray job is stopped); the "
                                "stage becomes manual."),
    address: str | None = ADDRESS,
    ray_temp_dir: str | None = TEMP_DIR,
    dashboard: bool = DASHBOARD,
    upload: bool = UPLOAD,
    code_changed: str | None = CODE_CHANGED,
):
    """Run the TPE tuning stage over the surviving components (now, or again), or schedule it."""
    study = _study(study_dir)  # a missing or damaged study.json exits 2 before the session's imports
    from . import session

    if cancel and (at or wait):
        raise UserError("--cancel goes alone: cancel the schedule, or move it with --at")
    if jobs.is_job_address(address) and not (at or cancel):
        session.in_project(study, "tune", code_changed)
        args = ["tune", str(study.path.resolve())] + (["--n-trials", str(n_trials)] if n_trials else [])
        args += ["--wait"] if wait else []
        jobs.submit(address, args + _code_changed(code_changed), study.info["name"], console, upload=upload)
        return
    if jobs.is_job_address(address) and wait:
        raise UserError("--wait with --address http://…: the Ray job that --at submits waits on the cluster; "
                        "leave out --wait")
    _finish(session.tune(study.path, n_trials=n_trials, at=at, wait=wait, cancel=cancel, address=address,
                         console=console, ray_temp_dir=ray_temp_dir, dashboard=dashboard, upload=upload,
                         code_changed=code_changed))


def _code_changed(code_changed: str | None) -> list[str]:
    """The --code-changed a job's command carries on (its copy of the project is the changed code)."""
    return ["--code-changed", code_changed] if code_changed else []


def _inside_cwd(path: Path) -> str:
    """The config's path relative to the working dir that a Ray job uploads."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        raise UserError(f"{path} must be inside the current directory, which is uploaded as the job's "
                        "working dir") from None


def _study(path: Path) -> Study:
    study = Study(path)
    if not study.exists():
        raise UserError(f"{path} is not a study directory (no study.json); launch one with `ablator launch FILE`")
    study.info  # noqa: B018 - a damaged study.json is refused here, naming it and its mend
    return study

