"""A study's results as typed data, for a notebook: ``load_study(path)`` -> ``StudyResults``.

Reading starts nothing (no Ray, no W&B) and writes nothing; it imports none of torch, ray, wandb,
matplotlib or optuna. The verdicts are verdicts.json's when it is current; a study still running
(some ablation trial pending or running), one whose verdicts.json is missing, of an older layout or
older than its records is re-analysed in memory from its records. A damaged file raises
``LedgerDamaged`` (or ``ConfigError`` for config.yaml) naming the file and what is wrong with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .analysis.records import running
from .analysis.study_analysis import analyse, verdicts_payload
from .config import StudyConfig, load_config
from .errors import LedgerDamaged, StudyError
from .ledger import Study, TrialRecord, read_json
from .ledger.study import doctor_hint
from .ledger.tuning_results import read_results
from .ledger.verdicts_json import LAYOUT, Comparison, Factor, Verdicts, read_verdicts

if TYPE_CHECKING:
    import pandas as pd

#: the columns of ``StudyResults.trials()`` before the final metrics
TRIAL_COLUMNS = ["trial_id", "stage", "purpose", "group", "variant", "seed", "state", "attempts", "duration_s",
                 "started_at", "ended_at", "error"]
#: the columns of ``StudyResults.effects()``
EFFECT_COLUMNS = ["group", "row", "name", "level", "kind", "metric", "primary", "effect", "ci_low", "ci_high",
                  "ci_level", "test", "p", "p_holm", "significant", "verdict", "n", "interim"]


def load_study(path: str | Path) -> StudyResults:
    """Open a study directory's results (from any working directory; nothing is started or written)."""
    return StudyResults(path)


