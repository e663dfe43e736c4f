"""What each W&B run holds, built from the ledger alone (no wandb import here).

Everything that leaves for W&B goes through `scrub`, so no API key, token or
environment secret reaches a run's config, summary, name or tags.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any

from ..config import StudyConfig
from ..ledger import CONFIRMATION, DETERMINISM, TrialRecord
from ..ledger.verdicts_json import Verdicts
from ..space_sampling import fmt

# ---------------------------------------------------------------- secrets

#: config keys whose string values are redacted (`hf_token`, `api_key`, `db_password`, ...)
SECRET_KEY_RE = re.compile(
    r"(^|[_\-.])(api_?key|access_?key|secret(_?access)?(_?key)?|token|auth_?token|password|passwd|"
    r"credentials?|private_?key)$",
    re.IGNORECASE,
)
#: environment variables whose values are secrets wherever they show up
SECRET_ENV_RE = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.IGNORECASE)
REDACTED = "***"


def env_secrets(extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Values of secret-looking environment variables (8+ characters), longest first."""
    values = {v for k, v in os.environ.items() if SECRET_ENV_RE.search(k) and len(v) >= 8}
    values.update(v for v in extra if v and len(v) >= 8)
    return sorted(values, key=len, reverse=True)


def scrub(obj: Any, secrets: list[str]) -> Any:
    """A copy of `obj` with secret values replaced by '***' (keys kept, so the shape stays)."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if isinstance(value, str) and SECRET_KEY_RE.search(str(key)) and value:
                out[key] = REDACTED
            else:
                out[key] = scrub(value, secrets)
        return out
    if isinstance(obj, (list, tuple)):
        return [scrub(v, secrets) for v in obj]
    if isinstance(obj, str):
        for secret in secrets:
            if secret in obj:
                obj = obj.replace(secret, REDACTED)
        return obj
    return obj


# ---------------------------------------------------------------- identity

_ID_BAD = re.compile(r"[^A-Za-z0-9_.\-]+")
MAX_ID = 64


def _slug(text: str) -> str:
    return _ID_BAD.sub("-", str(text)).strip("-.") or "x"


def _short_hash(*parts: Any, n: int = 8) -> str:
    return hashlib.sha1("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:n]


def run_id(study_id: str, trial_id: str, started_at: Any = None) -> str:
    """The W&B run id of a trial: a function of the ledger alone.

    The same study, trial and first start time always give the same id, so a
    restarted trial, or a trial continued by a later driver (`ablator resume`),
    resumes its run. A trial re-run from scratch (`--variants`: a fresh record,
    a new `started_at`) gets a new run instead of appending to the old one.
    """
    base = f"{_slug(study_id)}-{_slug(trial_id)}"
    suffix = f"-{_short_hash(started_at, n=6)}" if started_at is not None else ""
    if len(base) + len(suffix) > MAX_ID:
        keep = MAX_ID - len(suffix) - 9
        base = f"{base[:keep]}-{_short_hash(study_id, trial_id)}"
    return base + suffix


def analysis_run_id(study_id: str) -> str:
    base = f"{_slug(study_id)}-analysis"
    return base if len(base) <= MAX_ID else f"{base[: MAX_ID - 9]}-{_short_hash(study_id)}"


def project_name(config: StudyConfig) -> str:
    """`tracking.wandb.project`, else `<study name>-ablations` (never a production project)."""
    return config.tracking.wandb.project or f"{config.name}-ablations"


def run_name(record: TrialRecord) -> str:
    """`<variant>-seed<seed>`, prefixed by the group label (tier/sweep) when there is one."""
    name = f"{record.variant or record.trial_id}-seed{record.seed}"
    number = record.tuning.number if record.tuning is not None else None
    if record.stage == "tuning" and number is not None and str(number) not in name:
        name = f"{name}-t{number}"
    if record.purpose in (CONFIRMATION, DETERMINISM):  # not the ablation's or the search's own trial of it
        name = f"{name}-{record.purpose}"
    if record.group:
        name = f"{record.group}-{name}"
    return name


def run_tags(config: StudyConfig, record: TrialRecord) -> list[str]:
    """`removed:<component>` and `kind:<kind>` per removed component (64 chars at most each)."""
    tags: list[str] = []
    removed = record.removed
    for name in removed:
        tags.append(f"removed:{name}")
    for kind in sorted({config.components[n].kind for n in removed if n in config.components}):
        tags.append(f"kind:{kind}")
    tags += [f"alt:{c}={a}" for c, a in record.alternatives.items()]
    tags += [f"factor:{p}={fmt(v)}" for p, v in record.levels.items()]
    if not (removed or record.alternatives or record.levels):
        tags.append("baseline")
    if record.inference_only:
        tags.append("inference-only")
    if record.purpose in (CONFIRMATION, DETERMINISM):
        tags.append(f"purpose:{record.purpose}")
    return [t[:64] for t in dict.fromkeys(tags)]


# ---------------------------------------------------------------- config

def hardware(record: TrialRecord | None, provenance: dict) -> dict:
    """Host, CPU and GPU of the trial: the record's own `hardware` if the worker wrote it,
    else the driver's provenance (the same machine on a single-node run; no record: the study)."""
    hw = (record.hardware if record is not None else None) or {}
    cpu = provenance.get("cpu") or {}
    gpu = provenance.get("gpu") or {}
    gpu_models = hw.get("gpu_models", gpu.get("models") or [])
    return {
        "host": (record.host if record is not None else None) or provenance.get("host"),
        "driver_host": provenance.get("host"),
        "hardware_from": "trial" if hw else "driver",
        "cpu_model": hw.get("cpu_model", cpu.get("model")),
        "cpu_count": hw.get("cpu_count", cpu.get("count")),
        "gpu_model": gpu_models[0] if gpu_models else None,
        "gpu_models": list(gpu_models),
        "gpu_count": hw.get("gpu_count", gpu.get("count", 0)),
        "cuda": hw.get("cuda", gpu.get("cuda")),
        "torch": hw.get("torch", gpu.get("torch")),
    }


