"""Terminal output fits 80 columns and logs that are not a TTY, without breaking a word or a
number; a wide terminal still gets the boxed tables."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from orchestrator import plan as planning
from orchestrator.config import parse_config
from orchestrator.terminal import FitTable, wrap
from tests.conftest import BIN, on_cluster, short_tmp

VERDICT_HEADER = ["component", "kind", "baseline", "ablated (mean ± std)", "delta [t CI]", "p (Holm)", "MDE",
                  "verdict"]
VERDICT_ROWS = [
    ["hidden_layers", "structural", "0.8233 ± 0.01234 (n=3)", "0.4933 ± 0.0234 (n=3)",
     "+0.3301 [0.2912, 0.369] BCa [0.2901, 0.3702]", "0.0012 (raw 0.0004)", "0.0612", "essential"],
    ["input_normalisation", "preprocessing", "0.8233 ± 0.01234 (n=3)", "0.77 ± 0.0234 (n=3)",
     "+0.06 [-0.01, 0.13]", "0.21 (raw 0.07)", "0.0612", "inconclusive (~12 seeds would decide)"],
]


def render(table: FitTable, width: int) -> str:
    console = Console(width=width, force_terminal=False, color_system=None)
    with console.capture() as cap:
        console.print(table)
    return cap.get()


def tokens(text: str) -> set[str]:
    """Every whitespace-separated word of a console output, table borders removed."""
    return set(re.sub(r"[│┃┏┓┗┛┡┩└┘━─┳┻╇┼┬┴╋┃]", " ", text).split())


def whole(words: list[str], text: str) -> list[str]:
    """The words of `words` that do not appear whole in `text` (empty: all whole)."""
    seen = tokens(text)
    return [w for w in words if w not in seen]


def test_wrap_breaks_only_at_spaces_and_after_plus():
    assert wrap("no-drop+norm=rms+width=64", 12) == ["no-drop+", "norm=rms+", "width=64"]
    assert wrap("+0.3301 [0.2912, 0.369]", 9) == ["+0.3301", "[0.2912,", "0.369]"]
    assert wrap("+0.3301 1e+05", 3) == ["+0.3301", "1e+05"]  # a number is never broken, even at its `+`
    assert wrap("a_very_long_word stays", 5) == ["a_very_long_word", "stays"]  # whole, on its own line
    assert wrap("", 10) == [""]


@pytest.mark.parametrize("width", [60, 80, 100, 120])
def test_verdict_table_fits_the_width_and_keeps_every_word_whole(width):
    out = render(FitTable("Verdicts", VERDICT_HEADER, VERDICT_ROWS), width)
    assert max(len(line) for line in out.splitlines()) <= width, out
    words = [w for row in VERDICT_ROWS for cell in row for w in cell.split()]
    assert whole(words, out) == [], out
    assert "…" not in out


def test_a_wide_terminal_gets_one_boxed_line_per_row():
    out = render(FitTable("Verdicts", VERDICT_HEADER, VERDICT_ROWS), 220)
    assert "┃ component" in out and "┃ delta [t CI]" in out  # the header whole, not read as markup
    for row in VERDICT_ROWS:
        assert any(row[0] in line and row[-1] in line for line in out.splitlines()), out


def test_status_counts_table_keeps_its_headers_at_80_columns():
    header = ["stage", "total", "COMPLETED", "RUNNING", "PENDING", "FAILED", "restarts", "trial-hours"]
    out = render(FitTable("Trials", header, [["ablation", "24", "23", "0", "0", "1", "2", "0.012"]],
                          justify=["left"] + ["right"] * 7), 80)
    assert max(len(line) for line in out.splitlines()) <= 80
    assert whole(header + ["ablation", "23", "0.012"], out) == [] and "…" not in out


# ---------------------------------------------------------------- the commands, as a user runs them

TRAINABLE = '''
import zlib

EFFECTS = {"hidden_layers": 3.0, "input_normalisation": 0.0, "cosine_schedule": -1.0}


def run(ctx):
    cfg = ctx.config
    noise = lambda *k: (zlib.crc32(repr(k).encode()) % 1000) / 1000 - 0.5
    score = 10.0 + sum(EFFECTS[c] * cfg["parts"][c] for c in EFFECTS) + 0.05 * noise(ctx.seed, str(cfg["parts"]))
    for epoch in range(2):
        ctx.report({"score": score + epoch * 0.0})
'''


def study_config(design: dict) -> dict:
    parts = ("hidden_layers", "input_normalisation", "cosine_schedule")
    return {
        "name": "terminal",
        "trainable": "mytrain:run",
        "metrics": {"primary": {"name": "score", "mode": "max"}},
        "baseline": {"parts": dict.fromkeys(parts, 1.0), "model": {"activation": "tanh", "width": 32}},
        "components": {c: {"kind": "structural", "description": c, "removal": {f"parts.{c}": 0.0}}
                       for c in parts},
        "design": design,
        "seeds": [0, 1, 2],
        "analysis": {"alpha": 0.05, "min_effect": 0.5, "n_bootstrap": 200},
        "tracking": {"wandb": {"mode": "disabled"}},
        "tuning": {"enabled": False},
        "storage": {"root": "studies"},
    }


def run_ablator(project, *args, columns: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": str(columns), "RAY_AUTH_MODE": "disabled"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(BIN / "ablator"), *args], cwd=project, env=env, capture_output=True, text=True,
                          timeout=600)  # stdout is a pipe: not a TTY, as in a Slurm log
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def md_rows(report: str, heading: str) -> list[list[str]]:
    """The rows of the first markdown table after `heading` in report.md."""
    lines = report[report.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


@pytest.mark.slow
def test_launch_status_report_and_dry_run_fit_80_columns_in_a_log(ray_address):
    # a short dir: a path is never broken, so a path longer than a line would make its own long line
    project = Path(short_tmp("term_"))
    (project / "mytrain.py").write_text(TRAINABLE)
    (project / "study.yaml").write_text(yaml.safe_dump(study_config({"type": "one_at_a_time"}), sort_keys=False))

    launched = run_ablator(project, "launch", "study.yaml", *on_cluster(ray_address), columns=80).stdout
    study = project / "studies" / "terminal"
    status = run_ablator(project, "status", str(study), columns=80).stdout
    wide = run_ablator(project, "report", str(study), columns=220).stdout
    for out in (launched, status):
        assert max(len(line) for line in out.splitlines()) <= 80, out
        assert "…" not in out

    # every verdict, component and effect of report.md's verdict table appears whole
    rows = md_rows((study / "report.md").read_text(), "Verdicts")
    assert {r[0] for r in rows} == {"hidden_layers", "input_normalisation", "cosine_schedule"}
    words = [w for r in rows for w in (r[0], r[-1].split()[0], r[4].split()[0])]
    assert any(r[-1].startswith("essential") for r in rows) and any(r[-1].startswith("harmful") for r in rows)
    assert whole(words, launched) == [], launched
    assert whole(["stage", "COMPLETED", "RUNNING", "PENDING", "FAILED", "restarts", "trial-hours"], status) == []
    # a wide terminal: one boxed line per component with its verdict
    for r in rows:
        assert any(r[0] in line and r[-1].split()[0] in line and "│" in line for line in wide.splitlines()), wide

    # the plan of a random design: variant names wrap at `+`, each level whole
    random = study_config({"type": "random", "total_trials": 24, "seed": 3})
    random["components"]["hidden_layers"]["alternatives"] = {"gelu_activation": {"model.activation": "gelu"}}
    random["factors"] = {"model.width": {"value_range": [8, 64], "value_type": "int", "log": True, "n_bins": 3}}
    (project / "random.yaml").write_text(yaml.safe_dump(random, sort_keys=False))
    plan = run_ablator(project, "launch", "random.yaml", "--dry-run", columns=80).stdout
    assert max(len(line) for line in plan.splitlines()) <= 80, plan
    shutil.rmtree(project, ignore_errors=True)
    seen = tokens(plan)
    names = [v.name for v in planning.variants(parse_config({**random, "trainable": "json:dumps"}))]
    assert any(len(name) > 40 for name in names)  # names long enough to need wrapping at 80 columns
    for name in names:
        assert name in seen or set(re.split(r"(?<=\+)", name)) <= seen, (name, plan)
