"""The report of a study: console tables, report.md, results.csv, verdicts.json, plots/.

``build_report(study_path, console=None)`` reads only the study directory (ledger and
config), so it runs the same after a launch, on another day, or on another machine.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.rule import Rule

from ..config import StudyConfig, load_config
from ..ledger import Study
from ..ledger.verdicts_json import Power, Verdicts, write_verdicts
from . import factor_report, tables
from .flags import flag
from .intervals import MIN_BOOTSTRAP_N
from .model import Analysis, GroupAnalysis
from .plots import INTERVAL_CAPTION
from .records import DEFAULT_GROUP, running
from .report_files import write_report_files
from .study_analysis import analyse, verdicts_payload
from .verdict_cost import markdown as cost_markdown
from .verdict_cost import verdict_cost

#: which interval the tables and plots show (intervals.simultaneous_alpha)
SIM_CI_TEXT = ("simultaneous t interval, Bonferroni-adjusted: each row at level 1 − alpha/m for the m rows of its "
               "family (with adaptive seeds also adjusted for the look)")
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def load_study_config(study: Study) -> StudyConfig:
    """The study's config, for analysis: its trainable need not import here (the report reads the ledger)."""
    return load_config(study.config_path, import_trainable=False)


def analyse_study(study_path: str | Path, *, n_bootstrap: int | None = None) -> Analysis:
    """Read a study dir and analyse its ablation stage (no files written); while one of its ablation trials is
    pending or running, as an interim look (with the peeking adjustment)."""
    study = Study(study_path)
    config = load_study_config(study)
    records = study.records()
    return analyse(records, config, study.path, n_bootstrap=n_bootstrap, interim=running(records))


def build_report(study_path: str | Path, console: Console | None = None, sections: Sequence[str] = ()) -> Verdicts:
    """Analyse the study's ledger and write report.md, report.html, results.csv, verdicts.json and plots/.

    `sections`: markdown after the analysis's own in report.md (the session passes the tuning stage's).

    Prints the tables to ``console`` (a new rich Console on stdout when None; pass
    ``Console(quiet=True)`` for silence). Returns the verdicts (what verdicts.json holds).
    """
    console = console or Console()
    study = Study(study_path)
    config = load_study_config(study)
    records = study.records()
    # a study its budget stopped is an interim look: alpha is spent only up to it (the trials not started
    # stay PENDING); with adaptive seeds every look is adjusted anyway
    budget_stop = study.info.get("stages", {}).get("ablation", {}).get("state") == "budget"
    analysis = analyse(records, config, study.path, interim=budget_stop and running(records))
    files: dict[str, str] = {}

    plot_files = _plots(analysis, config, study.path / "plots")  # first: a failed plot's flag is in verdicts.json
    payload = verdicts_payload(analysis)
    payload.generated = time.time()
    payload.cost = verdict_cost(payload, records, config, study.info)
    write_verdicts(study.path / "verdicts.json", payload)
    files["verdicts"] = str(study.path / "verdicts.json")
    tables.write_results_csv(analysis, study.path / "results.csv")
    files["results"] = str(study.path / "results.csv")
    files.update(plot_files)
    md = render_markdown(analysis, config, study, plot_files)
    report_md, report_html = write_report_files(study.path, [md, cost_markdown(payload.cost), *sections])
    files["report"], files["html"] = str(report_md), str(report_html)
    print_console(analysis, config, console, files)
    return payload


# ---------------------------------------------------------------- plots


def _plots(analysis: Analysis, config: StudyConfig, plot_dir: Path) -> dict[str, str]:
    from . import plots  # matplotlib only when plotting

    plot_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for label, g in analysis.groups.items():
        sfx = plots.suffix(label)
        try:
            if g.components or g.interactions:
                out[f"effects{sfx}"] = str(plots.effects_plot(g, analysis, plot_dir / f"effects{sfx}.png"))
            if g.alternatives:
                out[f"alternatives{sfx}"] = str(
                    plots.alternatives_plot(g, analysis, plot_dir / f"alternatives{sfx}.png"))
            out[f"distributions{sfx}"] = str(
                plots.distributions_plot(g, analysis, plot_dir / f"distributions{sfx}.png"))
            out.update(factor_report.factor_plots(g, analysis, plot_dir, sfx))
        except Exception as exc:  # a plot must never cost the report
            analysis.flags.append(flag("plot", "info", label, None, f"plot for group {label} failed: {exc}"))
    if config.sweep is not None:
        tiers = config.tier_names
        for tier in tiers:
            name = "sweep" + ("" if tier is None else "_" + plots.safe(tier))
            try:
                p = plots.sweep_plot(analysis, config.sweep.path, tier, plot_dir / f"{name}.png")
            except Exception as exc:
                analysis.flags.append(flag("plot", "info", None, None, f"sweep plot failed: {exc}"))
                p = None
            if p is not None:
                out[name] = str(p)
    return out


