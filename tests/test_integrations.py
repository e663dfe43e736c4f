"""Integrations: script trainables, the Lightning and Hugging Face callbacks.

The end-to-end tests write a user's project into a temp directory and run the `ablator` command
there (no PYTHONPATH): real local Ray, real subprocesses, real Lightning and Trainer loops on
synthetic data (a tiny BERT built from a config: nothing is downloaded). Faults are real: a
trainable SIGKILLs its own worker after epoch 2, a script exits 3, a script hangs.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from orchestrator.errors import UserError
from orchestrator.execution.worker import WORKER_DIED
from orchestrator.integrations.script import command, run_script
from orchestrator.ledger import Study, TrialStore
from orchestrator.trial import TrialContext
from tests.conftest import BIN, REPO, on_cluster


def ablator(project: Path, *args: str, timeout: float = 900, address: str | None = None) -> subprocess.CompletedProcess:
    """`ablator ARGS` in `project`: on the Ray head at `address`, else with its own local Ray."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(RAY_AUTH_MODE="disabled", WANDB_MODE="disabled", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PATH=f"{BIN}:{os.environ['PATH']}")
    return subprocess.run([str(BIN / "ablator"), *args, *on_cluster(address)],
                          cwd=project, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def user_project(tmp_path: Path, example: str, files: dict[str, str], **changes) -> Path:
    """A temp project: the example study's config (with `changes`) and the user's files."""
    root = tmp_path / "project"
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(text)
    config = yaml.safe_load((REPO / "configs" / example).read_text())
    config.update(tracking={"wandb": {"mode": "disabled"}}, **changes)
    (root / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def outcome(root: Path, result: subprocess.CompletedProcess):
    """The study's records by trial id, its verdicts and a history reader."""
    out = result.stdout + result.stderr
    assert "Traceback" not in result.stdout, out
    name = yaml.safe_load((root / "study.yaml").read_text())["name"]
    study = Study(root / "studies" / name)
    records = {p.parent.name: study.trial(p.parent.name).read() for p in study.trials_dir.glob("*/record.json")}
    verdicts = json.loads((study.path / "verdicts.json").read_text())["components"]
    return records, {k: v["verdict"] for k, v in verdicts.items()}, study.history


def check_resumed(history: list[dict], first_of_attempt_2: int, reference: dict, metric: str) -> None:
    """Attempt 1 logged up to the kill, attempt 2 only later steps, each step once, and the same final."""
    steps = [row["step"] for row in history]
    assert steps == sorted(set(steps)), steps
    second = [row["step"] for row in history if row["attempt"] == 2]
    assert second and second[0] == first_of_attempt_2, history
    assert all(row["attempt"] == 1 for row in history if row["step"] < first_of_attempt_2)
    assert all(math.isfinite(row[metric]) for row in history)
    assert history[-1][metric] == pytest.approx(reference[metric], rel=1e-9, abs=1e-12), (history[-1], reference)


# ---------------------------------------------------------------- without Ray


def test_hydra_command_passes_every_leaf_of_the_trial_config(tmp_path):
    ctx = TrialContext({"model": {"width": 8, "act": "relu", "tags": ["a", "b"]}, "lr": 0.1, "off": None,
                        "flag": True}, 0, TrialStore(tmp_path))
    argv = command(ctx, tmp_path, {"script": "train.py", "args": ["--x", "1"], "script_overrides": "hydra"})
    assert argv[1:4] == [str(tmp_path / "train.py"), "--x", "1"]
    assert argv[4:-1] == ["model.width=8", "model.act='relu'", "model.tags=['a','b']", "lr=0.1", "off=null",
                          "flag=true"]
    assert argv[-1].startswith("hydra.run.dir=") and str(tmp_path) in argv[-1]
    plain = command(ctx, tmp_path, {"script": "train.py", "args": [], "script_overrides": "none"})
    assert plain == [sys.executable, str(tmp_path / "train.py")]


HYDRA_APP = """
import json

import hydra
from omegaconf import OmegaConf

from orchestrator import TrialContext


@hydra.main(version_base=None, config_path=".", config_name="app")
def main(cfg):
    ctx = TrialContext.from_env()
    ctx.report({"width": cfg.model.width, "dropout": cfg.model.dropout})
    print(json.dumps(OmegaConf.to_container(cfg)))


main()
"""


@pytest.mark.slow
def test_a_hydra_app_gets_the_trial_config_as_overrides(tmp_path):
    pytest.importorskip("hydra")
    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text(HYDRA_APP)
    (project / "app.yaml").write_text("model: {width: 8, dropout: 0.1, act: relu}\nname: app\n")
    trial = TrialContext({"model": {"width": 32, "dropout": 0.0, "act": "1"}}, 0, TrialStore(tmp_path / "trial"))
    trial.trial_dir.mkdir()
    run_script(trial, project, {"script": "app.py", "args": [], "script_overrides": "hydra"})
    assert trial.final == {"width": 32.0, "dropout": 0.0}
    log = (trial.trial_dir / "script.log").read_text()
    assert '{"model": {"width": 32, "dropout": 0.0, "act": "1"}, "name": "app"}' in log, log
    assert (trial.trial_dir / "hydra" / ".hydra" / "overrides.yaml").is_file()
    assert not (project / "outputs").exists()


def test_from_env_outside_a_trial_says_how_to_run(monkeypatch):
    monkeypatch.delenv("ABLATOR_TRIAL_CONTEXT", raising=False)
    with pytest.raises(UserError, match="TrialContext.local"):
        TrialContext.from_env()


def test_a_missing_framework_names_its_extra(monkeypatch):
    for name in [m for m in sys.modules if m.startswith(("orchestrator.integrations.lightning",
                                                          "orchestrator.integrations.huggingface"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "lightning.pytorch", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(UserError, match=r"\[lightning\]"):
        import orchestrator.integrations.lightning
    with pytest.raises(UserError, match=r"\[hf\]"):
        import orchestrator.integrations.huggingface  # noqa: F401


@pytest.mark.slow
def test_example_script_runs_with_its_trial_context(tmp_path):
    """The example script, run by the script runner outside Ray: it reports through from_env,
    restores its checkpoint on a second attempt and logs its output in the trial dir."""
    config = yaml.safe_load((REPO / "configs/spirals_script.yaml").read_text())
    spec = config["trainable"]
    ctx = TrialContext(config["baseline"], 3, TrialStore(tmp_path), trial_id="baseline-seed3")
    run_script(ctx, REPO, spec)
    rows = ctx.history
    assert [r["step"] for r in rows] == list(range(config["baseline"]["train"]["epochs"]))
    assert all(math.isfinite(r["val_acc"]) for r in rows) and rows[-1]["val_acc"] > 0.9
    assert ctx.final == {k: v for k, v in rows[-1].items() if k not in ("step", "attempt", "time")}
    assert "epoch 7: val_acc" in (tmp_path / "script.log").read_text()
    again = TrialContext(config["baseline"], 3, TrialStore(tmp_path), attempt=2)
    run_script(again, REPO, spec)  # restores the last checkpoint: nothing left to train
    assert len(again.history) == len(rows) and all(r["attempt"] == 1 for r in again.history)


HARNESS = """
import signal, sys
from pathlib import Path

from orchestrator.integrations.script import run_script
from orchestrator.ledger import TrialStore
from orchestrator.trial import TrialContext


def term(*_):  # what a Ray worker does on SIGTERM
    raise SystemExit("SIGTERM")


signal.signal(signal.SIGTERM, term)
run_script(TrialContext({}, 0, TrialStore(Path(sys.argv[1]))), Path(sys.argv[2]), {"script": "group.py"})
"""

GROUP_SCRIPT = """
import os, subprocess, time

from orchestrator import TrialContext

ctx = TrialContext.from_env()
child = subprocess.Popen(["sleep", "600"])  # a process of its own, e.g. a data loader worker
(ctx.trial_dir / "pids").write_text(f"{os.getpid()} {child.pid}")
time.sleep(600)
"""


def gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.slow
def test_sigterm_to_the_worker_ends_the_scripts_whole_process_group(tmp_path):
    (tmp_path / "harness.py").write_text(HARNESS)
    (tmp_path / "group.py").write_text(GROUP_SCRIPT)
    trial = tmp_path / "trial"
    trial.mkdir()
    worker = subprocess.Popen([sys.executable, str(tmp_path / "harness.py"), str(trial), str(tmp_path)])
    deadline = time.time() + 300
    while not (trial / "pids").exists():
        assert worker.poll() is None and time.time() < deadline, "the script did not start"
        time.sleep(0.2)
    time.sleep(0.2)
    script, child = map(int, (trial / "pids").read_text().split())
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) != 0
    deadline = time.time() + 30
    while not (gone(script) and gone(child)):
        assert time.time() < deadline, "the script's process group outlived its worker"
        time.sleep(0.2)


# ---------------------------------------------------------------- scripts through `ablator launch`

SCRIPT = '''
import os, signal, sys, time

import torch

from orchestrator import TrialContext

ctx = TrialContext.from_env()
cfg = ctx.config
print("started", ctx.trial_id, "attempt", ctx.attempt)
if cfg["mode"] == "fault" and ctx.seed == 0:
    print("cannot read data/train.bin", file=sys.stderr)
    sys.exit(3)
if cfg["mode"] == "fault" and ctx.seed == 1 and ctx.attempt == 1:
    (ctx.trial_dir / "hung.pid").write_text(str(os.getpid()))
    time.sleep(3600)
state = ctx.restore()
total = torch.zeros(()) if state is None else state["total"]
for epoch in range(0 if state is None else state["epoch"] + 1, cfg["epochs"]):
    total = total + torch.rand(())  # random: equal finals after a restart need the RNG states back
    score = total / (epoch + 1) + cfg["useful"] * (0.4 + 0.2 * torch.rand(()))
    ctx.report({"score": score}, checkpoint={"total": total, "epoch": epoch})
    if epoch == 2 and ctx.attempt == 1 and ctx.variant == "baseline" and ctx.seed == 0:
        os.kill(os.getppid(), signal.SIGKILL)  # the Ray worker running this attempt dies ...
        time.sleep(60)  # ... and this script with it (PR_SET_PDEATHSIG), long before it could go on
'''


@pytest.mark.slow
def test_script_study_verdicts_restart_exit_code_and_hang(tmp_path, ray_address):
    root = user_project(
        tmp_path, "spirals_script.yaml", {"train.py": SCRIPT}, name="script-e2e",
        trainable={"script": "train.py"},
        baseline={"mode": "ok", "epochs": 5, "useful": 1.0, "verbose": True},
        components={  # the faults first: the hang waits out trial_timeout while the other trials run beside it
            "faults": {"kind": "training", "description": "seed 0 exits 3, seed 1 hangs once",
                       "removal": {"mode": "fault"}},
            "useful": {"kind": "structural", "description": "u", "removal": {"useful": 0.0}},
            "verbose": {"kind": "training", "description": "v", "removal": {"verbose": False}}},
        metrics={"primary": {"name": "score", "mode": "max"}}, analysis={"min_effect": 0.1},
        fault_tolerance={"max_failures": 1, "trial_timeout": 60})  # healthy: a few s; room when loaded
    result = ablator(root, "launch", "study.yaml", address=ray_address)
    records, verdicts, history = outcome(root, result)
    assert result.returncode == 1, result.stdout + result.stderr  # a trial of the faults variant failed
    assert (verdicts["useful"], verdicts["verbose"]) == ("essential", "negligible"), verdicts

    # SIGKILLed worker: the second attempt resumes at epoch 3 and ends where an uninterrupted run does
    killed = records["baseline-seed0"]
    assert killed.state == "COMPLETED" and killed.attempts == 2 and WORKER_DIED in killed.errors[0].error
    check_resumed(history("baseline-seed0"), 3, records["no-verbose-seed0"].final, "score")

    # exit 3: failed, with the script's stderr as its error; stdout and stderr in the trial's log
    rec = records["no-faults-seed0"]
    assert rec.state == "FAILED" and rec.attempts == 2
    assert "exited with 3" in rec.errors[0].error and "cannot read data/train.bin" in rec.errors[0].error
    log = (root / "studies/script-e2e/trials/no-faults-seed0/script.log").read_text()
    assert "started no-faults-seed0 attempt 2" in log and "cannot read data/train.bin" in log

    # a hung script: trial_timeout ends the attempt and its process; the restart completes
    hung = records["no-faults-seed1"]
    assert hung.state == "COMPLETED" and hung.attempts == 2 and "timed out after 60 s" in hung.errors[0].error
    pid = int((root / "studies/script-e2e/trials/no-faults-seed1/hung.pid").read_text())
    assert gone(pid)


# ---------------------------------------------------------------- Lightning

LIGHTNING_USER = '''
import os, signal

import lightning as L

from spirals_lightning import fit


class KillAfterEpoch2(L.Callback):
    """A fault for the test: SIGKILL this worker after epoch 2 (0-based) of baseline seed 0's first attempt."""

    def __init__(self, ctx):
        self.ctx = ctx

    def on_train_epoch_end(self, trainer, module):
        ctx = self.ctx
        if trainer.current_epoch == 2 and ctx.attempt == 1 and ctx.variant == "baseline" and ctx.seed == 0:
            os.kill(os.getpid(), signal.SIGKILL)


def run(ctx):
    fit(ctx, [KillAfterEpoch2(ctx)])
'''


@pytest.mark.slow
def test_lightning_study_verdicts_sigkill_resume_and_early_stopping(tmp_path, ray_address):
    pytest.importorskip("lightning", reason="needs the [lightning] extra")
    example = (REPO / "components/lightning_spirals.py").read_text()
    root = user_project(tmp_path, "lightning_spirals.yaml", {"spirals_lightning.py": example,
                                                              "mytrain.py": LIGHTNING_USER},
                        trainable="mytrain:run")
    result = ablator(root, "launch", "study.yaml", address=ray_address)
    records, verdicts, history = outcome(root, result)
    assert result.returncode == 0, result.stdout + result.stderr
    assert verdicts == {"hidden_layers": "essential", "grad_clip": "negligible"}
    assert all(r.state == "COMPLETED" for r in records.values())

    killed = records["baseline-seed0"]
    assert killed.attempts == 2 and WORKER_DIED in killed.errors[0].error
    # gradient clipping at 1000 never clips: no-grad_clip-seed0 is the same run, uninterrupted
    check_resumed(history("baseline-seed0"), 3, records["no-grad_clip-seed0"].final, "val_acc")
    assert (root / "studies/lightning-spirals/trials/baseline-seed0/lightning.ckpt").is_file()

    # EarlyStopping at val_acc 0.98: the baseline stops before max_epochs and completes with its last step
    epochs = yaml.safe_load((root / "study.yaml").read_text())["baseline"]["train"]["epochs"]
    for seed in (0, 1, 2):
        rows = history(f"baseline-seed{seed}")
        assert len(rows) < epochs and rows[-1]["val_acc"] >= 0.98
        assert records[f"baseline-seed{seed}"].final["val_acc"] == rows[-1]["val_acc"]
        assert {"val_loss", "train_loss"} <= set(rows[-1])


# ---------------------------------------------------------------- Hugging Face

HF_USER = '''
import os, signal

from transformers import TrainerCallback

from hf_tokens import fit


class KillAfterEpoch2(TrainerCallback):
    """A fault for the test: SIGKILL this worker once epoch 2's checkpoint is saved (baseline seed 0, attempt 1)."""

    def __init__(self, ctx):
        self.ctx = ctx

    def on_save(self, args, state, control, **kwargs):
        ctx = self.ctx
        if round(state.epoch) == 2 and ctx.attempt == 1 and ctx.variant == "baseline" and ctx.seed == 0:
            os.kill(os.getpid(), signal.SIGKILL)


def run(ctx):
    fit(ctx, [KillAfterEpoch2(ctx)])
'''


@pytest.mark.slow
def test_huggingface_study_verdicts_sigkill_resume_and_early_stopping(tmp_path, ray_address):
    pytest.importorskip("transformers", reason="needs the [hf] extra")
    example = (REPO / "components/hf_tokens.py").read_text()
    root = user_project(tmp_path, "hf_tokens.yaml", {"hf_tokens.py": example, "mytrain.py": HF_USER},
                        trainable="mytrain:run")
    result = ablator(root, "launch", "study.yaml", address=ray_address)
    records, verdicts, history = outcome(root, result)
    assert result.returncode == 0, result.stdout + result.stderr
    assert verdicts == {"encoder_layers": "essential", "grad_clip": "negligible"}
    assert all(r.state == "COMPLETED" for r in records.values())

    killed = records["baseline-seed0"]
    assert killed.attempts == 2 and WORKER_DIED in killed.errors[0].error
    rows = history("baseline-seed0")
    per_epoch = rows[0]["step"]  # the Trainer's global step after epoch 1
    check_resumed(rows, 3 * per_epoch, records["no-grad_clip-seed0"].final, "eval_accuracy")
    assert rows[-1]["eval_loss"] == pytest.approx(records["no-grad_clip-seed0"].final["eval_loss"], rel=1e-6)
    trial = root / "studies/hf-tokens/trials/baseline-seed0/hf"
    assert len(list(trial.glob("checkpoint-*"))) <= 2  # the newest and the best

    # EarlyStoppingCallback (patience 2): without attention layers nothing improves after epoch 1
    epochs = yaml.safe_load((root / "study.yaml").read_text())["baseline"]["train"]["epochs"]
    for seed in (0, 1, 2):
        rows = history(f"no-encoder_layers-seed{seed}")
        assert len(rows) < epochs
        assert records[f"no-encoder_layers-seed{seed}"].final["eval_accuracy"] == rows[-1]["eval_accuracy"]
    shutil.rmtree(root / "studies", ignore_errors=True)  # checkpoints of 9 tiny BERTs


def test_script_trainable_config_errors_name_line_and_field(tmp_path, monkeypatch):
    from orchestrator.config import load_config
    from orchestrator.errors import ConfigError

    monkeypatch.chdir(tmp_path)  # the project directory: scripts are relative to it
    (tmp_path / "train.py").write_text("")
    base = (REPO / "configs/spirals_script.yaml").read_text()
    cases = {"{script: missing.py}": "trainable.script: no script 'missing.py'",
             "{script: train.py, argz: []}": "trainable.argz: unknown key",
             "{script: train.py, script_overrides: omegaconf}": "trainable.script_overrides: Input should be"}
    for trainable, message in cases.items():
        path = tmp_path / "study.yaml"
        path.write_text(base.replace("trainable: {script: components/spirals_script.py, args: [--batch-size, \"16\"]}",
                                     f"trainable: {trainable}"))
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert f"study.yaml:5  {message}" in str(info.value), str(info.value)
    path.write_text(base.replace("components/spirals_script.py", "train.py"))
    assert load_config(path).trainable.script == "train.py"
