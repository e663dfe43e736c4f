"""`ablator convert`: an ABLATOR ``ParallelConfig``/``RunConfig`` YAML as a study config.

ABLATOR's config sections (``train_config``, ``model_config`` and any section of the user's
own) become the ``baseline``, its ``search_space`` the ``factors`` (the same SearchSpace
language, taken as written), ``optim_metrics`` the ``metrics`` (the first, or
``optim_metric_name``, is primary) and its run settings their counterparts. Each ABLATOR field
without one is listed in a comment at the top of the output, with why.
"""

from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path
from typing import Any

import yaml

from .config import NAME_RE, load_yaml, parse_config
from .errors import ConfigError
from .space_sampling import drop_nulls

PLACEHOLDER = "your_module:your_trainable"
DEFAULT_GPU_MB = 24576  # the GPU memory gpu_mb_per_experiment is a share of, unless --gpu-memory-mb says

#: ABLATOR's search_algo -> design.type (tpe: the ablation samples at random, the TPE stage then tunes)
DESIGNS = {"random": "random", "grid": "full_factorial", "tpe": "random"}

#: ABLATOR fields without a counterpart here, and why
NO_COUNTERPART = {
    "experiment_id": "study ids are made by `ablator launch`",
    "keep_n_checkpoints": "a trial keeps its last checkpoint, for restarts",
    "tensorboard": "every trial is a W&B run (tracking.wandb)",
    "amp": "mixed precision is the trainable's own choice (put it in baseline if your code reads it)",
    "device": "devices come from resources.gpus_per_trial; the trainable picks cuda when it has one",
    "verbose": "the console shows the study's progress; a trial's output goes to its log",
    "eval_subsample": "evaluation is the trainable's own loop",
    "metrics_n_batches": "evaluation is the trainable's own loop",
    "metrics_mb_limit": "evaluation is the trainable's own loop",
    "early_stopping_iter": "the trainable stops its own loop (the tuning stage has tuning.pruner)",
    "eval_epoch": "the trainable reports when it evaluates (ctx.report)",
    "log_epoch": "the trainable reports when it evaluates (ctx.report)",
    "init_chkpt": "the trainable loads its own initial weights",
    "warm_up_epochs": "the trainable's own schedule",
    "divergence_factor": "a trial whose metric is not finite is reported as such",
    "ignore_invalid_params": "a config that does not validate is refused before any trial runs",
    "remote_config": "put storage.root on a shared filesystem instead",
}
#: study config fields -> the ABLATOR field they come from (problems name its line)
COUNTERPARTS = {("design", "type"): "search_algo", ("design", "total_trials"): "total_trials",
                ("design", "seed"): "random_seed", ("seeds",): "random_seed",
                ("resources", "cpus_per_trial"): "cpus_per_experiment",
                ("resources", "gpus_per_trial"): "gpu_mb_per_experiment",
                ("resources", "max_concurrent"): "concurrent_trials", ("name",): "experiment_dir"}
RUN_FIELDS = {"experiment_dir", "random_seed", "total_trials", "concurrent_trials", "search_space", "optim_metrics",
              "optim_metric_name", "gpu_mb_per_experiment", "cpus_per_experiment", "search_algo",
              *NO_COUNTERPART}


