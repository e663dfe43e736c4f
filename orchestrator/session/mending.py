"""Damaged trial records, mended when a study resumes."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from ..execution import runner
from ..ledger import Study, with_purpose
from ..plan import TrialSpec


def mend_records(study: Study, console: Console) -> list[str]:
    """Move every unreadable record.json aside and make its trial PENDING; return their ids.

    The trial's spec comes from plan.json (or the study index); its metrics and checkpoint
    stay, so the re-run continues from the last checkpoint. Nothing else is touched.
    """
    damaged = study.damaged_records()
    if not damaged:
        return []
    specs = {t["trial_id"]: with_purpose(t) for t in study.read_plan().get("trials", [])}  # older plans: no purpose
    indexed = {r.trial_id: r for r in study.records()}
    mended = []
    for path, problem in damaged:
        tid = path.parent.name
        spec = specs.get(tid) or (indexed[tid].to_json() if tid in indexed else None)
        store = study.trial(tid)
        aside = store.set_aside()
        console.print(f"[yellow]{path}: {escape(problem)}[/yellow]; moved to {aside.name}"
                      + ("; the trial runs again" if spec else "; not in the plan: left out"))
        if spec:
            fields = {k: spec[k] for k in TrialSpec.__dataclass_fields__ if k in spec}
            store.write(runner.new_record(TrialSpec(**fields)))
            mended.append(tid)
    return mended
