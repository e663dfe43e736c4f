"""The study's `analysis` run: results table, plots, verdicts, best config, tuning report."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ..ledger import read_json
from ..ledger.verdicts_json import read_verdicts
from ..provenance import freeze
from . import payload as P


def has_report(study_dir: Path) -> bool:
    """Whether the study has anything for the analysis run yet."""
    return any(_find(Path(study_dir), name) for name in ("results.csv", "verdicts.json"))


def write_analysis_run(wb, study, study_dir: Path, counts: dict[str, int]) -> None:
    """Write (or resume) the study's `analysis` run from the report files in `study_dir`.

    `counts` go to its summary as they are (trial states, trials W&B has not got yet).
    Files are hard links or copies (wandb's `symlink` setting is off), never symlinks.
    """
    wandb = wb.lib()
    study_dir = Path(study_dir)
    run = wb.init(
        id=P.analysis_run_id(wb.study_id), name=f"{wb.config.name}-analysis",
        job_type="analysis", tags=["analysis"],
        config=wb.scrub(P.study_config(wb.config, wb.provenance, wb.study_id)),
    )
    try:
        # the driver's packages, as wandb's x_save_requirements would list them, from the list the
        # study's provenance hash was made of (wandb would read every package's metadata again)
        tmp = Path(run.dir).parent / "tmp"
        tmp.mkdir(exist_ok=True)
        (tmp / "requirements.txt").write_text("".join(f"{line}\n" for line in freeze()))
        run.save(str(tmp / "requirements.txt"), base_path=str(tmp), policy="now")
        data: dict[str, Any] = {}
        results = _find(study_dir, "results.csv")
        table = wb.load(results, _read_csv)
        if table is not None:
            columns, rows = table
            data["results"] = wandb.Table(columns=columns, data=wb.scrub(rows), allow_mixed_types=True)
        for png in _plots(study_dir):
            data[f"plots/{png.stem}"] = wandb.Image(str(png), caption=png.stem)
        verdicts_path = _find(study_dir, "verdicts.json")
        verdicts = wb.load(verdicts_path, read_verdicts)
        if verdicts is not None:
            run.summary.update(wb.scrub(P.verdicts_summary(verdicts)))
            for key, (columns, rows) in P.level_tables(verdicts).items():
                data[key] = wandb.Table(columns=columns, data=wb.scrub(rows), allow_mixed_types=True)
            table = P.verdict_table(verdicts)
            if table is not None:
                data["verdict_table"] = wandb.Table(columns=table[0], data=wb.scrub(table[1]), allow_mixed_types=True)
        best = _find(study_dir, "best_config.yaml")
        best_config = wb.load(best, _read_yaml)
        if best_config is not None:
            run.summary["best_config"] = wb.scrub(best_config)
        tuning_dir = study_dir / "tuning"  # the tuning stage's report, when it ran
        tuning_results = next((p for p in (tuning_dir / "results.json", tuning_dir / "summary.json")  # or its
                               if p.is_file()), None)  # former name, in a study tuned by an earlier version
        tuning = wb.load(tuning_results, read_json)
        if tuning is not None:
            run.summary["tuning"] = wb.scrub(tuning)
        for png in sorted(tuning_dir.glob("*.png")):
            data[f"tuning/{png.stem}"] = wandb.Image(str(png), caption=f"tuning {png.stem}")
        states: dict[str, int] = {}
        for rec in study.records():
            key = f"trials/{rec.stage}/{rec.state.lower()}"
            states[key] = states.get(key, 0) + 1
        run.summary.update({**states, **counts})
        if data:
            run.log(data)
        html_report = _find(study_dir, "report.html")
        for path in (results, verdicts_path, best, _find(study_dir, "report.md"), html_report,
                     tuning_results, tuning_dir / "report.md"):
            if path is not None and path.is_file():
                run.save(str(path), base_path=str(study_dir), policy="now")
        if html_report is not None:  # the report a reviewer opens offline, as an HTML artifact
            artifact = wandb.Artifact(f"{P.analysis_run_id(wb.study_id)}-report", type="report",
                                      description="report.html: the study's whole report in one self-contained file")
            artifact.add_file(str(html_report), name="report.html")
            run.log_artifact(artifact)
    finally:
        wb.finish(run)


def _find(study_dir: Path, name: str) -> Path | None:
    path = study_dir / name
    return path if path.is_file() else None


def _plots(study_dir: Path) -> list[Path]:
    return sorted((study_dir / "plots").glob("*.png"))


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
