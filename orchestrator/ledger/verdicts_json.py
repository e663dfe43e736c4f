"""The analysis's results as typed models, and verdicts.json (their dump, with a layout version).

``Comparison`` is one row compared with the baseline over paired seeds or by regression: a
component (baseline vs the variant without it), an alternative (the baseline's choice vs the
alternative) or a pair of components (their interaction contrast). ``Factor`` is one factor's
effect over its levels, ``FactorInteraction`` a pair of factors' joint test, ``Group`` one
group's results and ``Verdicts`` the whole document. The analysis builds them (every field is
validated on construction, and ``extra="forbid"`` makes a misspelt field fail); the report,
tuning, W&B and the CLI read their attributes. Numbers that could not be computed are NaN in
memory and ``null`` in verdicts.json.

``read_verdicts(path)`` reads verdicts.json back; a damaged file, one of another layout or one
with an unknown or missing field raises ``LedgerDamaged`` naming the file and how to rewrite it
(``ablator report``): the analysis is not re-run behind the reader's back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import LedgerDamaged
from .cost_json import VerdictCost
from .files import read_json, write_json

#: the layout of verdicts.json this code writes and reads
LAYOUT = 2

#: a row's verdict, the one definition every module reads: a component's or an alternative's (essential,
#: harmful, negligible, inconclusive) or a pair's (interaction, inconclusive)
Verdict = Literal["essential", "harmful", "negligible", "inconclusive", "interaction"]
ESSENTIAL, HARMFUL, NEGLIGIBLE, INCONCLUSIVE, INTERACTION = get_args(Verdict)

Num = float | None  # NaN in memory, null in verdicts.json
Seed = int | str


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Summary(_Model):
    """A metric's n, mean and std over seeds (oriented where the row says so)."""

    n: int = 0
    mean: Num = None
    std: Num = None


class Deciding(_Model):
    """The test that decides a row's verdict (for an undecided row, the one closest to deciding)."""

    test: str
    claim: str
    p_holm: Num
    p: Num = None


class SecondaryEffect(_Model):
    """A row's effect on a secondary metric (t-based, oriented by that metric's own mode)."""

    effect: Num = None
    ci: list[Num] = [None, None]
    p: Num = None
    n: int = 0
    #: a categorical factor's level the effect is of
    level: str | None = None


class AverageEffect(_Model):
    """A component's main effect averaged over the design's variants (when an interaction was found)."""

    effect: Num
    ci: list[Num]


class Estimate(_Model):
    """An effect with its t interval (``ci``), the BCa one from 10 seeds (``ci_bootstrap``), tests (raw
    p-values), mde and seeds needed. The analysis fills a row in steps (its family's Holm decision comes
    last): every assignment is validated as construction is."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    effect: Num = None
    std: Num = None
    se: Num = None
    df: Num = None
    t: Num = None
    ci: list[Num] = [None, None]
    ci_method: str = "t"
    ci_bootstrap: list[Num] = [None, None]
    n: int = 0
    p: Num = None
    p_essential: Num = None
    p_harmful: Num = None
    p_negligible: Num = None
    mde: Num = None
    seeds_needed: int | None = None
    estimable: bool = False
    zero_variance: bool = False

    @property
    def shown_ci(self) -> list[Num]:
        """The interval a factor's table shows: the BCa bootstrap when ``ci_method`` says so, else ``ci`` (t)."""
        return self.ci_bootstrap if self.ci_method == "BCa" else self.ci


class Comparison(Estimate):
    """One row compared with the baseline: a component, an alternative or a pair's interaction.

    ``effect`` is oriented so that positive means the baseline is better (the component, or the
    baseline's choice, helps). ``ci`` is the (1 - alpha) t interval, ``ci_sim`` the simultaneous
    one at ``ci_sim_level`` the report shows, ``ci_bootstrap`` the BCa interval (from 10 seeds).
    ``variant`` is the compared variant's metric (without the component, with the alternative).
    """

    kind: str | None = None
    method: Literal["paired", "regression"]
    verdict: Verdict
    deciding: Deciding | None = None
    #: why a row whose numbers look decided is not (or the reverse); "" when none
    why: str = ""
    significant: bool = False
    ci_sim: list[Num] = [None, None]
    ci_sim_level: Num = None
    bootstrap_method: str | None = None
    #: seeds with the component removed (regression designs; the adaptive rule's count)
    n_seeds: int | None = None
    n_removed: int | None = None
    p_holm: Num = None
    p_essential_holm: Num = None
    p_harmful_holm: Num = None
    p_negligible_holm: Num = None
    note: str = ""
    seeds: list[Seed] = []
    diffs: dict[str, float] = {}
    unpaired: dict[str, list[Seed]] = {}
    baseline: Summary = Summary()
    variant: Summary = Summary()
    seed_std: Num = None
    average_effect: AverageEffect | None = None
    secondary: dict[str, SecondaryEffect] = {}
    # a pair of components (interactions)
    delta_a: Num = None
    delta_b: Num = None
    delta_ab: Num = None
    listed: bool | None = None
    #: what a significant interaction means, in words
    reading: str = ""
    # an alternative
    overrides: dict[str, Any] = {}
    # a component's alternatives, by name
    alternatives: dict[str, Comparison] = {}

    @property
    def full_note(self) -> str:
        """The note and, when its numbers look decided but it is not (or the reverse), why."""
        return "; ".join(x for x in (self.note, self.why) if x)