# ---------------------------------------------------------------- markdown


def _seed_text(config: StudyConfig) -> str:
    s = config.seeds
    if isinstance(s, list):
        return f"seeds {', '.join(map(str, s))}"
    return f"adaptive seeds ({s.initial} to {s.max} per variant)"


def render_markdown(analysis: Analysis, config: StudyConfig, study: Study, plot_files: dict[str, str]) -> str:
    prim = analysis.primary
    L: list[str] = [f"# Ablation report: {analysis.study}", ""]
    pending = analysis.cost.total.pending
    status = "complete" if analysis.complete else (
        f"provisional: {pending} trial(s) pending or running" if pending
        else "incomplete: some planned trials never ran")
    if study.info.get("stages", {}).get("ablation", {}).get("state") == "budget":
        status = (f"stopped by its budget, {pending} trial(s) not started: an interim look (alpha spent only up "
                  "to it); 'Cost per verdict' lists the rows it left undecided and what each would need")
    L += [
        f"- study: `{study.path}`",
        f"- design: {analysis.design}" + (f" with pairs {', '.join('+'.join(p) for p in analysis.pairs)}"
                                           if analysis.pairs else ""),
        f"- {_seed_text(config)}; primary metric **{prim.name}** ({prim.mode})"
        + (f"; secondary: {', '.join(m.name + ' (' + m.mode + ')' for m in analysis.secondary)}"
           if analysis.secondary else ""),
        (f"- alpha {analysis.alpha} (Holm across components), minimum practical effect {analysis.min_effect}; "
         f"intervals: {SIM_CI_TEXT} (a per-row BCa bootstrap interval beside it from {MIN_BOOTSTRAP_N} seeds, "
         f"{analysis.n_bootstrap} resamples)"),
        f"- reproducibility: {mode_text(analysis.reproducibility)}",
        f"- status: {status}",
        "",
    ]
    main_power = _main_power(analysis)
    if main_power is not None and main_power.line:
        L += [f"> **Power:** {main_power.line}.", ""]
    elif main_power is not None:
        L += [(f"**Power:** with {main_power.n} seeds this study detects effects >= {main_power.mde:.3g} "
               f"(80% power), within min_effect {main_power.min_effect:g}."), ""]
    if analysis.adaptive:
        ad = analysis.adaptive
        named = (f", the `{ad.design}` design (final weight {ad.final_weight:g}; no more seeds for a row whose "
                 f"chance of a decision by {ad.max} seeds is below {ad.futility:g})") if ad.design else ""
        L += [(f"> Sequential seeds{named}: a look after every seed from {ad.looks[0]} to {ad.max}; each row's "
               f"tests are "
               f"repeated p-values (boundary: nominal p {ad.boundary[0]:.2g} at every interim look, "
               f"{ad.boundary[-1]:.2g} at {ad.max} seeds, alpha spent {ad.spent[0]:.2g} by the first look and "
               f"{ad.spent[-1]:.2g} by the last, for a row alone in its family; Holm shares it among the rows), "
               f"so a verdict keeps its error rate whenever the study stops."), ""]
    multi = len(analysis.groups) > 1
    for label, g in analysis.groups.items():
        if multi:
            main = " (main: the top-level verdicts)" if label == analysis.main_group else ""
            L += [f"## Group `{label}`{main}", ""]
        else:
            L += ["## Verdicts", ""]
        if g.components:
            L += [tables.markdown(tables.SUMMARY_HEADER, tables.summary_rows(g)), ""]
            L += _component_notes(g)
        L += factor_report.markdown_lines(g, config)
        if g.interactions:
            L += ["### Interaction pairs", "",
                  ("interaction = delta(a+b) − delta(a) − delta(b) per seed: positive means removing both hurts more "
                  "than the two single removals added up."), "",
                  tables.markdown(tables.INTERACTION_HEADER, tables.interaction_rows(g)), ""]
            for key, r in g.interactions.items():
                if r.reading:
                    L.append(f"- **{key}**: {r.reading}.")
                elif r.note:
                    L.append(f"- {key}: {r.note}.")
            L.append("")
        L += ["### Metrics per variant (mean ± std over seeds)", ""]
        for title, ms in tables.metric_tables(g, config):
            if len(tables.metric_tables(g, config)) > 1:
                L += [f"**{title}**", ""]
            L += [tables.markdown(["variant"] + ms, tables.metric_table_rows(g, ms)), ""]
    L += _fit_md(analysis)
    L += ["## Flags", ""]
    flags = analysis.flags
    if not flags:
        L += ["No flags: no missing or failed seeds, no non-finite metrics, no contamination, no warnings.", ""]
    for f in sorted(flags, key=lambda f: {"error": 0, "warning": 1, "info": 2}[f.severity]):
        where = f" (group `{f.group}`)" if (multi and f.group) else ""
        L.append(f"- **{f.severity}** `{f.kind}`{where}: {f.message}")
    L.append("")
    if analysis.reference:
        ref = analysis.reference
        if ref.prediction_interval is not None:
            lo, hi = ref.prediction_interval
            L += ["## Reference result: one published run against the seed spread", "",
                  (f"reference_result {tables.num(ref.reference)} vs the retrained baseline "
                  f"{tables.num(ref.mean)} ± {tables.num(ref.std)} over {ref.n} seeds: z = "
                  f"{tables.num(ref.z)}, prediction interval [{tables.num(lo)}, {tables.num(hi)}], "
                  f"{ref.fraction_at_least_as_good * 100:.0f}% of the retrained seeds are at least as good."), ""]
    L += _cost_md(analysis)
    if plot_files:
        L += ["## Plots", ""]
        for name, path in plot_files.items():
            rel = Path(path).relative_to(study.path) if Path(path).is_relative_to(study.path) else path
            L.append(f"![{name}]({rel})")
            if name.startswith(("effects", "alternatives")):
                L += ["", f"*{name}: {INTERVAL_CAPTION}; the intervals are the tables' simultaneous CIs.*", ""]
        L.append("")
    L += [
        "## How to read this report", "",
        "- **delta** is the mean over seeds of the paired difference baseline vs ablated, oriented so that "
        f"**positive means the component helps**; [simultaneous CI] is the {SIM_CI_TEXT}: all the rows' intervals "
        "cover their effects together with probability at least 1 − alpha, and one clear of ±min_effect is "
        "decided; `BCa per row` is the bias-corrected bootstrap interval at 1 − alpha for that row alone (only "
        "from 10 seeds: at 3-5 seeds bootstrap intervals cover far less than they claim). Paired differences "
        "below 1e-12 × the metric are float noise: 0."
        + (" In random/full-factorial designs delta is the regression main effect (seed fixed effects); "
           "'baseline'/'ablated' then average all trials with/without the component."
           if analysis.design != "one_at_a_time" else ""),
        ("- **deciding test** is the test whose Holm-adjusted p decides the verdict (for an inconclusive row, the "
         "one closest to deciding), its claim in words and its raw p beside it; **p vs 0 (Holm)** is the plain "
         "paired t-test against 0 after Holm's correction (`significant` in verdicts.json): an effect can differ "
         "from 0 and still not be shown beyond min_effect. A row whose numbers look decided but is not (or the "
         "reverse) says why in its verdict and note."),
        (f"- **essential**: the t interval lies above min_effect = {analysis.min_effect} (a shifted one-sided "
         "test, Holm-adjusted); **harmful**: the mirror image; **negligible**: shown equivalent within "
         "± min_effect (TOST, Holm-adjusted; only when min_effect > 0); **inconclusive**: none of these shown, "
         "which is a result, not a failure: the verdict column says about how many seeds would decide."),
        ("- **MDE**: the effect a two-sided test detects with 80% power at this many seeds and the observed "
         "spread; an effect below it is likely to come out inconclusive."),
        ("- Comparisons are paired: each uses only the seeds where both variants finished with a finite metric, "
         "and says so."),
        "",
    ]
    return "\n".join(L)


