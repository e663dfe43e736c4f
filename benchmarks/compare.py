"""Benchmark of `ablator compare` on simulated study pairs with known truth (no Ray).

    python benchmarks/compare.py            # 5,000 pairs per setting (about 10 minutes on 2 busy cores)
    python benchmarks/compare.py --quick    # 500 pairs per setting

Each study is simulated by tests/support/simulated.py (the formula trainable: a per-seed noise shared by every
variant, cancelled by the pairing, and a per-trial noise), analysed by the real analysis
(``analyse`` -> ``verdicts_payload``) and two studies are compared by the real ``compare_rows``. Four components
with true removal effects a 2.0, b 0.0, c 0.5, d 1.0 against min_effect 0.5; the per-trial noise is
min_effect / sqrt(2), so the **per-study paired SD of a row's differences equals min_effect** (0.5) and a fixed
study has 10 seeds. Two studies of a pair differ in their noise (``sim.noise_seed``), never in their seeds.

* **A/A**: both studies have the same true effects. The false ``changed`` rate is the share of pairs in which
  any row is called ``changed`` (what fails the gate); target <= alpha (0.05), with its one-sided 95%
  Clopper-Pearson upper bound.
* **power**: the new study's c is shifted by 2 x min_effect (0.5 -> 1.5). Power is the share of pairs in
  which row c is ``changed`` (target >= 0.8); beside it the share also ``beyond min_effect`` and the false
  ``changed`` rate of the other rows.

Settings: fixed 10 seeds compared unpaired (Welch) and paired by seed; adaptive seeds 3..10 (the study
session's own loop, ``tests.support.simulated.run_adaptive``) compared unpaired. Adaptive studies cost ~0.25 s
each, so that setting simulates N/5 studies of each kind and forms its N pairs from them (each study in
about 10 pairs): its bounds treat the pairs as independent, which they are not quite; the rate over the N/10
disjoint pairs is printed beside it. For reference, the same pairs compared as if they had fixed seeds
(the stopping ignored: every look weight 1), which is what the look weights guard against.

Prints a table; no assertions.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from scipy import stats as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.analysis import analyse, verdicts_payload
from orchestrator.compare.rows import compare_rows
from orchestrator.config import parse_config
from tests.support.simulated import records_for, run_adaptive, simulated_config

EFFECTS = {"a": 2.0, "b": 0.0, "c": 0.5, "d": 1.0}
MIN_EFFECT, ALPHA, SEEDS, ADAPTIVE = 0.5, 0.05, 10, (3, 10)
NOISE = MIN_EFFECT / math.sqrt(2)  # per trial: the paired differences' SD is min_effect
SHIFTED = "c"


def config(shift: float, adaptive: bool):
    effects = {**EFFECTS, SHIFTED: EFFECTS[SHIFTED] + shift}
    return parse_config(simulated_config(effects, NOISE, SEEDS, min_effect=MIN_EFFECT, alpha=ALPHA,
                                         n_bootstrap=100, secondary=False, adaptive=ADAPTIVE if adaptive else None))


def study(cfg, replicate: int, adaptive: bool):
    records = run_adaptive(cfg, replicate=replicate) if adaptive else records_for(cfg, cfg.seed_list,
                                                                                   replicate=replicate)
    return verdicts_payload(analyse(records, cfg, contamination=False, n_bootstrap=0))


def upper(k: int, n: int) -> float:
    """One-sided 95% Clopper-Pearson upper bound of a rate k / n."""
    return 1.0 if k == n else float(st.beta.ppf(0.95, k + 1, n - k))


def measure(pairs_aa, pairs_shift, pair: bool) -> dict:
    def rows(a, b):
        got, _, _ = compare_rows(a, b, alpha=ALPHA, min_effect=MIN_EFFECT, pair=pair)
        return {r.name: r for r in got}

    aa = [rows(a, b) for a, b in pairs_aa]
    sh = [rows(a, b) for a, b in pairs_shift]
    false_any = sum(any(r.call == "changed" for r in x.values()) for x in aa)
    found = sum(x[SHIFTED].call == "changed" for x in sh)
    beyond = sum(x[SHIFTED].beyond_min_effect for x in sh)
    others = sum(any(r.call == "changed" for n, r in x.items() if n != SHIFTED) for x in sh)
    same = sum(r.call == "same" for x in aa for r in x.values()) / (len(aa) * len(EFFECTS))
    return {"n": len(aa), "false": false_any, "power": found / len(sh), "beyond": beyond / len(sh),
            "others": others / len(sh), "same": same}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="500 pairs per setting")
    args = ap.parse_args()
    n = 500 if args.quick else 5000
    print(f"per-study paired SD of a row's differences = {MIN_EFFECT} = min_effect; fixed studies {SEEDS} seeds, "
          f"adaptive {ADAPTIVE[0]}..{ADAPTIVE[1]}; alpha {ALPHA}; {len(EFFECTS)} rows; shift of row "
          f"{SHIFTED} = {2 * MIN_EFFECT} (2 x min_effect); {n} pairs per setting")
    header = (f"{'setting':<28} {'pairs':>6} {'A/A changed':>12} {'upper 95%':>10} {'power':>7} "
              f"{'beyond':>7} {'others':>7} {'A/A same':>9} {'s':>6}")
    print(header)
    t0 = time.perf_counter()
    base, shifted = config(0.0, False), config(2 * MIN_EFFECT, False)
    olds = [study(base, r, False) for r in range(2 * n)]
    news = [study(shifted, 10**6 + r, False) for r in range(n)]
    aa = [(olds[2 * i], olds[2 * i + 1]) for i in range(n)]
    sh = [(olds[2 * i], news[i]) for i in range(n)]
    build = time.perf_counter() - t0
    for name, pair in (("fixed 10 seeds, unpaired", False), ("fixed 10 seeds, paired", True)):
        t = time.perf_counter()
        m = measure(aa, sh, pair)
        report(name, m, build / 2 + time.perf_counter() - t)

    t = time.perf_counter()
    k = max(n // 5, 2)
    base, shifted = config(0.0, True), config(2 * MIN_EFFECT, True)
    olds = [study(base, r, True) for r in range(k)]
    news = [study(shifted, 10**6 + r, True) for r in range(k)]
    aa = [(olds[i], olds[(i + j) % k]) for j in range(1, 6) for i in range(k)][:n]
    sh = [(olds[i], news[(i + j) % k]) for j in range(5) for i in range(k)][:n]
    m = measure(aa, sh, False)
    report(f"adaptive {ADAPTIVE[0]}..{ADAPTIVE[1]}, unpaired", m, time.perf_counter() - t)
    plain = {id(v): v.model_copy(update={"adaptive": None}) for v in olds + news}
    m = measure([(plain[id(a)], plain[id(b)]) for a, b in aa], [(plain[id(a)], plain[id(b)]) for a, b in sh], False)
    report("adaptive, stopping ignored", m, 0)
    disjoint = [(olds[2 * i], olds[2 * i + 1]) for i in range(k // 2)]
    d = measure(disjoint, disjoint, False)
    print(f"  adaptive, {d['n']} disjoint A/A pairs only: changed {d['false'] / d['n']:.4f} "
          f"(upper 95% {upper(d['false'], d['n']):.4f})")


def report(name: str, m: dict, seconds: float) -> None:
    rate = m["false"] / m["n"]
    print(f"{name:<28} {m['n']:>6} {rate:>12.4f} {upper(m['false'], m['n']):>10.4f} {m['power']:>7.3f} "
          f"{m['beyond']:>7.3f} {m['others']:>7.4f} {m['same']:>9.3f} {seconds:>6.0f}")


if __name__ == "__main__":
    main()