class StudyResults:
    """One study's results, read-only: ``config``, ``verdicts``, ``trials()``, ``effects()``, ``history()``,
    ``tuning()``.

    ``interim`` is True while some ablation trial is pending or running: the verdicts are then an
    in-memory analysis of the records so far, with the peeking adjustment (p-values valid for a look
    before the planned seeds are in). ``source`` says where the verdicts came from: "verdicts.json" or
    "records" (re-analysed in memory).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path).resolve()
        self._study = Study(self.path)
        if not self._study.exists():
            raise StudyError(f"{self.path}: not a study directory (no study.json)")
        self._study.check()
        self.config: StudyConfig = load_config(self._study.config_path, import_trainable=False)
        self._records = self._read_records()
        self.interim = running(self._records)
        self.verdicts: Verdicts = self._current_verdicts()
        self.source = "records" if self.verdicts.generated is None else "verdicts.json"

    def __repr__(self) -> str:
        return (f"StudyResults({str(self.path)!r}: {len(self._records)} trials, "
                f"{'interim' if self.interim else 'complete' if self.verdicts.complete else 'incomplete'})")

    # ------------------------------------------------------------ reading

    def _read_records(self) -> list[TrialRecord]:
        study = self._study
        if not study.index.exists():
            damaged = study.damaged_records()
            if damaged:
                path, problem = damaged[0]
                raise LedgerDamaged(path, problem, doctor_hint(self.path))
            return study.records_on_disk(warn=False)
        records = study.index.records()
        if study.index.problems:
            raise LedgerDamaged(study.index.path, "; ".join(study.index.problems), doctor_hint(self.path))
        return [records[k] for k in sorted(records)]

    def _current_verdicts(self) -> Verdicts:
        """verdicts.json when it is of this layout and newer than every record; else analysed in memory."""
        path = self.path / "verdicts.json"
        if not self.interim:
            raw = read_json(path, mend=f"rewrite it from the study's records: `ablator report {self.path}`")
            if isinstance(raw, dict) and raw.get("layout") == LAYOUT:
                doc = read_verdicts(path)
                newest = max((r.ended_at or 0.0 for r in self._records), default=0.0)
                if doc.generated is not None and doc.generated >= newest:
                    return doc
            elif raw is not None and not isinstance(raw, dict):
                read_verdicts(path)  # raises, naming the file
        return verdicts_payload(analyse(self._records, self.config, self.path, interim=self.interim))

    # ------------------------------------------------------------ tables

    def trials(self) -> pd.DataFrame:
        """One row per trial: stage, purpose, group, variant, seed, state, attempts, duration, its last error
        and one column per final metric (NaN where a trial has none)."""
        import pandas as pd

        rows = []
        for r in self._records:
            row = {"trial_id": r.trial_id, "stage": r.stage, "purpose": r.purpose, "group": r.group,
                   "variant": r.variant, "seed": r.seed, "state": r.state, "attempts": r.attempts,
                   "duration_s": r.duration_s, "started_at": r.started_at, "ended_at": r.ended_at,
                   "error": r.last_error}
            for name, value in (r.final or {}).items():
                row[name if name not in row else f"final.{name}"] = value
            rows.append(row)
        frame = pd.DataFrame(rows)
        return frame.reindex(columns=TRIAL_COLUMNS + [c for c in frame.columns if c not in TRIAL_COLUMNS])

    def effects(self) -> pd.DataFrame:
        """One row per component, alternative, pair, factor and factor level (of every group) on the primary
        metric, and one per secondary metric it was measured on.

        ``effect`` is oriented so that positive means the baseline's (the component, the baseline's choice)
        is better; [``ci_low``, ``ci_high``] is the interval the verdict was judged on (the simultaneous one
        at ``ci_level`` for components, alternatives and pairs), ``test``, ``p`` and ``p_holm`` the deciding
        test's. Secondary-metric rows carry the t interval and raw p, and no verdict.
        """
        import pandas as pd

        v = self.verdicts
        rows: list[dict[str, Any]] = []
        for label, g in v.groups.items():
            for name, c in g.components.items():
                rows += self._comparison_rows(label, "component", name, None, c)
                for alt, a in c.alternatives.items():
                    rows += self._comparison_rows(label, "alternative", name, alt, a)
            for name, c in g.interactions.items():
                rows += self._comparison_rows(label, "pair", name, None, c)
            for name, f in g.factors.items():
                rows += self._factor_rows(label, name, f)
        return pd.DataFrame(rows, columns=EFFECT_COLUMNS)

    def _row(self, group: str, row: str, name: str, level: str | None, **fields: Any) -> dict[str, Any]:
        base = dict.fromkeys(EFFECT_COLUMNS)
        return base | {"group": group, "row": row, "name": name, "level": level, "interim": self.interim,
                       "metric": self.verdicts.primary.name, "primary": True} | fields

    def _comparison_rows(self, group: str, row: str, name: str, level: str | None, c: Comparison) -> list[dict]:
        d = c.deciding
        out = [self._row(group, row, name, level, kind=c.kind, effect=c.effect, ci_low=c.ci_sim[0],
                         ci_high=c.ci_sim[1], ci_level=c.ci_sim_level, test=d and d.test, p=d and d.p,
                         p_holm=d and d.p_holm, significant=c.significant, verdict=c.verdict, n=c.n)]
        out += [self._row(group, row, name, s.level or level, kind=c.kind, metric=m, primary=False, effect=s.effect,
                          ci_low=s.ci[0], ci_high=s.ci[1], test="t", p=s.p, n=s.n)
                for m, s in c.secondary.items()]
        return out

    def _factor_rows(self, group: str, name: str, f: Factor) -> list[dict]:
        lo, hi = f.ci_decision or f.shown_ci
        out = [self._row(group, "factor", name, f.effect_level, kind=f.kind, effect=f.effect, ci_low=lo, ci_high=hi,
                         test="F" if f.kind == "categorical" else "t", p=f.p, p_holm=f.p_holm,
                         significant=f.significant, n=f.n)]
        for level, lv in f.levels.items():
            lo, hi = lv.ci_decision or lv.shown_ci
            out.append(self._row(group, "factor level", name, level, kind=f.kind, effect=lv.effect, ci_low=lo,
                                 ci_high=hi, test="t", p=lv.p, p_holm=lv.p_holm, n=lv.n))
        out += [self._row(group, "factor", name, s.level, kind=f.kind, metric=m, primary=False, effect=s.effect,
                          ci_low=s.ci[0], ci_high=s.ci[1], test="t", p=s.p, n=s.n)
                for m, s in f.secondary.items()]
        return out

    def tuning(self) -> dict[str, Any] | None:
        """The tuning stage's results (tuning/results.json; None before it ran): its ``best`` trial
        (``BestTrial``: trial_id, value, params), the ``confirmation`` (``Confirmation``: the best config
        against the baseline, ``outcome`` helped / hurt / inconclusive), what was tuned, removed and kept."""
        return read_results(self.path)

    def history(self, trial_id: str) -> pd.DataFrame:
        """A trial's reported rows, one per step (the latest attempt's): step, attempt, time and its metrics."""
        import pandas as pd

        if trial_id not in {r.trial_id for r in self._records}:
            raise StudyError(f"{self.path}: no trial {trial_id!r} in this study")
        store = self._study.trial(trial_id)
        rows, problems = store.read_metrics()
        if problems:
            raise LedgerDamaged(store.metrics_path, "; ".join(problems), doctor_hint(self.path))
        return pd.DataFrame(rows)