def _main_power(analysis: Analysis) -> Power | None:
    g = analysis.groups.get(analysis.main_group)
    return g.power if g is not None else None


def mode_text(rep: dict) -> str:
    """Which reproducibility mode the trials ran in, and the determinism check's outcome."""
    det = rep.get("deterministic")
    t = rep.get("trials", {})
    text = {True: "deterministic algorithms on (reproducibility.deterministic: true)",
            False: "deterministic algorithms off (reproducibility.deterministic: false)",
            "mixed": f"mixed: {t.get('on', 0)} trials deterministic, {t.get('off', 0)} not",
            None: "mode not recorded"}[det]
    chk = rep.get("check")
    if chk is not None:
        text += "; determinism check: " + {True: f"seed {chk.get('seed')} run twice, bit-identical",
                                           False: f"seed {chk.get('seed')} run twice, DIFFERENT results",
                                           None: "could not run"}[chk.get("identical")]
    return text


def _fit_md(analysis: Analysis) -> list[str]:
    """Random/factorial designs: the unlisted pairs tested and the lack-of-fit test."""
    out = []
    for label, g in analysis.groups.items():
        chk = g.fit_check
        if chk is None or not chk.pairs and chk.lack_of_fit is None:
            continue
        out += [f"### Is the main-effects model enough?{' (' + label + ')' if len(analysis.groups) > 1 else ''}",
                ""]
        rows = [[k, tables.signed(r.effect), tables.ci_text(r.ci), tables._p(r.p), tables._p(r.p_holm),
                 "interaction" if k in chk.found else ""] for k, r in chk.pairs.items()]
        if rows:
            out += [tables.markdown(["unlisted pair", "interaction", "[t CI]", "p", "p (Holm)", ""], rows), ""]
        lof = chk.lack_of_fit
        if lof is not None:
            out += [(f"Lack of fit of the main-effects model: F({lof.df[0]}, {lof.df[1]}) = "
                     f"{tables.num(lof.F)}, p = {tables._p(lof.p)}."), ""]
    return out


