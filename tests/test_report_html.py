"""report.html: one self-contained file beside report.md, no network reference, rendered in headless Chromium;
alternatives at parity with components (secondary metrics, simultaneous intervals, their plot)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import yaml

from orchestrator.ledger import Study
from tests.conftest import BIN, short_tmp
from tests.support.simulated_factors import TRUTH, records, study

NETWORK = [
    re.compile(r"https?:", re.I),
    re.compile(r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?://|[a-z][a-z0-9+.-]*:(?!image/))""", re.I),
    re.compile(r"""url\(\s*["']?\s*(?!data:image/)[^)\s"']""", re.I),
    re.compile(r"@import", re.I),
]


def network_references(text: str) -> list[str]:
    """Every place in an HTML text that would make a browser reach the network (data: images are local)."""
    return [m.group(0) for rx in NETWORK for m in rx.finditer(text)]


@pytest.fixture(scope="module")
def levels_study(tmp_path_factory):
    """A one_at_a_time study with alternatives and factors (simulated ledger, no Ray), a secondary metric
    mirroring the primary, and the files the tuning stage leaves; `ablator report` run on it."""
    cfgd = study({"type": "one_at_a_time"}, list(range(10)), {**TRUTH, "noise": 0.3}, min_effect=0.5)
    cfgd["metrics"]["secondary"] = [{"name": "loss", "mode": "min"}]
    from orchestrator.config import parse_config

    recs = records(parse_config(cfgd))
    for r in recs:
        r.final["loss"] = 10.0 - r.final["score"]
    root = tmp_path_factory.mktemp("html")
    s = Study.create(root / "study", yaml.safe_dump(cfgd, sort_keys=False), cfgd["name"])
    for r in recs:
        s.trial(r.trial_id).write(r)
    (s.path / "tuning").mkdir()
    from PIL import Image

    Image.new("RGB", (24, 12), (20, 120, 20)).save(s.path / "tuning" / "history.png")
    (s.path / "tuning" / "report.md").write_text("# Tuning\n\n| trial | score |\n|---|---|\n| 3 | 1.5 |\n\n"
                                                 "![history](history.png)\n")
    (s.path / "best_config.yaml").write_text("name: sim-factors-tuned\n")
    done = subprocess.run([str(BIN / "ablator"), "report", str(s.path)], cwd=root, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return s


@pytest.mark.slow
def test_report_html_is_self_contained_with_every_section(levels_study):
    s = levels_study
    page = (s.path / "report.html").read_text()
    assert network_references(page) == []
    assert network_references('<img src="//cdn.x/a.png"> <link href="https://x"> @import "a.css"') != []
    for section in ("Verdicts", "Power:", "Flags", "What the study cost", "Alternatives", "Factors (ranked",
                    "Tuning stage: details", "best_config.yaml", "deciding test: p (Holm)", "simultaneous t intervals"):
        assert section in page, section
    imgs = re.findall(r"<img ([^>]*)>", page)
    assert imgs and all('src="data:image/png;base64,' in i for i in imgs), [i[:80] for i in imgs]
    assert any('alt="alternatives"' in i for i in imgs) and any('alt="history"' in i for i in imgs)
    assert "<script>" in page and "@media print" in page and 'class="v-essential"' in page
    assert (s.path / "plots" / "alternatives.png").is_file()

    # alternatives at parity: simultaneous interval, deciding test, secondary metric (loss mirrors score)
    v = json.loads((s.path / "verdicts.json").read_text())
    alts = v["components"]["norm"]["alternatives"]
    for a, r in alts.items():
        assert r["deciding"] is not None and r["ci_sim"][0] <= r["ci"][0] and r["ci_sim"][1] >= r["ci"][1], a
        assert r["secondary"]["loss"]["effect"] == pytest.approx(r["effect"]), a
        assert r["ci_bootstrap"][0] is not None  # BCa from 10 seeds, as for components
    assert alts["batch"]["verdict"] == "essential" and alts["rms"]["verdict"] == "harmful"
    assert not [f for f in v["flags"] if f["kind"] == "secondary"]  # loss agrees with score


@pytest.mark.slow
def test_report_html_renders_in_headless_chromium(levels_study, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed here (CI installs it: .ci/run)")
    import matplotlib.image

    page = levels_study.path / "report.html"
    shot = tmp_path / "shot.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={short_tmp('cr_')}"]
    url = page.resolve().as_uri()
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    table = re.search(r"<table>\s*<thead>\s*<tr>\s*(.*?)</tr>", dom.stdout, re.S)
    assert table and "deciding test: p (Holm)" in table.group(1)
    assert 'title="click to sort"' in dom.stdout  # the sorting script ran offline
    done = subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1280,1600", url],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[0] >= 1000 and np.isfinite(pixels).all()
    assert float(pixels[..., :3].std()) > 0.05  # text, tables and plots, not a blank page
    pdf = tmp_path / "report.pdf"  # it prints: the print style gives pages with the tables and plots
    done = subprocess.run([chromium, *flags, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", url],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and pdf.read_bytes()[:5] == b"%PDF-", done.stderr[-2000:]
    assert len(re.findall(rb"/Type\s*/Page\b", pdf.read_bytes())) >= 2


def test_adaptive_seeds_reach_alternatives_and_level_variants():
    """The session's adaptive loop (only execution replaced by simulated_factors' formula) adds seeds to the
    undecided alternative (norm=group: truly equal, needs seeds for TOST) and to a null factor's level
    variants, stops
    adding them to decided ones, and the alternatives' verdicts are adjusted for the peeking."""
    from rich.console import Console

    from orchestrator import session
    from orchestrator.analysis import analyse
    from orchestrator.config import parse_config
    from orchestrator.ledger import COMPLETED, TrialRecord
    from orchestrator.plan import ablation_trials
    from tests.support.simulated import _Ledger
    from tests.support.simulated_factors import score

    cfgd = study({"type": "one_at_a_time"}, [0, 1, 2], {**TRUTH, "noise": 0.3}, min_effect=0.5)
    # thorough: lean's futility (0.35) judges norm=group's equivalence hopeless from its first 3 seeds
    cfgd["seeds"] = {"initial": 3, "max": 12, "design": "thorough"}
    config = parse_config(cfgd)

    def trial(spec):
        cfg = config.resolved(spec.removed, spec.overrides)
        return TrialRecord(**spec.to_dict(), state=COMPLETED, attempts=1, final={"score": score(cfg, spec.seed)})

    ledger = _Ledger([trial(s) for s in ablation_trials(config)])
    session.adaptive_seeds(ledger, config, Console(quiet=True), None,
                           lambda specs, label="": ledger.rows.extend(trial(s) for s in specs))
    seeds = {}
    for r in ledger.rows:
        seeds.setdefault(r.variant, set()).add(r.seed)
    assert len(seeds["baseline"]) > 3  # seeds were added
    assert len(seeds["norm=group"]) > 3  # the undecided alternative got seeds (until decided or futile)
    assert len(seeds["depth=3"]) > 3  # a null factor's level variants get seeds too (until shown negligible)
    assert len(seeds["width=64"]) < len(seeds["baseline"])  # width (+0.5 per doubling) was decided early
    assert len(seeds["no-norm"]) < len(seeds["baseline"])  # removing norm (-2.0) was decided early
    g = analyse(ledger.rows, config, contamination=False).groups["default"]
    group = g.alternatives["norm"]["group"]
    depth = g.factors["model.depth"]
    assert depth.negligible and depth.p_negligible_holm < 0.05  # its equivalence test stopped its seeds
    from orchestrator.analysis.factor_report import factor_rows
    assert any(row[1] == "model.depth" and row[-1].startswith("negligible") for row in factor_rows(g, config))
    assert 1 - group.ci_sim_level < 0.05 / 3  # the simultaneous interval is adjusted for the looks as well
    assert g.alternatives["norm"]["rms"].verdict == "harmful"
