"""The example trainables, run for a shortened config through TrialContext.local (no Ray)."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch

from components.chord import train as chord
from components.chord.scoring import METRICS
from components.digits import train as digits
from orchestrator.config import load_config
from orchestrator.trial import TrialContext

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models: split over torch's threads they wait on each other on a busy 2-core machine (the test
    of the chord heads took 37 s wall for 4 s of CPU). Every run of a test compares runs on the same setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny_chord() -> dict:
    cfg = copy.deepcopy(load_config(CONFIGS / "chord_heads.yaml").baseline)
    cfg["data"].update(n_train=32, n_eval=8, n_frames=32)
    cfg["model"].update(hidden=16)
    cfg["train"].update(epochs=2, batch_size=16)
    return cfg


def _tiny_digits() -> dict:
    cfg = copy.deepcopy(load_config(CONFIGS / "digits_cnn.yaml").baseline)
    cfg["data"].update(n_train=200, n_test=100)
    cfg["model"].update(channels=8)
    cfg["train"].update(epochs=2, batch_size=16)
    return cfg


def _finite(metrics: dict) -> bool:
    return all(math.isfinite(v) for v in metrics.values())


# ------------------------------------------------------------------ chord


@pytest.fixture(scope="module")
def chord_baseline(tmp_path_factory):
    ctx = TrialContext.local(_tiny_chord(), seed=0, trial_dir=tmp_path_factory.mktemp("chord"))
    chord.run(ctx)
    return ctx


def test_chord_run_reports_mir_eval_metrics_per_epoch(chord_baseline):
    ctx = chord_baseline
    assert len(ctx.history) == 2
    final = ctx.final
    for key in (*METRICS, "frame_acc"):
        for prefix in ("", "ctc_", "ar_"):
            assert 0.0 <= final[prefix + key] <= 1.0, prefix + key
    assert final["malformed_samples"] == 0.0
    assert _finite(final) and final["val_loss"] > 0
    malformed = json.loads((ctx.trial_dir / "malformed.json").read_text())
    assert malformed == {"epoch": 1, "count": 0, "samples": []}
    assert set(ctx.fingerprints) == {"train", "test"}
    assert ctx.fingerprints["train"]["hash"] != ctx.fingerprints["test"]["hash"]
    state = ctx.restore()
    assert state["epoch"] == 1 and "model" in state


def test_chord_evaluate_reuses_the_checkpoint_without_training(chord_baseline, tmp_path):
    checkpoint = chord_baseline.restore()
    # Same inference settings: evaluate() reproduces the trained trial's final metrics.
    same = TrialContext.local(
        _tiny_chord(), seed=0, trial_dir=tmp_path / "same", checkpoint=checkpoint
    )
    chord.evaluate(same)
    assert len(same.history) == 1
    for key in (*METRICS, "frame_acc", "val_loss"):
        assert same.final[key] == pytest.approx(chord_baseline.final[key], abs=1e-6)
    # An inference-only removal: no smoothing, greedy decoding. Nothing is trained:
    # the weights are the checkpoint's.
    cfg = _tiny_chord()
    cfg["inference"].update(smoothing=1, beam_width=1, temperature=1.0)
    ablated = TrialContext.local(
        cfg,
        seed=0,
        trial_dir=tmp_path / "ablated",
        variant="no-smoothing",
        checkpoint=checkpoint,
    )
    chord.evaluate(ablated)
    assert len(ablated.history) == 1 and _finite(ablated.final)
    assert ablated.final["val_loss"] == pytest.approx(chord_baseline.final["val_loss"], abs=1e-6)
    assert "train_loss" not in ablated.final
    # Without a checkpoint, evaluate() refuses rather than scoring an untrained model.
    with pytest.raises(RuntimeError, match="checkpoint"):
        chord.evaluate(TrialContext.local(cfg, seed=0, trial_dir=tmp_path / "none"))


def test_chord_heads_are_decoupled(chord_baseline, tmp_path):
    # Fresh model per variant from the same init seed, heads without shared weights or
    # shared gradient clipping: with no randomness in training (no dropout, no label
    # noise), the AR head trained alone is exactly the AR head trained beside CTC.
    def trained(**model):
        cfg = _tiny_chord()
        cfg["model"].update(dropout=0.0, ar_label_noise=0.0, **model)
        ctx = TrialContext.local(cfg, seed=3, trial_dir=tmp_path / str(sorted(model.items())))
        chord.run(ctx)
        return ctx

    both, ar_only = trained(), trained(ctc_head=False)
    assert "ctc_mirex" not in ar_only.final
    for key in ("mirex", "frame_acc", "seg"):
        assert ar_only.final[f"ar_{key}"] == pytest.approx(both.final[f"ar_{key}"], abs=1e-9)
    a, b = both.restore()["model"], ar_only.restore()["model"]
    assert set(b) == {k for k in a if k.startswith("heads.heads.ar.")}
    for k in b:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def test_chord_model_needs_a_head(tmp_path):
    cfg = _tiny_chord()
    cfg["model"].update(ctc_head=False, ar_head=False)
    with pytest.raises(ValueError, match="at least one"):
        chord.run(TrialContext.local(cfg, seed=0, trial_dir=tmp_path))


# ------------------------------------------------------------------ digits


def test_digits_run_reports_finite_metrics(tmp_path):
    ctx = TrialContext.local(_tiny_digits(), seed=0, trial_dir=tmp_path)
    digits.run(ctx)
    assert len(ctx.history) == 2
    final = ctx.final
    assert {"val_acc", "val_loss", "macro_f1", "min_class_recall", "train_loss"} <= set(final)
    assert _finite(final) and 0.0 <= final["val_acc"] <= 1.0
    assert final["val_acc"] > 0.3  # two epochs already learn something
    assert set(ctx.fingerprints) == {"train", "test"}


class _Crash(Exception):
    pass


def test_digits_restart_continues_exactly(tmp_path):
    # A trial that crashes after its first epoch and is restarted from that checkpoint
    # ends exactly where an uninterrupted one does (model, optimizer, LR schedule and
    # RNG state are all checkpointed; each epoch's batch order depends on seed and epoch).
    cfg = _tiny_digits()
    whole = TrialContext.local(cfg, seed=1, trial_dir=tmp_path / "whole")
    digits.run(whole)

    crashing = TrialContext.local(cfg, seed=1, trial_dir=tmp_path / "crash")
    report = crashing.report

    def report_then_crash(metrics, checkpoint=None, step=None):
        report(metrics, checkpoint=checkpoint, step=step)
        raise _Crash  # e.g. the node died right after the epoch-0 checkpoint

    crashing.report = report_then_crash
    with pytest.raises(_Crash):
        digits.run(crashing)
    # the restart: a new context on the same trial directory (its checkpoint carries the RNG states)
    resumed = TrialContext.local(cfg, seed=1, trial_dir=tmp_path / "crash")
    digits.run(resumed)
    lines = (tmp_path / "crash" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [0, 1]  # only epoch 1 ran again
    assert resumed.final == whole.final  # bit-identical


# ------------------------------------------------------------------ every variant of the configs


@pytest.mark.parametrize("config_name", ["chord_heads.yaml", "digits_cnn.yaml"])
def test_every_removal_contract_builds_a_working_model(config_name):
    # The configs' removals are config overrides: every variant's config must build a
    # model that runs a forward pass (catches a contract the model code cannot read).
    from components.chord.data import make_data
    from components.chord.model import ChordModel
    from components.digits.model import DigitsCNN

    study = load_config(CONFIGS / config_name)
    variants = [[]] + [[name] for name in study.components] + [list(p) for p in study.design.pairs]
    for removed in variants:
        cfg = study.resolved(removed)
        if config_name.startswith("chord"):
            cfg["data"].update(n_train=2, n_eval=2)
            _, test = make_data(cfg["data"])
            model = ChordModel.from_config(cfg).eval()
            inf = cfg["inference"]
            out = model.decode(
                test.features,
                temperature=inf["temperature"],
                beam_width=inf["beam_width"],
                smoothing=inf["smoothing"],
            )
            assert out.shape == test.frames.shape
        else:
            assert DigitsCNN.from_config(cfg)(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_local_context_applies_a_study_variant_as_the_study_does(tmp_path):
    from orchestrator.errors import UserError

    study = Path(__file__).parent.parent / "configs/quickstart_levels.yaml"
    config = load_config(study)
    base = TrialContext.local(study, trial_dir=tmp_path / "base")
    assert base.config == config.baseline and base.removed == []
    comp, change = next((c, comp.removal) for c, comp in config.components.items())
    ablated = TrialContext.local(config, variant=f"no-{comp}", trial_dir=tmp_path / "ablated")
    assert ablated.removed == [comp] and ablated.variant == f"no-{comp}"
    for dotted, value in change.items():
        node = ablated.config
        for key in dotted.split("."):
            node = node[key]
        assert node == value
    comp, alts = next((c, comp.alternatives) for c, comp in config.components.items() if comp.alternatives)
    alt, overrides = next(iter(alts.items()))
    other = TrialContext.local(study, variant=f"{comp}={alt}", trial_dir=tmp_path / "alt")
    assert all(other.config[k.split(".")[0]][k.split(".")[1]] == v for k, v in overrides.items())
    with pytest.raises(UserError, match="unknown variant 'no-such'"):
        TrialContext.local(study, variant="no-such")