def provenance_config(provenance: dict) -> dict:
    git = provenance.get("git") or {}
    return {
        "git_commit": git.get("commit"),
        "git_dirty": git.get("dirty"),
        "packages_hash": provenance.get("packages_hash"),
        "packages": dict(provenance.get("packages") or {}),
        "python": provenance.get("python"),
        "platform": provenance.get("platform"),
    }


def trial_config(config: StudyConfig, record: TrialRecord, provenance: dict, study_id: str) -> dict:
    """The run config of a trial: the resolved config (removal applied) under `config`,
    and beside it what makes the result auditable."""
    removed = list(record.removed)
    overrides = dict(record.overrides)
    try:
        resolved = config.resolved(removed, overrides)
    except (KeyError, TypeError) as exc:  # a record from an older config: keep what we know
        resolved = {"_unresolved": f"{type(exc).__name__}: {exc}", **config.baseline}
    out = {
        "config": resolved,
        "study": config.name,
        "study_id": study_id,
        "trial_id": record.trial_id,
        "stage": record.stage,
        "purpose": record.purpose,
        "variant": record.variant,
        "removed": removed,
        "removed_kinds": {n: config.components[n].kind for n in removed if n in config.components},
        "seed": record.seed,
        "group_label": record.group,
        "overrides": overrides,
        "inference_only": record.inference_only,
        "source_trial": record.source_trial,
        "primary_metric": config.metrics.primary.name,
        "primary_mode": config.metrics.primary.mode,
        **provenance_config(provenance),
        **hardware(record, provenance),
        "data_fingerprints": dict(record.data_fingerprints),
    }
    if record.tuning is not None:
        out["tuning"] = record.tuning.model_dump(exclude_none=True)
    return out


