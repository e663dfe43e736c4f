"""Two study directories compared: each re-analysed from its records, rows matched, settings, configs and
code provenance set side by side (``compare_studies``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..analysis import analyse_study, verdicts_payload
from ..analysis.numbers import sort_seeds
from ..config import load_yaml
from ..errors import StudyError
from ..ledger import FAILED, VARIANT, Study
from ..ledger.files import read_json
from ..ledger.verdicts_json import LAYOUT, Verdicts, read_verdicts
from .model import Change, StudyComparison, StudySide
from .rows import compare_rows

PAIRED_WHY = ("paired by seed (--paired): on the seeds both studies share, each row's per-seed differences "
              "are compared; this gains only where one seed gives correlated results under both codes")
UNPAIRED_WHY = ("unpaired (Welch): the same seed under other code or data need not give correlated results, so "
                "the two estimates are treated as independent (--paired pairs the shared seeds)")


def analysis_of(path: Path) -> Verdicts:
    """A study's analysis, re-done in memory from its records (verdicts.json may be of another layout; a study
    still running is an interim look, with the peeking adjustment). The one place the comparison asks for an
    analysis."""
    return verdicts_payload(analyse_study(path))


def open_study(path: str | Path) -> Study:
    """The study at `path`, or StudyError saying why it is not one."""
    study = Study(path)
    if not study.path.is_dir():
        raise StudyError(f"{path}: no such directory")
    if not study.exists():
        raise StudyError(f"{path} is not a study directory (no study.json); launch one with `ablator launch FILE`")
    study.check()
    return study


def stored_verdicts_note(study: Study) -> str | None:
    """verdicts.json checked (a damaged one raises LedgerDamaged naming it); a note when it is not this layout's."""
    path = study.path / "verdicts.json"
    data = read_json(path, mend=f"rewrite it from the study's records: `ablator report {study.path}`")
    if data is None:
        return None
    if isinstance(data, dict) and data.get("layout") != LAYOUT:
        return f"{path}: layout {data.get('layout', 1)!r}; the study is re-analysed from its records"
    read_verdicts(path)
    return None


