"""Two studies compared, as typed data: what ``compare_studies`` returns and ``ablator compare --json`` prints."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ..analysis.records import DEFAULT_GROUP
from ..ledger.verdicts_json import Metric, Num
from .stats import CHANGED, UNCLEAR

#: what ``--fail-on`` can name (see ``StudyComparison.failing``)
FAIL_ON = ("changed", "changed-beyond-min-effect", "essential-lost", "unclear")
RowKind = Literal["component", "alternative", "interaction", "factor", "level"]


def row_title(group: str, kind: str, name: str) -> str:
    """A row as the output names it: "component attn", "[tier2] level act=gelu"."""
    return ("" if group == DEFAULT_GROUP else f"[{group}] ") + f"{kind} {name}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RowSide(_Model):
    """A row as one study estimated it (effect oriented so that positive means the part helps)."""

    effect: Num = None
    ci: list[Num] = [None, None]
    n: int = 0
    verdict: str | None = None
    method: str | None = None


class RowComparison(_Model):
    """One row both studies have: the two effects, their difference (new - old) with its interval, the call.

    ``call``: ``changed`` (diff != 0, Holm across rows), ``same`` (TOST within ±min_effect, Holm), ``unclear``
    or ``not compared`` (``why`` says why). ``ci`` is the (1 - alpha) t interval of the difference at the
    look-weighted level for adaptive studies."""

    group: str
    kind: RowKind
    name: str
    old: RowSide
    new: RowSide
    diff: Num = None
    se: Num = None
    df: Num = None
    ci: list[Num] = [None, None]
    pairing: Literal["paired", "unpaired"] = "unpaired"
    n_shared: int = 0
    weight: float = 1.0
    p_changed: Num = None
    p_changed_holm: Num = None
    p_beyond_holm: Num = None
    p_same_holm: Num = None
    call: str
    beyond_min_effect: bool = False
    label_flip: bool = False
    essential_lost: bool = False
    #: why the call is what it is where that is not plain (a label flip that is no change, a row not compared)
    why: str = ""
    notes: list[str] = []

    @property
    def title(self) -> str:
        return row_title(self.group, self.kind, self.name)


class StudySide(_Model):
    """What one study is: its settings, seeds, failed trials and code provenance."""

    path: str
    name: str
    design: str
    primary: Metric
    alpha: float
    min_effect: float
    adaptive: dict[str, Any] | None = None
    complete: bool
    seeds: list[int | str] = []
    failed: list[str] = []
    commit: str | None = None
    dirty: bool | None = None
    dirty_files: list[str] | None = None


class Change(_Model):
    """A key whose value differs between the two studies (None: absent in that study)."""

    key: str
    old: Any = None
    new: Any = None


class StudyComparison(_Model):
    """Two studies compared row by row, with what differs in their settings, configs and code."""

    old: StudySide
    new: StudySide
    alpha: float
    min_effect: float
    pairing: Literal["paired", "unpaired"]
    pairing_why: str
    rows: list[RowComparison] = []
    only_old: list[str] = []
    only_new: list[str] = []
    config: list[Change] = []
    provenance: list[Change] = []
    notes: list[str] = []

    def rows_called(self, call: str) -> list[RowComparison]:
        return [r for r in self.rows if r.call == call]

    def failing(self, fail_on: str | list[str] = "changed") -> list[RowComparison]:
        """The rows that fail the gate: ``changed``; ``changed-beyond-min-effect``; ``essential-lost`` (an
        essential row no longer essential AND changed); ``unclear`` (every row not shown ``same``)."""
        wanted = [fail_on] if isinstance(fail_on, str) else list(fail_on)
        unknown = [w for w in wanted if w not in FAIL_ON]
        if unknown:
            raise ValueError(f"fail_on: {unknown[0]!r} is not one of {', '.join(FAIL_ON)}")
        tests = {"changed": lambda r: r.call == CHANGED, "changed-beyond-min-effect": lambda r: r.beyond_min_effect,
                 "essential-lost": lambda r: r.essential_lost, "unclear": lambda r: r.call != "same"}
        return [r for r in self.rows if any(tests[w](r) for w in wanted)]

    @property
    def changed(self) -> list[RowComparison]:
        return self.rows_called(CHANGED)

    @property
    def unclear(self) -> list[RowComparison]:
        return self.rows_called(UNCLEAR)