def changing_config(record: TrialRecord, provenance: dict) -> dict:
    """The config keys a trial learns while it runs (data hash, host): updated in place."""
    hw = hardware(record, provenance)
    return {
        "data_fingerprints": dict(record.data_fingerprints),
        **{k: hw[k] for k in ("host", "hardware_from", "cpu_model", "cpu_count", "gpu_model",
                              "gpu_models", "gpu_count", "cuda", "torch")},
    }


def trial_summary(record: TrialRecord) -> dict:
    """Run summary: state, attempts, `final/<metric>`, duration, last error."""
    out: dict[str, Any] = {"state": record.state, "attempts": record.attempts, "duration_s": record.duration_s}
    for metric, value in (record.final or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"final/{metric}"] = float(value)
    if record.errors:
        out["error"] = record.last_error[:500]
        out["n_errors"] = len(record.errors)
    return out


def history_row(row: dict) -> dict:
    """The W&B history values of one metrics.jsonl line: numbers (and dicts of numbers)."""
    out = {}
    for key, value in row.items():
        if key in ("step", "time"):
            continue
        if isinstance(value, (int, float)):
            out[key] = value
        elif isinstance(value, dict):
            nested = {k: v for k, v in value.items() if isinstance(v, (int, float))}
            if nested:
                out[key] = nested
    return out


def study_config(config: StudyConfig, provenance: dict, study_id: str) -> dict:
    """Config of the study's `analysis` run: the whole study config and its provenance."""
    return {
        "study": config.name,
        "study_id": study_id,
        "study_config": config.model_dump(mode="json"),
        **provenance_config(provenance),
        **hardware(None, provenance),
        "argv": list(provenance.get("argv") or []),
    }


def level_tables(verdicts: Verdicts) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """The report's alternatives and factors tables from verdicts.json, for the analysis run."""
    alt_cols = ["component", "alternative", "verdict", "effect", "ci_low", "ci_high", "p", "p_holm", "n"]
    alt_rows = [[c, a, r.verdict, r.effect, *r.ci, r.p, r.p_holm, r.n]
                for c, comp in verdicts.components.items() for a, r in comp.alternatives.items()]
    f_cols = ["rank", "factor", "kind", "unit", "effect", "ci_low", "ci_high", "p", "p_holm", "importance", "levels"]
    f_rows = [[r.rank, p, r.kind, r.unit, r.effect, *r.shown_ci, r.p, r.p_holm, r.importance,
               ", ".join(f"{k}: {v.effect}" for k, v in r.levels.items())]
              for p, r in sorted(verdicts.factors.items(), key=lambda kv: kv[1].rank or 0)]
    out = {}
    if alt_rows:
        out["alternatives_table"] = (alt_cols, alt_rows)
    if f_rows:
        out["factors_table"] = (f_cols, f_rows)
    return out


def verdicts_summary(verdicts: Verdicts) -> dict[str, Any]:
    """The analysis run's summary from the verdicts: the whole document, and one column per component (its
    verdict and effect) for the runs table."""
    out: dict[str, Any] = {"verdicts": json.loads(verdicts.model_dump_json())}
    for c, r in verdicts.components.items():
        out[f"verdict/{c}"] = r.verdict
        out[f"effect/{c}"] = r.effect
    if verdicts.cost is not None:  # what each verdict cost, as columns of the runs table
        cost = verdicts.cost
        out |= {"cost/hours": cost.hours, "cost/unit": cost.unit, "cost/decided": cost.decided,
                "cost/hours_per_decided": cost.hours_per_decided, "cost/saving_vs_fixed": cost.saving,
                "cost/budget_reached": cost.budget.reached if cost.budget else None}
    return out


def verdict_table(verdicts: Verdicts) -> tuple[list[str], list[list[Any]]] | None:
    """One row per component of verdicts.json, its fields as columns (nested ones as JSON text)."""
    dump = json.loads(verdicts.model_dump_json())["components"]
    if not dump:
        return None
    rows = [{"component": k, **v} for k, v in dump.items()]
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]

    def cell(v):
        return v if v is None or isinstance(v, (int, float, str, bool)) else json.dumps(v, default=str)

    return columns, [[cell(row.get(c)) for c in columns] for row in rows]
