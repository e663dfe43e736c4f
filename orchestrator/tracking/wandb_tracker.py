"""W&B tracking from the driver: every trial a run, the study one `analysis` run.

The driver calls `trial_update`, `poll`, `study_summary` and `close`; each only
puts a message on a queue. One background thread owns every wandb object: it
opens a trial's run when the trial starts, tails the trial's `metrics.jsonl`
into the run's history, and finishes the run with `final/<metric>` in its
summary when the trial ends. Trials never import wandb.

Durability and resume. A trial's run id is a function of the ledger
(`payload.run_id`), and `resume="allow"`, so a restarted trial, or one continued
by a later driver, keeps its run. The last step logged to W&B is kept in
`trials/<id>/wandb.json`; rows at or below it are never logged twice. A step a
restarted trial reports again keeps its first value in W&B (W&B steps only grow);
the ledger keeps the last one, and `final/` comes from the ledger.

Failures. Any W&B error (no network, quota, bad key, init timeout) is reported
once, in one line; the tracker then logs offline, or stops if even offline fails.
The ledger holds every result regardless.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import queue
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import StudyConfig
from ..ledger import COMPLETED, FAILED, PENDING, RUNNING, Study, read_json, write_json
from . import payload as P
from .base import NullTracker, Tracker
from .offline import last_step as last_logged_step

logger = logging.getLogger("orchestrator.tracking")

STATE_FILE = "wandb.json"
_POLL, _CLOSE = "poll", "close"
_FINAL = (COMPLETED, FAILED)


def _stderr(line: str) -> None:
    print(f"ablator: {line}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- mode


def _import_wandb():
    """Import wandb for this driver. A WANDB_SERVICE inherited from a parent process is
    dropped first: runs of a driver that gets killed must die with its own wandb service,
    not stay "in use" in the parent's."""
    if "wandb" not in sys.modules:
        os.environ.pop("WANDB_SERVICE", None)
        os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    try:  # the first wandb.init imports this (launch inputs); do it here, not mid-study
        import wandb.sdk.launch.inputs.internal
    except Exception:  # moved in another wandb version: init imports what it needs
        logger.debug("wandb.sdk.launch.inputs.internal not found", exc_info=True)
    return wandb


def api_key() -> str | None:
    """The W&B API key configured for this machine (env, netrc, wandb settings), or None.

    Never printed or stored; the caller only learns whether one exists, and the
    tracker uses the value to scrub it from anything it sends.
    """
    key = os.environ.get("WANDB_API_KEY")
    if key:
        return key
    if os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return ""
    try:
        from wandb.sdk.lib import wbauth

        base_url = os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
        key = wbauth.read_netrc_auth(host=base_url)
        if key:
            return key
        from wandb.sdk import wandb_setup

        return wandb_setup.singleton().settings.api_key or None
    except Exception:  # noqa: BLE001 - wandb's internals moved: ask its public (deprecated) property
        try:
            import wandb

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return wandb.api.api_key or None
        except Exception:  # noqa: BLE001
            return None


def resolve_mode(setting: str) -> tuple[str, str | None]:
    """The mode to start in, and why when it differs from the setting.

    auto: online when an API key is configured, else offline; `WANDB_MODE=offline|disabled`
    in the environment is respected. online without any key goes offline at once.
    """
    if setting == "disabled":
        return "disabled", None
    if setting == "offline":
        return "offline", None
    env_mode = os.environ.get("WANDB_MODE", "").lower()
    if setting == "auto" and env_mode in ("disabled", "offline", "dryrun"):
        return ("disabled" if env_mode == "disabled" else "offline"), f"WANDB_MODE={env_mode}"
    if setting == "auto" and os.environ.get("WANDB_DISABLED", "").lower() in ("true", "1", "yes"):
        return "disabled", "WANDB_DISABLED"
    try:
        _import_wandb()
    except Exception as exc:  # noqa: BLE001
        return "disabled", f"wandb cannot be imported ({type(exc).__name__}: {exc})"
    if api_key() is None:
        return "offline", "no W&B API key configured"
    return "online", None


# ---------------------------------------------------------------- per-trial state


