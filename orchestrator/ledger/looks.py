"""The log of sequential looks (``looks.jsonl`` in the study directory): one line per look of adaptive seeds.

A look is the analysis after a seed was added to every undecided variant: the tier, the baseline's
seeds ``n``, the design (``initial``, ``first_look``, ``max``, ``final_weight``, ``alpha``) and, per group and row,
the row's seeds, its state and the boundary and alpha spent at its look (analysis/sequential.py).
Lines are appended whole (O_APPEND, fsynced), like the study index. A look is logged once: a driver
killed between two looks and resumed recomputes the same look from the same trials and appends
nothing, so a resumed study continues the same design and spends no alpha twice (the alpha spent is
a function of each row's seeds, never of how often the analysis ran).
"""

from __future__ import annotations

import json
from pathlib import Path

from .files import append_line, complete_lines, parse_lines

LOOKS = "looks.jsonl"


def read_looks(study_path: str | Path) -> list[dict]:
    """The logged looks, oldest first (a torn last line, from a crash mid-write, is left out)."""
    path = Path(study_path) / LOOKS
    data, _ = complete_lines(path)
    rows, _ = parse_lines(data, path)
    return rows


def log_look(study_path: str | Path, look: dict) -> bool:
    """Append this look unless the same look (tier, n) is logged already; True when appended."""
    key = (look.get("tier"), look.get("n"))
    if any((old.get("tier"), old.get("n")) == key for old in read_looks(study_path)):
        return False
    append_line(Path(study_path) / LOOKS, json.dumps(look, sort_keys=True, allow_nan=False))
    return True