def convert(path: str | Path, trainable: str | None = None, gpu_memory_mb: float = DEFAULT_GPU_MB) -> str:
    """The study config (YAML text with a comment header) of an ABLATOR config file. Raises ConfigError."""
    data, lines = load_yaml(path)
    problems: list[tuple[str, int | None, str]] = []

    def bad(key: str, msg: str) -> None:
        problems.append((key, lines.get((key,)), msg))

    notes = [f"Converted from ABLATOR config {Path(path).name} by `ablator convert`."]
    metrics = data.get("optim_metrics")
    if not isinstance(metrics, dict) or not metrics:
        bad("optim_metrics", "needed: the study's primary metric comes from it (e.g. {val_loss: min})")
    elif any(str(m) not in ("min", "max") for m in metrics.values()):
        bad("optim_metrics", "each metric's direction must be min or max")
    algo = str(data.get("search_algo", "tpe"))
    if algo not in DESIGNS:
        bad("search_algo", f"'{algo}' is not one of {', '.join(DESIGNS)}")
    space = data.get("search_space") or {}
    if not isinstance(space, dict):
        bad("search_space", "must be a mapping of dotted config paths to SearchSpaces")
    if problems:
        raise ConfigError(path, problems)

    names = list(metrics)
    first = str(data.get("optim_metric_name") or names[0])
    if first not in metrics:
        raise ConfigError(path, [("optim_metric_name", lines.get(("optim_metric_name",)),
                                  f"'{first}' is not one of optim_metrics ({', '.join(names)})")])
    out: dict[str, Any] = {
        "name": _name(data, path),
        "trainable": trainable or PLACEHOLDER,
        "metrics": {"primary": {"name": first, "mode": str(metrics[first])},
                    "secondary": [{"name": str(n), "mode": str(m)} for n, m in metrics.items() if n != first]},
        "baseline": {k: v for k, v in data.items() if k not in RUN_FIELDS},
        "factors": {path: drop_nulls(s) if isinstance(s, dict) else s for path, s in space.items()},
    }
    if not out["metrics"]["secondary"]:
        del out["metrics"]["secondary"]
    seed = data.get("random_seed")
    design: dict[str, Any] = {"type": DESIGNS[algo]}
    if DESIGNS[algo] == "random":
        if data.get("total_trials") is not None:
            design["total_trials"] = data["total_trials"]
        if seed is not None:
            design["seed"] = seed
    elif data.get("total_trials") is not None:
        notes.append(f"total_trials ({data['total_trials']}) is not used: the grid runs every combination once "
                     "(design.max_variants caps it).")
    out["design"] = design
    out["seeds"] = [seed if seed is not None else 0]
    notes.append("seeds: ABLATOR trains each sampled config once, with random_seed; add seeds to compare "
                 "variants paired (a random design then runs total_trials // len(seeds) variants).")
    resources: dict[str, Any] = {}
    if data.get("cpus_per_experiment") is not None:
        resources["cpus_per_trial"] = data["cpus_per_experiment"]
    gpu_mb = data.get("gpu_mb_per_experiment")
    if gpu_mb and str(data.get("device", "cuda")).startswith("cuda"):
        share = min(1.0, math.ceil(100 * float(gpu_mb) / gpu_memory_mb) / 100)
        resources["gpus_per_trial"] = share
        notes.append(f"gpus_per_trial {share:g} = gpu_mb_per_experiment {gpu_mb} MB / {gpu_memory_mb:g} MB of "
                     "GPU memory, rounded up to 0.01 (set --gpu-memory-mb to your GPUs' memory).")
    elif gpu_mb:
        notes.append(f"gpu_mb_per_experiment ({gpu_mb}) is not used: device is {data.get('device')}.")
    if data.get("concurrent_trials") is not None:
        resources["max_concurrent"] = data["concurrent_trials"]
    if resources:
        out["resources"] = resources
    if data.get("experiment_dir"):
        out["storage"] = {"root": str(Path(str(data["experiment_dir"])).parent)}
    if algo == "tpe":
        tuning: dict[str, Any] = {"n_trials": data.get("total_trials") or 20}
        if seed is not None:
            tuning["sampler_seed"] = seed
        out["tuning"] = tuning
        notes.append("search_algo tpe: the ablation samples the factors at random (unbiased effects); the tuning "
                     "stage then runs TPE over the factors that mattered, for total_trials trials.")
    else:
        out["tuning"] = {"enabled": False}
    dropped = [f"{k} ({data[k]!r}): {why}" for k, why in NO_COUNTERPART.items() if k in data]
    if dropped:
        notes.append("ABLATOR fields with no counterpart here (left out):")
        notes += [f"  {d}" for d in dropped]
    if trainable is None:
        notes.append(f"trainable is a placeholder ({PLACEHOLDER}): give --trainable module:function, or edit it.")
    _check(out, path, lines)
    header = "".join(f"# {part}\n" for line in notes
                     for part in textwrap.wrap(line, 100, subsequent_indent="    ") or [""])
    return header + yaml.safe_dump(out, sort_keys=False, default_flow_style=None)


def _check(out: dict, path: str | Path, lines: dict[tuple, int]) -> None:
    """Validate the converted config; its problems name the ABLATOR file's lines (the placeholder aside)."""
    where: dict[tuple, int] = {}
    for loc, line in lines.items():
        if loc[:1] == ("search_space",):
            where[("factors",) + loc[1:]] = line
        elif loc and loc[0] in out["baseline"]:
            where[("baseline",) + loc] = line
        elif loc[:1] == ("optim_metrics",):
            where[("metrics",)] = line
    for ours, theirs in COUNTERPARTS.items():
        if (theirs,) in lines:
            where[ours] = lines[(theirs,)]
    try:
        parse_config(out, path, where)
    except ConfigError as exc:
        problems = [p for p in exc.problems if not (p[0] == "trainable" and out["trainable"] == PLACEHOLDER)]
        if problems:
            raise ConfigError(path, problems) from None


def _name(data: dict, path: str | Path) -> str:
    raw = Path(str(data["experiment_dir"])).name if data.get("experiment_dir") else Path(path).stem
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", raw).strip("-.") or "ablator-study"
    return name if NAME_RE.match(name) else f"study-{name}"