class FactorLevel(Estimate):
    """A categorical factor's level against the baseline's value."""

    #: the t interval its Holm decision was made at
    ci_decision: list[Num] | None = None
    p_holm: Num = None


class Factor(Estimate):
    """One factor's effect: a numeric factor's slope (per unit or per doubling), or per categorical level.

    ``p`` tests all its levels at once, ``p_holm`` is Holm across factors; ``rank`` orders the factors by
    ``importance`` (the metric's spread over the factor's range or levels). ``points`` are (value, metric)
    per trial for its plot.
    """

    kind: Literal["numeric", "categorical"]
    unit: str
    path: str
    branch: str | None = None
    baseline_value: Any = None
    effect_level: str | None = None
    ci_decision: list[Num] | None = None
    decision_k: int | None = None
    decision_m: int | None = None
    p_holm: Num = None
    significant: bool = False
    #: Holm across factors of the equivalence test (``p_negligible``: within +-min_effect over its range)
    p_negligible_holm: Num = None
    negligible: bool = False
    importance: Num = None
    rank: int | None = None
    curvature_p: Num = None
    fit_note: str = ""
    note: str = ""
    adjusted: bool = False
    levels: dict[str, FactorLevel] = {}
    secondary: dict[str, SecondaryEffect] = {}
    points: list[tuple[Any, Num]] = []


class FactorInteraction(_Model):
    """Two factors' interaction columns F-tested together (random/full-factorial designs), Holm across pairs:
    an ``interaction`` when significant. Not a verdict: it says to read the two factors together."""

    p: Num = None
    p_holm: Num = None
    significant: bool = False
    columns: int = 0


class PairTest(_Model):
    """An unlisted pair of components tested on its own (its interaction contrast), Holm across the pairs."""

    effect: Num = None
    ci: list[Num] = [None, None]
    p: Num = None
    p_holm: Num = None


class LackOfFit(_Model):
    """The main-effects model against one mean per variant: F(df[0], df[1]) and its p."""

    F: Num = None
    df: list[int]
    p: Num = None


class FitCheck(_Model):
    """Random and full-factorial designs: is the main-effects model enough? ``pairs`` tested in the first
    round, ``found`` the pairs added to the model ("a x b"), ``aliases`` the pairs the design cannot tell
    apart from one found."""

    pairs: dict[str, PairTest] = {}
    found: list[str] = []
    aliases: dict[str, list[str]] = {}
    lack_of_fit: LackOfFit | None = None


class Flag(_Model):
    """A warning (or an error, or a note) the report shows."""

    kind: str
    severity: Literal["error", "warning", "info"]
    group: str | None = None
    subject: str | None = None
    message: str


class Power(_Model):
    """What a group could detect: its noisiest component's mde and the seeds that would resolve it."""

    mde: Num = None
    n: int = 0
    min_effect: float = 0.0
    seeds_needed: int | None = None
    #: the sentence the report prints when the mde exceeds min_effect
    line: str | None = None


class Group(_Model):
    """One group's results (a tier, a sweep value, or the whole study)."""

    tier: str | None = None
    sweep_value: Any = None
    components: dict[str, Comparison] = {}
    interactions: dict[str, Comparison] = {}
    factors: dict[str, Factor] = {}
    factor_interactions: dict[str, FactorInteraction] = {}
    fit_check: FitCheck | None = None
    power: Power | None = None
    complete: bool = False
    n_decided: int = 0


class Metric(_Model):
    name: str
    mode: Literal["min", "max"]


class Verdicts(_Model):
    """verdicts.json: settings, every group's results, the main group's at the top, and the flags."""

    layout: Literal[2] = LAYOUT
    study: str
    primary: Metric
    alpha: float
    min_effect: float
    design: str
    adaptive: dict[str, Any] | None = None
    reproducibility: dict[str, Any] = {}
    main_group: str | None = None
    power: Power | None = None
    components: dict[str, Comparison] = {}
    interactions: dict[str, Comparison] = {}
    factors: dict[str, Factor] = {}
    groups: dict[str, Group] = {}
    complete: bool = False
    flags: list[Flag] = []
    #: what each verdict cost (trial-hours per decided row; the budget)
    cost: VerdictCost | None = None
    generated: float | None = None


def write_verdicts(path: Path, doc: Verdicts) -> None:
    """verdicts.json, atomically: the model's dump (NaN as null)."""
    write_json(path, json.loads(doc.model_dump_json()))


def read_verdicts(path: str | Path) -> Verdicts | None:
    """verdicts.json as a ``Verdicts`` (None when there is none); LedgerDamaged naming the file when it is
    damaged, of another layout, or has an unknown or missing field."""
    path = Path(path)
    mend = f"rewrite it from the study's records: `ablator report {path.parent}`"
    data = read_json(path, mend=mend)
    if data is None:
        return None
    if not isinstance(data, dict):
        raise LedgerDamaged(path, f"verdicts must be a JSON object, not {type(data).__name__}", mend)
    if data.get("layout") != LAYOUT:
        raise LedgerDamaged(path, f"layout {data.get('layout', 1)!r}, this ablator reads layout {LAYOUT}", mend)
    try:
        return Verdicts.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "<document>"
        raise LedgerDamaged(path, f"field '{where}': {err['msg']}", mend) from None
