"""A simulated trainable with known level effects and a known numeric trend (alternatives, factors).

The baseline config holds the truth under ``truth``::

    score = base + sum_path choices[path][value at path]            # categorical effects
                 + sum_path slope[path] * x(path)                   # x: units from `at`, or log2(value / at)
                 + curve[path] * x(path) ** 2
                 + seed_noise * z(seed) + noise * z(replicate, seed, resolved config)

``choices`` maps a config path to {value: effect}; a value without an entry adds 0. A trend with
``when: {path: value}`` applies only where the config has those values (a range inside one branch). The noise has a
per-seed part shared by every variant (paired designs remove it) and a per-(seed, variant) part.
``records(config, replicate)`` gives the ledger records of the study's whole plan without Ray.
"""

from __future__ import annotations

import functools
import json
import math
import zlib
from collections.abc import Mapping

import numpy as np

from orchestrator.ledger import COMPLETED, TrialRecord
from orchestrator.paths import get_path
from orchestrator.plan import ablation_trials


def score(cfg: Mapping, seed: int) -> float:
    t = cfg["truth"]
    return _noisy(_clean(cfg), t, int(t.get("replicate", 0)), seed, _noise_key(cfg))


def _clean(cfg: Mapping) -> float:
    """The score without noise."""
    t = cfg["truth"]
    y = float(t.get("base", 10.0))
    for path, effects in (t.get("choices") or {}).items():
        y += float(effects.get(str(get_path(cfg, path)), 0.0))
    for path, trend in (t.get("trends") or {}).items():
        if any(str(get_path(cfg, p, None)) != str(want) for p, want in (trend.get("when") or {}).items()):
            continue  # a trend of one branch only (e.g. momentum under sgd)
        v, at = float(get_path(cfg, path)), float(trend["at"])
        x = math.log2(v / at) if trend.get("log") else v - at
        y += float(trend.get("slope", 0.0)) * x + float(trend.get("curve", 0.0)) * x * x
    return y


def _noise_key(cfg: Mapping) -> int:
    """The resolved config's own noise stream (the truth, replicate included, left out)."""
    return zlib.crc32(json.dumps({k: v for k, v in cfg.items() if k != "truth"}, sort_keys=True).encode())


def _noisy(y: float, t: Mapping, rep: int, seed: int, key: int) -> float:
    own = _normal(rep, seed, 1, key)
    return float(y + float(t.get("seed_noise", 1.0)) * _shared(rep, seed) + float(t.get("noise", 0.5)) * own)


@functools.lru_cache(maxsize=1 << 14)
def _shared(rep: int, seed: int) -> float:
    """The per-seed noise every variant of a replicate shares (drawn once, not once per variant)."""
    return _normal(rep, seed, 0)


def _normal(*key: int) -> float:
    """``np.random.default_rng(list(key)).standard_normal()``, built without default_rng's argument parsing."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(key)))).standard_normal()


def run(ctx) -> None:
    """Trainable: one report with the simulated score."""
    ctx.report({"score": score(ctx.config, int(ctx.seed))})


def records(config, replicate: int = 0) -> list[TrialRecord]:
    """Completed ledger records of every planned ablation trial, scored by the formula."""
    return [TrialRecord(**fields, state=COMPLETED, attempts=1, final={"score": _noisy(y, t, replicate, seed, key)})
            for fields, seed, y, t, key in _plan(config)]


_PLANS: dict[str, list] = {}


def _plan(config) -> list:
    """(record fields, seed, clean score, truth, noise key) per planned trial: the same for every replicate, so
    worked out once per config (the simulation tests analyse hundreds of replicates of one config)."""
    dump = config.model_dump_json()
    if dump not in _PLANS:
        _PLANS[dump] = []
        for spec in ablation_trials(config):
            cfg = config.resolved(spec.removed, spec.overrides)
            _PLANS[dump].append((spec.to_dict(), spec.seed, _clean(cfg), cfg["truth"], _noise_key(cfg)))
    return _PLANS[dump]


def study(design: dict, seeds: list[int], truth: dict, min_effect: float = 0.3) -> dict:
    """A study config (dict) over a norm component with alternatives, a categorical and two numeric factors."""
    return {
        "name": "sim-factors",
        "trainable": "tests.support.simulated_factors:run",
        "metrics": {"primary": {"name": "score", "mode": "max"}},
        "baseline": {"model": {"norm": "layer", "act": "relu", "width": 32, "depth": 2, "on": True},
                     "truth": truth},
        "components": {
            "norm": {"kind": "structural", "description": "normalisation layer",
                     "removal": {"model.norm": "none"},
                     "alternatives": {"batch": {"model.norm": "batch"}, "rms": {"model.norm": "rms"},
                                      "group": {"model.norm": "group"}}},
            "gate": {"kind": "structural", "description": "a gate", "removal": {"model.on": False}},
        },
        "factors": {
            "model.width": {"value_range": [8, 128], "value_type": "int", "log": True, "n_bins": 5},
            "model.depth": {"value_range": [1, 5], "value_type": "int", "n_bins": 5},
            "model.act": {"categorical_values": ["relu", "gelu", "tanh"]},
        },
        "design": design,
        "seeds": seeds,
        "analysis": {"alpha": 0.05, "min_effect": min_effect, "n_bootstrap": 200},
        "tuning": {"enabled": False},
    }


TRUTH = {  # norm: batch worse (baseline's choice essential), rms better (harmful), group equal (negligible)
    "choices": {"model.norm": {"none": -2.0, "batch": -1.0, "rms": 1.0, "group": 0.0},
                "model.on": {"False": -1.0},
                "model.act": {"gelu": 0.8, "tanh": -0.8}},
    "trends": {"model.width": {"at": 32, "log": True, "slope": 0.5},  # +0.5 per doubling
               "model.depth": {"at": 2, "slope": 0.0}},                 # a null numeric factor
    "seed_noise": 1.0, "noise": 0.3,
}


NESTED_TRUTH = {  # sgd beats adam by 1.0 at momentum 0; momentum +2.0 per unit under sgd only; lr: no effect
    "choices": {"train.optimizer.name": {"sgd": 1.0}},
    "trends": {"train.optimizer.arguments.momentum": {"at": 0.0, "slope": 2.0,
                                                      "when": {"train.optimizer.name": "sgd"}}},
    "seed_noise": 1.0, "noise": 0.3,
}


def nested_study(design: dict, seeds: list[int], truth: dict) -> dict:
    """A factor-only study over optimizer branches: sgd (lr and momentum ranges) or adam (an lr range)."""
    return {
        "name": "sim-nested",
        "trainable": "tests.support.simulated_factors:run",
        "metrics": {"primary": {"name": "score", "mode": "max"}},
        "baseline": {"train": {"optimizer": {"name": "adam", "arguments": {"lr": 0.001, "momentum": None}},
                               "epochs": 1},
                     "truth": truth},
        "factors": {"train.optimizer": {"subspaces": [
            {"sub_configuration": {"name": "sgd", "arguments": {
                "lr": {"value_range": ["1e-3", "1e-1"], "log": True},
                "momentum": {"value_range": [0.0, 0.9], "n_bins": 4}}}},
            {"sub_configuration": {"name": "adam", "arguments": {
                "lr": {"value_range": ["1e-4", "1e-2"], "log": True}, "momentum": None}}},
        ]}},
        "design": design,
        "seeds": seeds,
        "analysis": {"alpha": 0.05, "n_bootstrap": 200},
        "tuning": {"enabled": False},
    }