def side(study: Study, v: Verdicts) -> StudySide:
    records = [r for r in study.records() if r.purpose == VARIANT]
    git = (study.read_provenance() or {}).get("git") or {}
    return StudySide(path=str(study.path), name=v.study, design=v.design, primary=v.primary, alpha=v.alpha,
                     min_effect=v.min_effect, adaptive=v.adaptive, complete=v.complete,
                     seeds=sort_seeds({r.seed for r in records if r.seed is not None}),
                     failed=sorted(r.trial_id for r in records if r.state == FAILED),
                     commit=git.get("commit"), dirty=git.get("dirty"), dirty_files=git.get("dirty_files"))


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys (lists are values)."""
    if not isinstance(data, dict) or (prefix and not data):
        return {prefix: data}
    out: dict[str, Any] = {}
    for k, v in data.items():
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def changes(old: Any, new: Any) -> list[Change]:
    """Every dotted key whose value differs (absent on one side: None)."""
    a, b = flatten(old or {}), flatten(new or {})
    return [Change(key=k, old=a.get(k), new=b.get(k)) for k in list(a) + [k for k in b if k not in a]
            if a.get(k) != b.get(k)]


def _config(study: Study) -> dict:
    return load_yaml(study.config_path)[0]


def code_note(old: StudySide, new: StudySide) -> str:
    """The code each study ran, in one sentence."""
    def state(s: StudySide) -> str:
        if s.commit is None:
            return "not recorded (not a git work tree)"
        dirty = "" if not s.dirty else " with uncommitted changes" + (
            f" ({', '.join(s.dirty_files)})" if s.dirty_files else "")
        return f"{s.commit[:12]}{dirty}"

    if old.commit is not None and old.commit == new.commit and not old.dirty and not new.dirty:
        return f"code: the same commit {old.commit[:12]}, no uncommitted changes"
    return f"code: old {state(old)}; new {state(new)}"


def settings_notes(old: StudySide, new: StudySide, alpha: float, min_effect: float) -> list[str]:
    """What differs in how the two studies were run and judged, and how the comparison handles it."""
    notes = []
    if old.primary.mode != new.primary.mode:
        notes.append(f"{old.primary.name} is {'maximised' if old.primary.mode == 'max' else 'minimised'} in the old "
                     f"study and not in the new: the new study's effects are re-oriented to the old's direction")
    for key, value in (("alpha", alpha), ("min_effect", min_effect)):
        a, b = getattr(old, key), getattr(new, key)
        if a != b:
            notes.append(f"{key}: {a:g} in the old study, {b:g} in the new; the comparison uses {value:g} "
                         "(verdict labels may differ for that reason alone)")
    if old.design != new.design:
        notes.append(f"design: {old.design} in the old study, {new.design} in the new: paired-seed and regression "
                     "estimates of a component agree only when components do not interact")
    if old.seeds != new.seeds:
        shared = [s for s in old.seeds if s in new.seeds]
        notes.append(f"seeds differ: old {_seeds(old.seeds)}, new {_seeds(new.seeds)} ({len(shared)} shared)")
    for which, s in (("old", old), ("new", new)):
        if s.adaptive:
            looks = s.adaptive["max"] - s.adaptive["initial"] + 1
            notes.append(f"{which} study has adaptive seeds ({s.adaptive['initial']}..{s.adaptive['max']}): its rows "
                         f"stopped at data-dependent looks, so each is tested at 1/{looks} of alpha (valid whatever "
                         "the stopping; rows stopped at few seeds can rarely be shown changed or same)")
        if s.failed:
            notes.append(f"{which} study: {len(s.failed)} trial(s) FAILED ({', '.join(s.failed[:5])}"
                         f"{', …' if len(s.failed) > 5 else ''}): their seeds are left out of those rows")
        if not s.complete:
            notes.append(f"{which} study is not finished (--partial): its rows are interim")
    return notes


def _seeds(seeds: list) -> str:
    return "[" + ", ".join(map(str, seeds)) + "]"


def compare_studies(old: str | Path, new: str | Path, *, paired: bool = False, partial: bool = False,
                    alpha: float | None = None, min_effect: float | None = None) -> StudyComparison:
    """Compare two study directories row by row (see docs/compare.md); a ``StudyComparison``.

    ``alpha`` and ``min_effect`` default to the old study's. Raises StudyError (a UserError, exit 2) when
    either is not a study, is unfinished without ``partial``, or the two have different primary metrics;
    LedgerDamaged naming the file when one of their files is damaged."""
    studies = [open_study(old), open_study(new)]
    notes = [n for n in (stored_verdicts_note(s) for s in studies) if n]
    analyses = [analysis_of(s.path) for s in studies]
    a, b = (side(s, v) for s, v in zip(studies, analyses))
    for s in (a, b):
        if not s.complete and not partial:
            raise StudyError(f"{s.path}: its ablation stage is not finished; finish it with `ablator resume "
                             f"{s.path}`, or compare its interim results with --partial")
    if a.primary.name != b.primary.name:
        raise StudyError(f"{b.path}: its primary metric is '{b.primary.name}', the old study's ({a.path}) is "
                         f"'{a.primary.name}': the effects are not comparable")
    alpha = a.alpha if alpha is None else alpha
    min_effect = a.min_effect if min_effect is None else min_effect
    rows, only_old, only_new = compare_rows(analyses[0], analyses[1], alpha=alpha, min_effect=min_effect,
                                            pair=paired)
    provenance = [s.read_provenance() or {} for s in studies]
    return StudyComparison(
        old=a, new=b, alpha=alpha, min_effect=min_effect, pairing="paired" if paired else "unpaired",
        pairing_why=PAIRED_WHY if paired else UNPAIRED_WHY, rows=rows, only_old=only_old, only_new=only_new,
        config=changes(_config(studies[0]), _config(studies[1])), provenance=changes(*provenance),
        notes=[code_note(a, b), *settings_notes(a, b, alpha, min_effect), *notes])