def _component_notes(g: GroupAnalysis) -> list[str]:
    out = []
    for name, r in g.components.items():
        if not r.estimable:
            out.append(f"- **{name}**: {r.note or 'cannot conclude'}.")
        elif r.why:
            out.append(f"- **{name}** ({r.verdict}): {r.full_note}.")
        elif r.note:
            out.append(f"- {name}: {r.note}.")
    return out + ([""] if out else [])


def _cost_md(analysis: Analysis) -> list[str]:
    c = analysis.cost
    rows = []
    for stage, s in [*c.stages.items(), ("total", c.total)]:
        rows.append([stage, str(s.trials), f"{s.trial_hours:.3g}", str(s.failed), str(s.restarts),
                     f"{s.saved_hours:.3g}"])
    return ["## What the study cost", "",
            tables.markdown(["stage", "trials", "trial-hours", "failed", "restarts",
                             "trial-hours saved by inference-only reuse"], rows), ""]


# ---------------------------------------------------------------- console


def print_console(analysis: Analysis, config: StudyConfig, console: Console, files: dict[str, str]) -> None:
    prim = analysis.primary
    console.print(Rule(escape(f"Ablation report: {analysis.study}")))
    console.print(f"primary metric [bold]{prim.name}[/bold] ({prim.mode}), alpha {analysis.alpha}, "
                  f"min effect {analysis.min_effect}, {_seed_text(config)}, design {analysis.design}")
    console.print(f"reproducibility: {mode_text(analysis.reproducibility)}", highlight=False)
    main_power = _main_power(analysis)
    if main_power is not None and main_power.line:
        console.print(f"[bold yellow]Power:[/bold yellow] {escape(main_power.line)}", highlight=False)
    multi = len(analysis.groups) > 1
    for label, g in analysis.groups.items():
        suffix = f" — {label}" if multi or label != DEFAULT_GROUP else ""
        for title, ms in tables.metric_tables(g, config):
            console.print(tables.rich_table(f"{title}{suffix}", ["variant"] + ms, tables.metric_table_rows(g, ms)))
        if g.components:
            console.print(tables.rich_table(f"Verdicts{suffix}", tables.SUMMARY_HEADER, tables.summary_rows(g),
                                            verdict_col=tables.VERDICT_COL))
            for line in _component_notes(g):
                if line:
                    console.print("  " + escape(line.replace("**", "")), highlight=False)
        for table in factor_report.console_tables(g, config, suffix):
            console.print(table)
        if g.interactions:
            console.print(tables.rich_table(f"Interaction pairs{suffix}", tables.INTERACTION_HEADER,
                                            tables.interaction_rows(g), verdict_col=7))
    flags = [f for f in analysis.flags if f.severity != "info"]
    if flags:
        console.print(f"[bold]Flags[/bold] ({len(flags)}; info-level ones are in report.md):")
        for f in flags:
            style = SEVERITY_STYLE[f.severity]
            where = f" ({f.group})" if (multi and f.group) else ""
            console.print(f"  [{style}]{f.severity}[/{style}] {escape(f.kind + where)}: {escape(f.message)}",
                          highlight=False)
    else:
        console.print("No warnings.")
    t = analysis.cost.total
    console.print(f"Cost: {t.trials} trials, {t.trial_hours:.3g} trial-hours, {t.failed} failed, "
                  f"{t.restarts} restarts, {t.saved_hours:.3g} trial-hours saved by inference-only reuse")
    if "report" in files:
        console.print(f"Report: {files['report']}  (report.html, verdicts.json, results.csv, plots/ beside it)")
