"""What the tuning stage leaves behind: best_config.yaml, tuning/report.md, plots, results.json.

The study's own report.md has one tuning section, rendered from tuning/results.json by
``study_section``; the study session passes it to the one writer of report.md and report.html
(``analysis.report_files``), after the analysis's sections.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import yaml
from optuna.trial import TrialState

from ..config import StudyConfig, parse_config
from ..errors import ConfigError, LedgerDamaged
from ..ledger import Study, write_json, write_text
from ..ledger.tuning_results import TUNING_DIR, number_text, read_results, results_json
from ..levels import same
from ..paths import apply_overrides, get_path
from .confirm import sentence
from .search import journal_path
from .tuning_plan import GLOBAL, TuningPlan

# ---------------------------------------------------------------- best_config.yaml


def best_config(study: Study, config: StudyConfig, plan: TuningPlan, values: dict,
                header: str) -> tuple[str, list[str]]:
    """A launchable study config: the baseline with the best values and the removals applied.

    Removed components leave `components` (and any `design.pairs` naming them); the tuning
    section is kept; the study is renamed `<name>-tuned` so launching it never collides
    with this study's directory. Returns the YAML text and any validation problems.
    """
    data = yaml.safe_load(study.config_path.read_text())
    data["name"] = f"{config.name}-tuned"
    data["baseline"] = apply_overrides(config.baseline, {**plan.removal_overrides(config),
                                                         **plan.value_overrides(values)})
    if data.get("components"):
        data["components"] = {n: c for n, c in data["components"].items() if n not in plan.removed}
    drop_redundant_alternatives(data)
    pairs = (data.get("design") or {}).get("pairs")
    if pairs:
        data["design"]["pairs"] = [p for p in pairs if not set(p) & set(plan.removed)]
    problems = []
    try:
        parse_config(data)
    except ConfigError as exc:
        problems = [f"{field}: {msg}" for field, _, msg in exc.problems]
    text = "".join(f"# {line}\n" for line in header.splitlines())
    if problems:
        text += "# NOTE: this config does not validate as it is:\n" + "".join(f"#   {p}\n" for p in problems)
    return text + yaml.safe_dump(data, sort_keys=False), problems


def drop_redundant_alternatives(data: dict) -> None:
    """Drop each alternative the tuned baseline already is (its overrides all hold there, e.g. the winning
    alternative carried into it); a component left without alternatives loses the key."""
    absent = object()
    for comp in (data.get("components") or {}).values():
        alts = comp.get("alternatives") if isinstance(comp, dict) else None
        if not alts:
            continue
        kept = {a: ov for a, ov in alts.items()
                if not all(same(get_path(data["baseline"], k, absent), v) for k, v in (ov or {}).items())}
        if kept:
            comp["alternatives"] = kept
        else:
            comp.pop("alternatives")


# ---------------------------------------------------------------- plots


def plot_history(ostudy: optuna.Study, path: Path, metric: str, mode: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trials = ostudy.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter([t.number for t in done], [t.value for t in done], s=18, label="trial (final value)")
    if pruned:
        ax.scatter([t.number for t in pruned], [t.intermediate_values[max(t.intermediate_values)] for t in pruned],
                   marker="x", color="grey", label="pruned (last reported)")
    if done:
        best, xs, ys = None, [], []
        for t in sorted(done, key=lambda t: t.number):
            if best is None or (t.value > best if mode == "max" else t.value < best):
                best = t.value
            xs.append(t.number)
            ys.append(best)
        last = max(t.number for t in trials)
        if last > xs[-1]:
            xs.append(last)
            ys.append(best)
        ax.step(xs, ys, where="post", color="C3", label="best so far")
    ax.set_xlabel("trial number")
    ax.set_ylabel(f"{metric} ({mode})")
    ax.set_title("TPE optimization history")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def importances(ostudy: optuna.Study) -> tuple[dict[str, float], str | None]:
    """fANOVA parameter importances (seeded), or ({}, why not)."""
    n = len(ostudy.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if n < 2:
        return {}, f"needs at least 2 completed trials ({n} so far)"
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        return dict(optuna.importance.get_param_importances(ostudy, evaluator=evaluator)), None
    except Exception as exc:  # importances are an aid, never a reason to fail
        return {}, f"{type(exc).__name__}: {exc}"


def plot_importances(imp: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(imp)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.5))
    ax.barh(names, [imp[n] for n in names], color="C0")
    ax.set_xlabel("importance (fANOVA, share of variance)")
    ax.set_title("Parameter importances")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------- the report


def write_reports(study: Study, config: StudyConfig, plan: TuningPlan, ostudy: optuna.Study,
                  summary: dict) -> Path:
    """tuning/report.md, the plots and tuning/results.json (whence the study report's tuning section)."""
    out = study.path / TUNING_DIR
    out.mkdir(parents=True, exist_ok=True)
    plot_history(ostudy, out / "history.png", plan.metric, plan.mode)
    imp, imp_note = importances(ostudy)
    if imp:
        plot_importances(imp, out / "importances.png")
    summary["importances"] = imp
    write_json(out / "results.json", results_json(summary))

    best = summary.get("best")
    conf = summary.get("confirmation")
    counts = summary["counts"]
    L: list[str] = [f"# Tuning stage of study `{config.name}`", ""]
    L += [("Ablation first, then TPE over the survivors only: the ablation's verdicts "
          "(verdicts.json) decide what is tuned, removed or kept. The two are never mixed."), ""]
    L += ["## What was tuned, and why", ""]
    L += ["| parameter | search space | from | verdict |", "|---|---|---|---|"]
    for p in plan.params.values():
        src = ", ".join("global `tuning.search_space`" if s == GLOBAL else f"component `{s}`" for s in p.sources)
        L.append(f"| `{p.path}` | {p.describe()} | {src} | {', '.join(p.verdicts)} |")
    if plan.skipped:
        L += ["", "Not tuned:", ""]
        L += [f"- `{path}` (from `{src}`): {why}" for path, src, why in plan.skipped]
    L += ["", "## Components", "", "| component | kind | verdict | in every tuning trial |", "|---|---|---|---|"]
    for name, comp in config.components.items():
        L.append(f"| {name} | {comp.kind} | {plan.verdicts[name]} | {plan.fate(name)} |")
    L += [""] + [f"- {n}" for n in plan.notes] + ([""] if plan.notes else [])
    L += ["## Optimization", ""]
    L += [(f"- Sampler: multivariate TPE, seed {config.tuning.sampler_seed}, constant liar "
          f"(up to {summary['slots']} trials in flight); pruner: {config.tuning.pruner}"),
          (f"- Trials: {summary['n_trials']} of a budget of {summary['budget']} "
          f"({', '.join(f'{k.lower()} {v}' for k, v in sorted(counts.items()))}); every tuning trial trains "
          f"with seed {config.tuning.trial_seed}"),
          f"- Storage: `{journal_path(study.path)}` (Optuna journal, study name `{ostudy.study_name}`). Open it with:",
          "", "```python", "import optuna", "from optuna.storages.journal import JournalFileBackend",
          f"storage = optuna.storages.JournalStorage(JournalFileBackend({str(journal_path(study.path))!r}))",
          f"study = optuna.load_study(study_name={ostudy.study_name!r}, storage=storage)", "```", ""]
    if best:
        L += [(f"{best.line()} (the maximum of many noisy draws: see the confirmation for an unbiased estimate)"),
              "", "| parameter | best value |", "|---|---|"]
        L += [f"| `{k}` | {number_text(v)} |" for k, v in best.params.items()]
        L.append("")
    L += ["![optimization history](history.png)", ""]
    if imp:
        L += ["![parameter importances](importances.png)", "", "| parameter | importance |", "|---|---|"]
        L += [f"| `{k}` | {v:.3f} |" for k, v in imp.items()]
    else:
        L.append(f"Parameter importances: not computed ({imp_note}).")
    L += ["", "## Confirmation", ""]
    if conf:
        L += [sentence(conf, plan.metric), ""]
        L += ["| seed | baseline | tuned | difference (+ = tuned better) |", "|---|---|---|---|"]
        for seed in config.tuning.confirm_seeds:
            cells = (conf.baseline_values.get(str(seed)), conf.tuned_values.get(str(seed)), conf.diffs.get(str(seed)))
            L.append(f"| {seed} | " + " | ".join("-" if v is None else number_text(v) for v in cells) + " |")
        if conf.reused_baseline:
            L += ["", (f"Baseline runs of seeds {', '.join(map(str, conf.reused_baseline))} are the "
                  "ablation's own baseline trials (same config, same seed), reused.")]
        if config.tuning.trial_seed in config.tuning.confirm_seeds:
            L += ["", (f"Caution: the tuning seed {config.tuning.trial_seed} is also a confirmation seed, so "
                  "that seed's comparison carries the selection bias of the search.")]
        if conf.note:
            L += ["", f"Note: {conf.note}"]
    else:
        L.append("No confirmation: no tuning trial completed.")
    if summary.get("best_config"):
        L += ["", (f"`best_config.yaml` is a study config with the best values and the removals applied: "
              f"`ablator launch {study.path / 'best_config.yaml'}`.")]
        for p in summary.get("best_config_problems") or []:
            L.append(f"- does not validate as it is: {p}")
    write_text(out / "report.md", "\n".join(L) + "\n")
    return out / "report.md"


def study_section(study_path: str | Path) -> str | None:
    """The tuning section of the study's report.md, from the tuning results (None before the stage ran)."""
    try:
        summary = read_results(study_path)
    except LedgerDamaged as exc:  # the analysis's sections do not depend on it: say so, write them
        return (f"## Tuning\n\nThe tuning stage's results cannot be read: {exc}\n`ablator tune {study_path}` "
                "writes them again (its finished trials are kept).")
    if not summary:
        return None
    best, conf, metric = summary.get("best"), summary.get("confirmation"), summary["metric"]
    tuned = [p["path"] for p in summary["tuned"]]
    lines = ["## Tuning", "",
             (f"Tuned {len(tuned)} parameter(s) ({', '.join(f'`{p}`' for p in tuned)}) over "
              f"{summary['n_trials']} TPE trials; removed: {', '.join(summary['removed']) or 'none'}.")]
    if best:
        lines.append(f"{best.line()}.")
    if conf:
        lines.append(sentence(conf, metric))
    lines += ["", ("Details, plots and the Optuna storage: [tuning/report.md](tuning/report.md); "
                   "the launchable config: [best_config.yaml](best_config.yaml).")]
    return "\n".join(lines)