@dataclass
class _Trial:
    trial_id: str
    path: Path
    record: dict
    run_id: str
    started_at: Any = None
    run: Any = None
    last_step: int = -1
    offset: int = 0
    finished: bool = False
    done: tuple | None = None  # (state, attempts) the run was finished with
    sent: dict | None = None  # the changing config keys last sent
    earlier: bool = False  # an earlier driver opened this run: find what it really wrote

    def save(self, tracker: WandbTracker) -> None:
        if not self.path.exists():  # the trial dir was removed (re-run): nothing to keep
            return
        write_json(self.path / STATE_FILE, {
            "run_id": self.run_id, "project": tracker.project, "entity": tracker.entity,
            "mode": tracker.mode, "started_at": self.started_at, "last_step": self.last_step,
            "finished": self.finished, "state": (self.done or (None, None))[0],
            "attempts": (self.done or (None, None))[1],
        })


# ---------------------------------------------------------------- tracker


class WandbTracker(Tracker):
    """Tracks a study in W&B (online or offline) from a background thread."""

    def __init__(
        self,
        config: StudyConfig,
        study: Study,
        provenance: dict,
        mode: str = "offline",
        *,
        echo: Callable[[str], None] | None = None,
        wandb_dir: str | Path | None = None,
        init_timeout: float = 30.0,
        finish_timeout: float = 60.0,
        close_timeout: float = 120.0,
        poll_interval: float = 1.0,
        secrets: tuple[str, ...] = (),
        warned: bool = False,
    ):
        if mode not in ("online", "offline"):
            raise ValueError(f"mode must be online or offline, not {mode!r}")
        self.config, self.study, self.provenance = config, study, dict(provenance or {})
        self.mode = mode
        self.study_id = study.study_id
        self.project = P.project_name(config)
        self.entity = config.tracking.wandb.entity
        #: wandb writes its run directories to <dir>/wandb/
        self.dir = Path(wandb_dir) if wandb_dir is not None else Path(study.path)
        self.init_timeout, self.finish_timeout = init_timeout, finish_timeout
        self.close_timeout, self.poll_interval = close_timeout, poll_interval
        self._echo = echo or _stderr
        self._secrets = P.env_secrets(secrets)
        self._trials: dict[str, _Trial] = {}
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._poll_pending = threading.Event()
        self._closed = False
        self._warned = warned  # True: the one warning line was already shown
        self._wandb = None
        self.errors: list[str] = []  # every W&B failure, scrubbed (the first one was shown)
        self._thread = threading.Thread(target=self._main, name="ablator-wandb", daemon=True)
        self._thread.start()

    @property
    def runs_dir(self) -> Path:
        return self.dir / "wandb"

    # ------------------------------------------------------------ driver API (any thread, O(µs))

    def trial_update(self, record: dict) -> None:
        if not self._closed and record:
            self._queue.put(("update", _copy(record)))

    def poll(self) -> None:
        if not self._closed and not self._poll_pending.is_set():
            self._poll_pending.set()
            self._queue.put((_POLL, None))

    def study_summary(self, study_dir: str | Path) -> None:
        if not self._closed:
            self._queue.put(("summary", Path(study_dir)))

    def close(self, timeout: float | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put((_CLOSE, None))
        self._thread.join(self.close_timeout if timeout is None else timeout)
        if self._thread.is_alive():
            self._tell(f"W&B did not finish within {self.close_timeout if timeout is None else timeout:.0f} s; "
                       f"what was written stays in {self.runs_dir} (`wandb sync {self.runs_dir}`)")

    # ------------------------------------------------------------ the thread

    def _main(self) -> None:
        try:
            self._guard(self._reconcile)
            while True:
                try:
                    kind, arg = self._queue.get(timeout=self.poll_interval)
                except queue.Empty:
                    kind, arg = _POLL, None
                if kind == "update":
                    self._guard(self._on_update, arg)
                elif kind == _POLL:
                    self._poll_pending.clear()
                    self._guard(self._tail_all)
                elif kind == "summary":
                    self._guard(self._on_summary, arg)
                elif kind == _CLOSE:
                    self._guard(self._on_close)
                    return
        except BaseException as exc:  # never take the driver down
            logger.exception("W&B tracker thread stopped: %s", type(exc).__name__)

    def _guard(self, fn, *args) -> None:
        """Run one step; on a W&B error go offline (or off) and try the step once more there.

        An error that is not W&B's (an odd record, say) skips only that step."""
        while self.mode != "disabled":
            try:
                fn(*args)
                return
            except Exception as exc:  # W&B must never fail the study
                if not _is_wandb_failure(exc):
                    reason = self._clean(f"{type(exc).__name__}: {exc}")
                    self.errors.append(f"skipped: {reason}")
                    logger.debug("W&B tracking skipped a step", exc_info=exc)
                    self._tell(f"W&B tracking skipped an update ({reason}); every result stays in the ledger.")
                    return
                self._degrade(exc)

    def _degrade(self, exc: BaseException) -> None:
        old = self.mode
        self.mode = "offline" if old == "online" else "disabled"
        for t in self._trials.values():  # drop handles: offline reopens them (resume) from the ledger
            if t.run is not None and old == "offline":
                try:
                    t.run.finish(exit_code=1)
                except Exception:
                    logger.debug("finishing a failed run", exc_info=True)
            t.run = None
        if old == "online" and self._wandb is not None:
            # wandb-core keeps the failed online streams' run ids in use: start afresh
            try:
                self._wandb.teardown()
            except Exception:
                logger.debug("wandb.teardown", exc_info=True)
        reason = self._clean(f"{type(exc).__name__}: {exc}")
        self.errors.append(f"{old}: {reason}")
        logger.debug("W&B %s failed", old, exc_info=exc)
        if self.mode == "offline":
            where = f"logging offline to {self.runs_dir} (upload later: `wandb sync {self.runs_dir}`)"
        else:
            where = "W&B tracking is off for the rest of this run"
        self._tell(f"W&B {old} failed ({reason}); {where}. Every result stays in the study ledger.")

    def _tell(self, line: str) -> None:
        if self._warned:
            logger.info(line)
            return
        self._warned = True
        try:
            self._echo(line)
        except Exception:  # noqa: BLE001
            _stderr(line)

    def _clean(self, text: str, limit: int = 200) -> str:
        text = " ".join(P.scrub(str(text), self._secrets).split())
        return text if len(text) <= limit else text[: limit - 3] + "..."

    # ------------------------------------------------------------ wandb

    def _lib(self):
        if self._wandb is None:
            self._wandb = _import_wandb()
        return self._wandb

    def _settings(self, **extra):
        wandb = self._lib()
        values: dict[str, Any] = {
            "mode": self.mode, "silent": True, "quiet": True, "console": "off",
            # the driver's CPU load and machine are no trial's: provenance says where trials ran
            "x_disable_stats": True, "x_disable_machine_info": True,
            "disable_git": True, "save_code": False, "disable_job_creation": True,
            "x_save_requirements": False, "init_timeout": self.init_timeout,
            # a killed driver loses at most this much of what wandb-core had not yet written
            "x_transaction_log_flush_interval": 1.0,
        }
        if self.mode == "online":
            values["finish_timeout"] = self.finish_timeout
        values.update(extra)
        return wandb.Settings(**values)

    def _init(self, **kwargs):
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        settings = self._settings(**kwargs.pop("settings_extra", {}))
        return self._lib().init(
            project=self.project, entity=self.entity, group=self.study_id, dir=str(self.dir),
            resume="allow", reinit="create_new", settings=settings, **kwargs,
        )

    # ------------------------------------------------------------ trials

    def _state_for(self, record: dict) -> _Trial:
        tid = record["trial_id"]
        path = self.study.trial(tid).path
        started = record.get("started_at")
        t = _Trial(tid, path, record, P.run_id(self.study_id, tid, started), started_at=started)
        saved = read_json(path / STATE_FILE)
        if saved and saved.get("run_id") == t.run_id:
            t.earlier = True
            t.last_step = int(saved.get("last_step", -1))
            t.finished = bool(saved.get("finished"))
            if t.finished:
                t.done = (saved.get("state"), saved.get("attempts"))
        return t

    def _on_update(self, record: dict) -> None:
        tid, state = record.get("trial_id"), record.get("state")
        if not tid:
            return
        t = self._trials.get(tid)
        started = record.get("started_at")
        if t is not None and started is not None and t.started_at != started:
            # a fresh record for the same trial id (re-run from scratch): a new run
            if t.run is not None:
                self._finish(t)
            t = None
        if t is None:
            if state == PENDING:
                return  # nothing to show until it starts
            t = self._state_for(record)
            self._trials[tid] = t
        t.record = record
        if state == PENDING:
            if t.run is not None:  # waiting for a restart
                t.run.summary.update(self._summary(record))
            return
        if t.finished and t.done == (state, record.get("attempts")):
            return  # already fully in W&B
        self._open(t)
        self._refresh(t)
        self._tail(t)
        if state in _FINAL:
            self._finish(t)

    def _open(self, t: _Trial) -> None:
        if t.run is not None:
            return
        rec = t.record
        if t.earlier:
            # wandb.json says what an earlier driver handed to wandb; a killed driver's last
            # rows may never have reached the disk, so trust only what its logs hold
            t.last_step = last_logged_step(self.runs_dir, t.run_id)
            t.earlier = False
        cfg = P.scrub(P.trial_config(self.config, rec, self.provenance, self.study_id), self._secrets)
        t.run = self._init(
            id=t.run_id, name=self._clean(P.run_name(rec), 128), job_type=rec.get("stage") or "ablation",
            tags=[self._clean(tag, 64) for tag in P.run_tags(self.config, rec)], config=cfg,
        )
        starting = getattr(t.run, "starting_step", 0) or 0  # online resume: the server's next step
        t.last_step = max(t.last_step, starting - 1)
        t.sent = P.changing_config(rec, self.provenance)
        t.finished, t.done, t.offset = False, None, 0
        t.save(self)

    def _refresh(self, t: _Trial) -> None:
        changing = P.changing_config(t.record, self.provenance)
        if changing != t.sent:
            t.run.config.update(P.scrub(changing, self._secrets), allow_val_change=True)
            t.sent = changing
        t.run.summary.update(self._summary(t.record))

    def _summary(self, record: dict) -> dict:
        return P.scrub(P.trial_summary(record), self._secrets)

    def _tail(self, t: _Trial) -> None:
        """Log the rows appended to metrics.jsonl since the last look (steps above the last logged)."""
        if t.run is None:
            return
        path = t.path / "metrics.jsonl"
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            return
        if size < t.offset:  # the file was replaced
            t.offset = 0
        if size == t.offset:
            return
        with open(path, "rb") as fh:
            fh.seek(t.offset)
            chunk = fh.read(size - t.offset)
        end = chunk.rfind(b"\n")
        if end < 0:
            return  # a line still being written
        t.offset += end + 1
        logged = False
        for line in chunk[: end + 1].splitlines():
            try:
                row = json.loads(line)
                step = int(row["step"])
            except (ValueError, KeyError, TypeError):
                continue  # a torn line from a killed worker
            if step <= t.last_step:
                continue  # logged already (a restart re-reported it, or an earlier driver logged it)
            t.run.log(P.history_row(row), step=step, commit=True)
            t.last_step, logged = step, True
        if logged:
            t.save(self)

    def _tail_all(self) -> None:
        for t in list(self._trials.values()):
            if t.run is None and not t.finished and t.record.get("state") == RUNNING:
                self._open(t)  # reopened after a fall back to offline
                self._refresh(t)
            self._tail(t)

    def _finish(self, t: _Trial, exit_code: int | None = None) -> None:
        if t.run is None:
            return
        rec = t.record
        self._tail(t)
        t.run.summary.update(self._summary(rec))
        if exit_code is None:
            exit_code = 0 if rec.get("state") == COMPLETED else 1
        run, t.run = t.run, None
        run.finish(exit_code=exit_code)
        if rec.get("state") in _FINAL:
            t.finished, t.done = True, (rec.get("state"), rec.get("attempts"))
        t.save(self)

    def _reconcile(self) -> None:
        """At start: finish the runs of trials that ended while no driver was logging them."""
        if not self.study.trials_dir.exists():
            return
        for entry in sorted(os.scandir(self.study.trials_dir), key=lambda e: e.name):
            record = read_json(Path(entry.path) / "record.json")
            if not record or record.get("state") not in _FINAL or not record.get("trial_id"):
                continue
            saved = read_json(Path(entry.path) / STATE_FILE) or {}
            if saved.get("finished") and (saved.get("state"), saved.get("attempts")) == (
                    record["state"], record.get("attempts")):
                continue
            self._guard(self._on_update, record)

    def _on_close(self) -> None:
        for t in list(self._trials.values()):
            if t.run is None:
                continue
            fresh = self.study.trial(t.trial_id).read()
            if fresh and fresh.get("started_at") == t.started_at:
                t.record = fresh
            if t.record.get("state") in _FINAL:
                self._finish(t)
            else:  # the driver stops before the trial ends: a later driver resumes this run
                self._finish(t, exit_code=1)

    # ------------------------------------------------------------ the study

    def _load(self, path: Path | None, reader: Callable[[Path], Any]) -> Any:
        """A report file's content, or None when it is absent or unreadable (noted, not fatal)."""
        if path is None:
            return None
        try:
            return reader(path)
        except Exception as exc:  # noqa: BLE001 - a half-written or odd report file loses only itself
            self.errors.append(self._clean(f"skipped {path.name}: {type(exc).__name__}: {exc}"))
            return None

    def _on_summary(self, study_dir: Path) -> None:
        wandb = self._lib()
        study_dir = Path(study_dir)
        run = self._init(
            id=P.summary_run_id(self.study_id), name=f"{self.config.name}-analysis", job_type="analysis",
            tags=["analysis"], config=P.scrub(P.study_config(self.config, self.provenance, self.study_id),
                                              self._secrets),
            settings_extra={"x_save_requirements": True},
        )
        try:
            data: dict[str, Any] = {}
            results = _find(study_dir, "results.csv")
            table = self._load(results, _read_csv)
            if table is not None:
                columns, rows = table
                data["results"] = wandb.Table(columns=columns, data=P.scrub(rows, self._secrets),
                                              allow_mixed_types=True)
            for png in _plots(study_dir):
                data[f"plots/{png.stem}"] = wandb.Image(str(png), caption=png.stem)
            verdicts_path = _find(study_dir, "verdicts.json")
            verdicts = self._load(verdicts_path, read_json)
            if verdicts is not None:
                verdicts = P.scrub(verdicts, self._secrets)
                run.summary["verdicts"] = verdicts
                components = verdicts.get("components") if isinstance(verdicts, dict) else None
                if isinstance(components, dict):  # one column per component in the runs table
                    run.summary.update({f"verdict/{c}": v["verdict"] for c, v in components.items()
                                        if isinstance(v, dict) and "verdict" in v})
                for key, (columns, rows) in P.level_tables(verdicts).items():
                    data[key] = wandb.Table(columns=columns, data=rows, allow_mixed_types=True)
                table = _as_table(verdicts)
                if table is not None:
                    data["verdict_table"] = wandb.Table(columns=table[0], data=table[1],
                                                        allow_mixed_types=True)
            best = _find(study_dir, "best_config.yaml")
            best_config = self._load(best, _read_yaml)
            if best_config is not None:
                run.summary["best_config"] = P.scrub(best_config, self._secrets)
            tuning_dir = study_dir / "tuning"  # the tuning stage's report, when it ran
            tuning_summary = tuning_dir / "summary.json"
            tuning = self._load(tuning_summary if tuning_summary.is_file() else None, read_json)
            if tuning is not None:
                run.summary["tuning"] = P.scrub(tuning, self._secrets)
            for png in sorted(tuning_dir.glob("*.png")):
                data[f"tuning/{png.stem}"] = wandb.Image(str(png), caption=f"tuning {png.stem}")
            counts: dict[str, int] = {}
            for rec in self.study.records():
                key = f"trials/{rec.get('stage')}/{str(rec.get('state')).lower()}"
                counts[key] = counts.get(key, 0) + 1
            run.summary.update(counts)
            if data:
                run.log(data)
            for path in (results, verdicts_path, best, _find(study_dir, "report.md"),
                         tuning_summary, tuning_dir / "report.md"):
                if path is not None and path.is_file():
                    run.save(str(path), base_path=str(study_dir), policy="now")
        finally:
            run.finish()


# ---------------------------------------------------------------- helpers


def _is_wandb_failure(exc: BaseException) -> bool:
    """Raised by wandb (its own error types, or anything raised inside its code), or by the
    system under it (disk, network, time); not a bug or an odd record on our side."""
    if isinstance(exc, (OSError, TimeoutError)):
        return True
    if any(cls.__module__.split(".")[0] == "wandb" for cls in type(exc).__mro__):
        return True
    tb = exc.__traceback__
    while tb is not None:
        if f"{os.sep}wandb{os.sep}" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


def _copy(record: dict) -> dict:
    """A copy the driver may keep mutating (lists of errors, dicts of metrics)."""
    return {k: (v.copy() if isinstance(v, (dict, list)) else v) for k, v in record.items()}


_REPORT_DIRS = ("", "report", "analysis")


def _find(study_dir: Path, name: str) -> Path | None:
    for sub in _REPORT_DIRS:
        path = study_dir / sub / name
        if path.is_file():
            return path
    return None


def _plots(study_dir: Path) -> list[Path]:
    for sub in _REPORT_DIRS:
        found = sorted((study_dir / sub / "plots").glob("*.png"))
        if found:
            return found
    return []


def _number(text: str) -> Any:
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def _read_yaml(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text())


def _read_csv(path: Path) -> tuple[list[str], list[list[Any]]]:
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        columns = next(reader, [])
        rows = [[_number(cell) for cell in row] for row in reader if row]
    width = len(columns)
    return columns, [(row + [None] * width)[:width] for row in rows]


def _as_table(data: Any) -> tuple[list[str], list[list[Any]]] | None:
    """verdicts.json as table rows when it is a list of records or a mapping of them."""
    if isinstance(data, dict) and isinstance(data.get("components"), (dict, list)):
        data = data["components"]
    if isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
        rows = [{"component": k, **v} for k, v in data.items()]
    elif isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        rows = data
    else:
        return None
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]

    def cell(v):
        return v if v is None or isinstance(v, (int, float, str, bool)) else json.dumps(v, default=str)

    return columns, [[cell(row.get(c)) for c in columns] for row in rows]


