"""`ablator doctor`: check every file of a study's ledger and, with --fix, mend what can be.

Mends: a damaged study.json is rebuilt from config.yaml; plan.json from config.yaml and
the trial directories; an unreadable record.json is moved aside and its trial made
PENDING (resume re-runs it, from its last checkpoint); a torn metrics line is cut (kept in
metrics.jsonl.torn); the study index is rebuilt from the records; temporary files of
failed writes are removed. What cannot be mended (a broken config.yaml) is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from . import plan as planning
from .config import load_config
from .errors import AblatorError, LedgerDamaged, StudyError
from .ledger import LAYOUT_VERSION, VARIANT, Study, TrialRecord, TrialStore, read_json, write_json
from .ledger.files import cut_torn_tail, has_torn_tail
from .ledger.index import INDEX, StudyIndex, change_line
from .ledger.records import index_view
from .ledger.study import new_info


@dataclass
class Finding:
    path: Path
    problem: str
    fixed: str = ""  # what --fix did ('' if nothing)


def doctor(study_dir: str | Path, fix: bool = False, console: Console | None = None) -> list[Finding]:
    """Check the study's ledger (and mend it with `fix`, under the study lock); print findings.

    Raises LedgerDamaged when problems remain.
    """
    console = console or Console()
    study = Study(study_dir)
    if not (study.path / "config.yaml").exists() and not study.exists():
        raise StudyError(f"{study_dir} is not a study directory (no study.json, no config.yaml)")
    if fix:
        with study.lock():
            findings = _check(study, True)
    else:
        findings = _check(study, False)
    for f in findings:
        mark = "[green]fixed[/green]" if f.fixed else "[red]damaged[/red]"
        console.print(f"{mark} {escape(str(f.path))}: {escape(f.problem)}"
                      + (f" -> {escape(f.fixed)}" if f.fixed else ""))
    left = [f for f in findings if not f.fixed]
    if left:
        hint = "run `ablator doctor DIR --fix`" if not fix else "these need a hand: see above"
        raise LedgerDamaged(study.path, f"{len(left)} problem(s) in the ledger", hint)
    console.print(f"[green]OK[/green] {study.path}: the ledger reads cleanly"
                  + (f" ({len(findings)} fixed)" if findings else ""))
    return findings


def _check(study: Study, fix: bool) -> list[Finding]:
    out: list[Finding] = []
    config = _config(study, out)
    out += _study_json(study, config, fix)
    out += _plan(study, config, fix)
    out += _records(study, fix)
    out += _metrics(study, fix)
    out += _index(study, fix)
    out += _temp_files(study, fix)
    return out


def _config(study: Study, out: list[Finding]):
    try:
        return load_config(study.config_path, import_trainable=False)
    except AblatorError as exc:
        out.append(Finding(study.config_path, str(exc)))
        return None


def _study_json(study: Study, config, fix: bool) -> list[Finding]:
    path = study.path / "study.json"
    try:
        info = study.info
        if info:
            return []
        problem = "missing"
    except LedgerDamaged as exc:
        problem = exc.problem
    finding = Finding(path, problem)
    if fix and config is not None:
        if path.exists():
            path.replace(path.with_name("study.json.damaged"))
        write_json(path, new_info(config.name))
        finding.fixed = "rebuilt from config.yaml (a new study id; stage states are set again by resume)"
    return [finding]


def _plan(study: Study, config, fix: bool) -> list[Finding]:
    path = study.path / "plan.json"
    try:
        study.read_plan()
        return []
    except LedgerDamaged as exc:
        finding = Finding(path, exc.problem)
    if fix and config is not None:
        trials = rebuild_plan(study, config)
        path.replace(path.with_name("plan.json.damaged"))
        study.write_plan({"trials": trials})
        finding.fixed = f"rebuilt from config.yaml and the trial directories ({len(trials)} trials)"
    return [finding]


def rebuild_plan(study: Study, config) -> list[dict]:
    """The ablation trials of the config's first tier, then every other ablation trial on disk."""
    tier = config.tier_names[0]
    trials = {s.trial_id: s.to_dict() for s in planning.ablation_trials(config, tier=tier)}
    keys = set(planning.TrialSpec.__dataclass_fields__)
    for rec in study.records_on_disk(warn=False):
        if rec.purpose == VARIANT and rec.trial_id not in trials:
            trials[rec.trial_id] = rec.model_dump(include=keys)
    return list(trials.values())


def _records(study: Study, fix: bool) -> list[Finding]:
    damaged = study.damaged_records()
    findings = [Finding(path, problem) for path, problem in damaged]
    if fix and damaged:
        from .session import mend_records

        mended = set(mend_records(study, Console(quiet=True)))
        for f in findings:
            if f.path.parent.name in mended:
                f.fixed = "moved aside; the trial is PENDING and `ablator resume` re-runs it"
    return findings


def _metrics(study: Study, fix: bool) -> list[Finding]:
    out = []
    for trial_dir in study.trial_dirs():
        store = TrialStore(trial_dir)
        path = store.metrics_path
        if has_torn_tail(path):
            finding = Finding(path, "a torn last line (a writer was killed mid-line)")
            if fix:
                cut_torn_tail(path)
                finding.fixed = f"cut (kept in {path.name}.torn)"
            out.append(finding)
        _, problems = store.read_metrics()
        out += [Finding(path, p.split(": ", 1)[1]) for p in problems]
    return out


def _index(study: Study, fix: bool) -> list[Finding]:
    path = study.path / INDEX
    records = {r.trial_id: r for r in study.records_on_disk(warn=False)}
    if not path.exists():
        problem = "missing (an older layout): status and report open every trial directory"
    else:
        index = StudyIndex(path)
        replayed = index.records()
        stale = [tid for tid, rec in records.items()
                 if tid not in replayed or (replayed[tid].state, replayed[tid].attempts) != (rec.state, rec.attempts)]
        if stale:
            index.problems.append(f"{len(stale)} trial(s) disagree with their record.json (e.g. {stale[0]})")
        problem = "; ".join(index.problems[-4:])
        if not problem:
            return []
    finding = Finding(path, problem)
    if fix:
        rebuild_index(study, list(records.values()))
        finding.fixed = f"rebuilt from {len(records)} record(s)"
    return [finding]


def rebuild_index(study: Study, records: list[TrialRecord]) -> None:
    """Write the study index anew, one line per record (as the index keeps it), and mark the layout
    in study.json."""
    path = study.path / INDEX
    tmp = path.with_name(f".{INDEX}.rebuild.tmp")
    try:
        with open(tmp, "w") as fh:
            fh.writelines(change_line(None, index_view(rec.to_json())) + "\n" for rec in records)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    info = read_json(study.path / "study.json", {})
    if isinstance(info, dict) and info:
        info["layout"] = LAYOUT_VERSION
        write_json(study.path / "study.json", info)


def _temp_files(study: Study, fix: bool) -> list[Finding]:
    out = []
    for tmp in [*study.path.glob(".*.tmp"), *study.trials_dir.glob("*/.*.tmp")]:
        finding = Finding(tmp, "a temporary file left by a failed write")
        if fix:
            tmp.unlink(missing_ok=True)
            finding.fixed = "removed"
        out.append(finding)
    return out
