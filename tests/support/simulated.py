"""A simulated trainable with known true effects, for tests, benchmarks and demos.

The metric is a formula, so every verdict has a right answer::

    score = base + sum_c effects[c] * parts[c]
                 - sum_{a+b} interaction[a+b] * (1 - parts[a]) * (1 - parts[b])
                 - sum_k (hp[k] - hp_opt[k]) ** 2
                 + seed_noise * z(seed) + noise * z(seed, removed components)
    loss  = loss_base + loss_slope * (full score - clean score)
                 + sum_c loss_effects[c] * (1 - parts[c]) + 0.1 * (the same kind of noise)

``score`` is maximised, ``loss`` (secondary) minimised. Removing component ``c`` sets
``parts.c: 0.0``, so the true removal effect of ``c`` (positive = it helps the score) is
``effects[c]``, and the true interaction contrast of a pair (delta_ab - delta_a - delta_b)
is ``interaction["a+b"]``. The noise has a per-seed part shared by every variant (like a
shared init and data order) and a per-(seed, variant) part, so pairing by seed removes the
shared part, as in real training. ``sim.noise_seed`` picks an independent replicate.

Example study config (as a Python dict; the YAML has the same shape)::

    {
      "name": "sim",
      "trainable": "tests.support.simulated:run",
      "metrics": {"primary": {"name": "score", "mode": "max"},
                  "secondary": [{"name": "loss", "mode": "min"}]},
      "baseline": {
        "sim": {"noise": 0.5, "seed_noise": 1.0, "epochs": 2, "base": 10.0},
        "parts": {"a": 1.0, "b": 1.0, "c": 1.0},
        "effects": {"a": 2.0, "b": 0.0, "c": 0.5},
        "interaction": {"a+b": 0.5},
        "hp": {"x": 0.3, "y": 2.0},
        "hp_opt": {"x": 0.7, "y": 1.0},
      },
      "components": {
        "a": {"kind": "structural", "description": "part a", "removal": {"parts.a": 0.0},
              "tune": {"hp.x": {"value_range": [0.0, 1.0], "value_type": "float"}}},
        "b": {"kind": "training", "description": "part b", "removal": {"parts.b": 0.0}},
        "c": {"kind": "inference", "description": "part c", "removal": {"parts.c": 0.0}},
      },
      "design": {"type": "one_at_a_time", "pairs": [["a", "b"]]},
      "seeds": [0, 1, 2],
    }

Fault injection for the execution tests (all optional, under ``sim``): ``fail_at_epoch``
raises at that epoch on an attempt that started without a checkpoint (>= 1: fails once,
then resumes from the checkpoint; 0: fails every attempt); ``fail_seeds`` always fails
those seeds; ``diverge`` reports NaN/inf; ``sleep`` seconds per epoch.

``simulate_records`` produces ledger records (``TrialRecord``) from the same formula without Ray.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from orchestrator.ledger import COMPLETED, FAILED, PENDING, AttemptError, TrialRecord

DEFAULTS = {"noise": 0.5, "seed_noise": 1.0, "epochs": 2, "base": 10.0, "loss_base": 1.0, "loss_slope": 0.1,
            "noise_seed": 0}


# ---------------------------------------------------------------- the formula


def removed_parts(cfg: Mapping) -> list[str]:
    """Components whose part is switched off (parts.c == 0)."""
    return sorted(c for c, v in (cfg.get("parts") or {}).items() if float(v) == 0.0)


def clean_metrics(cfg: Mapping) -> tuple[float, float]:
    """(score, loss) without noise."""
    sim = {**DEFAULTS, **(cfg.get("sim") or {})}
    parts = cfg.get("parts") or {}
    effects = cfg.get("effects") or {}
    full = float(sim["base"]) + sum(float(e) for e in effects.values())
    score = float(sim["base"]) + sum(float(e) * float(parts.get(c, 1.0)) for c, e in effects.items())
    for key, v in (cfg.get("interaction") or {}).items():
        a, b = key.split("+")
        score -= float(v) * (1 - float(parts.get(a, 1.0))) * (1 - float(parts.get(b, 1.0)))
    hp, opt = cfg.get("hp") or {}, cfg.get("hp_opt") or {}
    score -= sum((float(hp[k]) - float(opt[k])) ** 2 for k in hp if k in opt)
    loss = float(sim["loss_base"]) + float(sim["loss_slope"]) * (full - score)
    loss += sum(float(v) * (1 - float(parts.get(c, 1.0))) for c, v in (cfg.get("loss_effects") or {}).items())
    return score, loss


def _z(*key: int) -> np.ndarray:
    # default_rng(list) without its argument parsing: the same stream, about half the time
    seq = np.random.SeedSequence([int(k) % 2**32 for k in key])
    return np.random.Generator(np.random.PCG64(seq)).standard_normal(2)


def final_metrics(cfg: Mapping, seed: int) -> dict[str, float]:
    """The final {score, loss} of a trial of this config and seed (deterministic)."""
    sim = {**DEFAULTS, **(cfg.get("sim") or {})}
    if sim.get("diverge"):
        return {"score": float("nan"), "loss": float("inf")}
    score, loss = clean_metrics(cfg)
    rep = int(sim["noise_seed"])
    shared = _z(rep, seed, 0)
    own = _z(rep, seed, 1, zlib.crc32(",".join(removed_parts(cfg)).encode()))
    sn, vn = float(sim["seed_noise"]), float(sim["noise"])
    score += sn * shared[0] + vn * own[0]
    loss += 0.1 * (sn * shared[1] + vn * own[1])
    return {"score": float(score), "loss": float(loss)}


# ---------------------------------------------------------------- the trainable


def run(ctx) -> None:
    """Trainable: reports score and loss each epoch, checkpoints the epoch, honours restore()."""
    cfg = ctx.config
    seed = int(getattr(ctx, "seed", cfg.get("seed", 0)))
    sim = {**DEFAULTS, **(cfg.get("sim") or {})}
    epochs = int(sim["epochs"])
    state = ctx.restore()
    start = 0 if state is None else int(state["epoch"]) + 1
    final = final_metrics(cfg, seed)
    for epoch in range(start, epochs):
        if sim.get("sleep"):
            time.sleep(float(sim["sleep"]))
        if seed in (sim.get("fail_seeds") or []):
            raise RuntimeError(f"simulated failure: seed {seed} always fails")
        fail_at = sim.get("fail_at_epoch")
        if fail_at is not None and epoch == int(fail_at) and state is None:
            raise RuntimeError(f"simulated crash at epoch {epoch}")
        lag = epochs - 1 - epoch  # earlier epochs are a little worse; the last one is the final value
        ctx.report({"score": final["score"] - 0.5 * lag, "loss": final["loss"] + 0.1 * lag},
                   checkpoint={"epoch": epoch})


# ---------------------------------------------------------------- configs and records without Ray


def simulated_config(
    effects: Mapping[str, float],
    noise: float = 0.5,
    seeds: int | Iterable[int] = 5,
    *,
    design: str = "one_at_a_time",
    pairs: Iterable[Iterable[str]] = (),
    interaction: Mapping[str, float] | None = None,
    kinds: Mapping[str, str] | None = None,
    loss_effects: Mapping[str, float] | None = None,
    seed_noise: float | None = None,
    base: float = 10.0,
    epochs: int = 2,
    alpha: float = 0.05,
    min_effect: float = 0.0,
    n_bootstrap: int = 10000,
    reference_result: float | None = None,
    total_trials: int | None = None,
    design_seed: int = 0,
    adaptive: tuple[int, int] | None = None,
    sweep: Mapping[str, Any] | None = None,
    tiers: Mapping[str, Any] | None = None,
    name: str = "sim",
    secondary: bool = True,
    metric_groups: Mapping[str, list[str]] | None = None,
) -> dict:
    """A study config mapping (validate with orchestrator.config.parse_config, or dump to YAML)."""
    names = list(effects)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    pairs = [list(p) for p in pairs]
    inter = dict(interaction or {})
    for a, b in pairs:
        inter.setdefault(f"{a}+{b}", 0.0)
    cfg: dict[str, Any] = {
        "name": name,
        "trainable": "tests.support.simulated:run",
        "metrics": {"primary": {"name": "score", "mode": "max"},
                    "secondary": [{"name": "loss", "mode": "min"}] if secondary else []},
        "baseline": {
            "sim": {"noise": float(noise), "seed_noise": float(noise if seed_noise is None else seed_noise),
                    "epochs": int(epochs), "base": float(base), "noise_seed": 0},
            "parts": {c: 1.0 for c in names},
            "effects": {c: float(e) for c, e in effects.items()},
            "interaction": inter,
            "loss_effects": {c: float((loss_effects or {}).get(c, 0.0)) for c in names},
        },
        "components": {
            c: {"kind": (kinds or {}).get(c, "structural"), "description": f"simulated part {c}",
                "removal": {f"parts.{c}": 0.0}}
            for c in names
        },
        "design": {"type": design, "pairs": pairs, "seed": design_seed},
        "seeds": {"initial": adaptive[0], "max": adaptive[1]} if adaptive else seed_list,
        "analysis": {"alpha": alpha, "min_effect": min_effect, "n_bootstrap": n_bootstrap},
        "tuning": {"enabled": False},
    }
    if reference_result is not None:
        cfg["analysis"]["reference_result"] = reference_result
    if design == "random":
        cfg["design"]["total_trials"] = total_trials or 8 * len(seed_list)
    if sweep:
        cfg["sweep"] = dict(sweep)
    if tiers:
        cfg["tiers"] = dict(tiers)
    if metric_groups:
        cfg["metrics"]["groups"] = {k: list(v) for k, v in metric_groups.items()}
    return cfg


def records_for(
    config,
    seeds: Iterable[int] | None = None,
    *,
    replicate: int = 0,
    failed: Iterable = (),
    pending: Iterable = (),
    nonfinite: Iterable = (),
    missing: Iterable = (),
    tier: str | None = None,
    duration_s: float = 60.0,
) -> list[TrialRecord]:
    """The ablation records of a StudyConfig whose trainable is this module.

    ``failed``, ``pending``, ``nonfinite`` and ``missing`` hold trial ids or
    ``(variant, seed)`` pairs; missing trials get no record at all. ``replicate`` sets
    ``sim.noise_seed`` (an independent copy of the study).
    """
    from orchestrator import plan as planning

    def match(spec, coll):
        return spec.trial_id in coll or (spec.variant, spec.seed) in coll

    failed, pending, nonfinite, missing = (set(map(_hashable, x)) for x in (failed, pending, nonfinite, missing))
    tiers = [t.name for t in config.tiers.order] if (config.tiers is not None and tier is None) else [tier]
    out = []
    t0 = 1_700_000_000.0
    for tr in tiers:
        for spec in planning.ablation_trials(config, seeds=None if seeds is None else list(seeds), tier=tr):
            if match(spec, missing):
                continue
            rec = trial_record(config, spec, replicate, duration_s)
            if match(spec, failed):
                rec = rec.model_copy(update=dict(state=FAILED, attempts=3, final=None, errors=[
                    AttemptError(attempt=a, error="RuntimeError: simulated crash", traceback="", time=t0)
                    for a in (1, 2, 3)]))
            elif match(spec, pending):
                rec = rec.model_copy(update=dict(state=PENDING, attempts=0, final=None, duration_s=0.0, ended_at=None))
            elif match(spec, nonfinite):
                rec.final = {"score": float("nan"), "loss": float("inf")}
            out.append(rec)
    return out


def simulate_records(
    effects: Mapping[str, float],
    noise: float = 0.5,
    seeds: int | Iterable[int] = 5,
    *,
    replicate: int = 0,
    failed: Iterable = (),
    pending: Iterable = (),
    nonfinite: Iterable = (),
    missing: Iterable = (),
    **config_kw,
) -> list[TrialRecord]:
    """The ledger records of a simulated study (no Ray): effects are the true removal effects.

    ``config_kw`` go to ``simulated_config`` (design, pairs, interaction, kinds, loss_effects,
    seed_noise, alpha, min_effect, ...). Use ``simulated_config`` with the same arguments to
    get the matching config for the analysis.
    """
    from orchestrator.config import parse_config

    config = parse_config(simulated_config(effects, noise, seeds, **config_kw))
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    return records_for(config, seed_list, replicate=replicate, failed=failed, pending=pending,
                       nonfinite=nonfinite, missing=missing)


def trial_record(config, spec, replicate: int = 0, duration_s: float = 60.0) -> TrialRecord:
    """The COMPLETED ledger record a trial of this spec would leave (metrics from the formula)."""
    extra = dict(spec.overrides)
    extra["sim.noise_seed"] = replicate
    cfg = config.resolved(spec.removed, extra)
    dur = duration_s * (0.1 if spec.inference_only else 1.0)
    t0 = 1_700_000_000.0
    return TrialRecord(**spec.to_dict(), state=COMPLETED, attempts=1, final=final_metrics(cfg, spec.seed),
                       started_at=t0, ended_at=t0 + dur, duration_s=dur,
                       saved_s=duration_s - dur if spec.inference_only else 0.0,
                       data_fingerprints={"train": {"hash": "trainhash", "n": 100},
                                          "test": {"hash": "testhash", "n": 20}})


def _hashable(x):
    return tuple(x) if isinstance(x, list) else x


def run_adaptive(config, *, replicate: int = 0, tier: str | None = None) -> list[TrialRecord]:
    """The study session's own adaptive-seeds loop (``orchestrator.session.adaptive_seeds``), trials
    from the formula.

    Starts with the initial seeds for every variant; the session's loop then decides which
    seeds and variants to add until every component is decided or ``max`` is reached. Only
    execution is replaced: each trial's record comes from ``final_metrics`` instead of Ray.
    Returns the records it ends with.
    """
    from rich.console import Console

    from orchestrator import session

    ledger = _Ledger(records_for(config, config.seed_list, replicate=replicate, tier=tier))

    def execute(specs, label=""):
        ledger.rows += [trial_record(config, spec, replicate) for spec in specs]

    session.adaptive_seeds(ledger, config, Console(quiet=True), tier, execute)
    return ledger.rows


class _Ledger:
    """The part of a study the adaptive loop reads: its records."""

    def __init__(self, rows: list[TrialRecord]):
        self.rows = rows

    def records(self) -> list[TrialRecord]:
        return list(self.rows)