# ---------------------------------------------------------------- factory


def make_tracker(
    config: StudyConfig,
    study: Study,
    provenance: dict,
    *,
    echo: Callable[[str], None] | None = None,
    **options: Any,
) -> Tracker:
    """The study's tracker for `tracking.wandb.mode`: a no-op one when disabled.

    `echo` prints the tracker's one-line notices (default: stderr). `options` go to
    `WandbTracker` (init_timeout, finish_timeout, close_timeout, wandb_dir, ...).
    """
    echo = echo or _stderr
    setting = config.tracking.wandb.mode
    mode, why = resolve_mode(setting)
    if mode == "disabled":
        if setting != "disabled" and why:
            echo(f"W&B tracking is off ({why}); every result stays in the study ledger.")
        return NullTracker()
    try:
        # import here, once, before any trial runs: importing wandb is ~0.5 s of pure Python
        # that, in the background thread, would hold the GIL against the driver's calls
        _import_wandb()
    except Exception as exc:  # noqa: BLE001
        echo(f"W&B tracking is off (wandb cannot be imported: {type(exc).__name__}: {exc}); "
             "every result stays in the study ledger.")
        return NullTracker()
    key = api_key() if mode == "online" else None
    tracker = WandbTracker(config, study, provenance, mode, echo=echo, secrets=(key,) if key else (),
                           warned=setting == "online" and mode == "offline", **options)
    if mode == "offline":  # for an online setting without a key, this line is its one warning
        reason = f" ({why})" if why else ""
        echo(f"W&B offline{reason}: runs go to {tracker.runs_dir}; "
             f"upload them later with `wandb sync {tracker.runs_dir}`")
    return tracker
