"""The removal contracts of components/: each mode does what its name says."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from orchestrator.blocks.heads import RemovableHeads
from orchestrator.blocks.inference import REMOVED as INFERENCE_REMOVED
from orchestrator.blocks.inference import apply_temperature, beam_search, mode_filter
from orchestrator.blocks.removal import Removable, ResidualBlock, build_then_remove, trainable_parameters
from orchestrator.blocks.training import REMOVED as TRAINING_REMOVED
from orchestrator.blocks.training import Augmentation, GaussianNoise, RandomShift, make_scheduler


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models: split over torch's threads they wait on each other on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _block(c_in: int = 4, c_out: int = 8) -> ResidualBlock:
    return ResidualBlock(
        body=nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.Conv2d(c_out, c_out, 3, padding=1)
        ),
        shortcut=nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None,
    )


# ------------------------------------------------------------------ Removable


def test_keep_is_the_module():
    torch.manual_seed(0)
    lin = nn.Linear(5, 3)
    x = torch.randn(2, 5)
    wrapped = Removable(lin, "keep")
    assert torch.equal(wrapped(x), lin(x))
    assert {id(p) for p in wrapped.parameters()} == {id(p) for p in lin.parameters()}


def test_identity_returns_the_input_and_drops_the_parameters():
    x = torch.randn(3, 4)
    wrapped = Removable(nn.Linear(4, 4), "identity")
    assert wrapped(x) is x
    assert list(wrapped.parameters()) == []
    assert wrapped.removed_parameters == 4 * 4 + 4


def test_identity_refuses_a_shape_changing_module():
    wrapped = Removable(nn.Linear(4, 3), "identity")
    with pytest.raises(ValueError, match="output shape == input"):
        wrapped(torch.randn(2, 4))


def test_zero_gives_zeros_of_the_module_output_shape():
    conv = nn.Conv2d(3, 7, 3, stride=2, padding=1)
    expected_shape = conv(torch.randn(2, 3, 9, 9)).shape
    wrapped = Removable(conv, "zero")
    out = wrapped(torch.randn(2, 3, 9, 9))
    assert out.shape == expected_shape == (2, 7, 5, 5)
    assert out.dtype == torch.float32 and not out.any()
    assert list(wrapped.parameters()) == []
    assert wrapped(torch.randn(5, 3, 4, 4)).shape == (5, 7, 2, 2)  # inferred per input shape


def test_zero_has_no_side_effects_on_rng_or_running_stats():
    # The output shape comes from a meta-device copy: no BatchNorm statistics are
    # updated and no random numbers are drawn (dropout), unlike a real forward pass.
    module = nn.Sequential(nn.Linear(6, 6), nn.BatchNorm1d(6), nn.Dropout(0.5))
    bn_mean = module[1].running_mean.clone()
    wrapped = Removable(module, "zero").train()
    x = torch.randn(4, 6)
    rng = torch.get_rng_state()
    out = wrapped(x)
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.equal(module[1].running_mean, bn_mean)
    assert out.shape == (4, 6) and not out.any()


def test_skip_returns_the_residual_path():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 6)
    projected = _block(4, 8)
    expected = projected.shortcut(x)
    full = projected(x)
    wrapped = Removable(projected, "skip")
    assert torch.allclose(wrapped(x), expected)
    assert not torch.allclose(wrapped(x), full)
    # Only the shortcut's parameters remain (body convolutions are removed).
    assert {id(p) for p in wrapped.parameters()} == {id(p) for p in projected.shortcut.parameters()}
    assert wrapped.removed_parameters == sum(p.numel() for p in projected.body.parameters())
    # Identity shortcut: skip returns exactly x.
    same = Removable(_block(4, 4), "skip")
    assert torch.equal(same(x), x)


def test_skip_needs_a_residual_block_and_modes_are_checked():
    with pytest.raises(ValueError, match="shortcut"):
        Removable(nn.Linear(3, 3), "skip")
    with pytest.raises(ValueError, match="keep, identity, zero, skip"):
        Removable(nn.Linear(3, 3), "off")


def test_build_then_remove_keeps_initial_weights_of_kept_parts():
    factories = {
        "a": lambda: nn.Linear(3, 3),
        "b": lambda: nn.Linear(3, 3),
        "c": lambda: nn.Linear(3, 3),
    }
    torch.manual_seed(7)
    full = build_then_remove(factories, {})
    torch.manual_seed(7)
    ablated = build_then_remove(factories, {"b": False})
    assert set(ablated) == {"a", "c"}
    assert torch.equal(full["c"].weight, ablated["c"].weight)  # not shifted by b's removal


# ------------------------------------------------------------------ heads


class _RegressionHead(nn.Module):
    def __init__(self, target_key: str):
        super().__init__()
        self.encoder = nn.Linear(4, 8)  # its own encoder: nothing shared
        self.out = nn.Linear(8, 1)
        self.target_key = target_key

    def forward(self, x):
        return self.out(torch.relu(self.encoder(x))).squeeze(-1)

    def loss(self, output, batch):
        return ((output - batch[self.target_key]) ** 2).mean()


def _heads(keep):
    torch.manual_seed(0)
    return RemovableHeads(
        {"first": lambda: _RegressionHead("y1"), "second": lambda: _RegressionHead("y2")},
        keep=keep,
        loss_weights={"first": 1.0, "second": 0.5},
    )


def test_removed_head_has_no_parameters_in_the_optimizer_and_no_loss():
    full, ablated = _heads({}), _heads({"second": False})
    assert ablated.names == ("first",) and ablated.removed == ("second",)
    opt = torch.optim.SGD(ablated.parameters(), lr=0.1)
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert in_opt == {id(p) for p in ablated.heads["first"].parameters()}
    assert len(in_opt) == len(list(full.parameters())) // 2

    x = torch.randn(5, 4)
    batch = {"y1": torch.randn(5), "y2": torch.randn(5)}
    total, terms = ablated.loss(ablated(x), batch)
    assert set(terms) == {"first"}
    assert torch.allclose(total, ablated.heads["first"].loss(ablated.heads["first"](x), batch))
    full_total, full_terms = full.loss(full(x), batch)
    assert full_total.item() == pytest.approx(
        full_terms["first"] + 0.5 * full_terms["second"], rel=1e-6
    )
    # The kept head starts from the same weights as in the full model.
    assert torch.equal(full.heads["first"].out.weight, ablated.heads["first"].out.weight)


def test_removing_every_head_is_an_error():
    with pytest.raises(ValueError, match="at least one"):
        _heads({"first": False, "second": False})


# ------------------------------------------------------------------ training components


def test_training_removal_values():
    assert TRAINING_REMOVED == {"dropout": 0.0, "augmentation": False, "lr_schedule": "constant"}
    x = torch.randn(8, 16)
    assert torch.equal(nn.Dropout(TRAINING_REMOVED["dropout"]).train()(x), x)


def test_constant_schedule_keeps_the_learning_rate_and_cosine_decays():
    def lrs(kind):
        opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
        sched = make_scheduler(opt, kind, total_steps=10)
        out = []
        for _ in range(10):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    assert lrs("constant") == [0.1] * 10
    cosine = lrs("cosine")
    assert cosine[0] == pytest.approx(0.1) and all(a > b for a, b in itertools.pairwise(cosine))
    step = lrs("step")
    assert (
        step[0] == pytest.approx(0.1)
        and step[5] == pytest.approx(0.05)
        and step[9] == pytest.approx(0.025)
    )
    with pytest.raises(ValueError, match="constant"):
        lrs("warmup")


def test_augmentation_off_is_the_identity_and_draws_no_random_numbers():
    x = torch.rand(4, 1, 8, 8)
    off = Augmentation(RandomShift(1), GaussianNoise(0.1), enabled=False).train()
    rng = torch.get_rng_state()
    assert off(x) is x
    assert torch.equal(torch.get_rng_state(), rng)
    on = Augmentation(RandomShift(1), GaussianNoise(0.1), enabled=True).train()
    assert on(x).shape == x.shape and not torch.equal(on(x), x)
    assert on.eval()(x) is x  # never at evaluation time


def test_random_shift_moves_the_image_without_changing_it():
    x = torch.zeros(16, 1, 8, 8)
    x[:, :, 3:5, 3:5] = 1.0  # a blob away from the border survives any 1-pixel shift
    torch.manual_seed(0)
    shifted = RandomShift(1).train()(x)
    assert torch.equal(shifted.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))
    for img in shifted[:, 0]:
        rows, cols = torch.nonzero(img, as_tuple=True)
        assert rows.max() - rows.min() == 1 and cols.max() - cols.min() == 1
        assert 2 <= rows.min() <= 4 and 2 <= cols.min() <= 4


# ------------------------------------------------------------------ inference components


def test_inference_removal_values_are_no_ops():
    assert INFERENCE_REMOVED == {"temperature": 1.0, "beam_width": 1, "smoothing": 1}
    logits = torch.randn(3, 5)
    assert apply_temperature(logits, 1.0) is logits
    assert torch.allclose(apply_temperature(logits, 0.5), logits * 2)
    labels = torch.tensor([[1, 1, 2, 1, 1, 3, 3, 3]])
    assert mode_filter(labels, 1) is labels


def test_mode_filter_removes_short_flips_and_keeps_long_segments():
    labels = torch.tensor([1, 1, 1, 2, 1, 1, 3, 3, 3, 3, 0, 0, 0])
    assert mode_filter(labels, 3).tolist() == [1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 0, 0, 0]
    assert mode_filter(labels[None], 3).shape == (1, 13)
    with pytest.raises(ValueError, match="odd"):
        mode_filter(labels, 4)


def _toy_step(table: torch.Tensor):
    """A tiny AR 'model': log p(y_t | y_{t-1}) from a (C+1, C) table (last row: start)."""

    def step(state, prev, t):
        return table[prev], state

    return step


def test_beam_width_one_is_greedy():
    torch.manual_seed(0)
    c, t = 4, 6
    table = torch.randn(c + 1, c).log_softmax(-1)
    labels, score = beam_search(
        _toy_step(table), None, batch_size=1, n_steps=t, beam_width=1, start_label=c
    )
    prev, greedy, total = c, [], 0.0
    for _ in range(t):
        prev = int(table[prev].argmax())
        total += float(table[greedy[-1] if greedy else c, prev])
        greedy.append(prev)
    assert labels[0].tolist() == greedy
    assert float(score[0]) == pytest.approx(total, abs=1e-5)


def test_wide_beam_finds_the_best_sequence():
    torch.manual_seed(3)
    c, t = 3, 4
    table = torch.randn(c + 1, c).mul(2).log_softmax(-1)

    def logp(seq):
        return sum(float(table[p, y]) for p, y in zip((c,) + seq[:-1], seq))

    best = max(itertools.product(range(c), repeat=t), key=logp)
    labels, score = beam_search(
        _toy_step(table), None, batch_size=1, n_steps=t, beam_width=c ** (t - 1), start_label=c
    )
    assert tuple(labels[0].tolist()) == best
    assert float(score[0]) == pytest.approx(logp(best), abs=1e-5)


def test_beam_search_reorders_state_per_sample():
    # The state is the running sum of labels; with 2 samples and beams it must follow
    # each hypothesis (a wrong reorder mixes samples and changes the result).
    def step(state, prev, t):
        logits = torch.stack([-(state - 1.0).abs(), -(state - 2.0).abs()], dim=1)
        return logits.log_softmax(-1), state + prev.clamp(max=1).float()

    out1, _ = beam_search(
        step, torch.tensor([0.0, 5.0]), batch_size=2, n_steps=5, beam_width=1, start_label=0
    )
    out3, _ = beam_search(
        step, torch.tensor([0.0, 5.0]), batch_size=2, n_steps=5, beam_width=3, start_label=0
    )
    assert out1.shape == out3.shape == (2, 5)
    assert out3[1].tolist() == [1] * 5  # sample 2's state is far above both targets: always label 1


# ------------------------------------------------------------------ the examples' models


def test_digits_cnn_removal_modes():
    from components.digits.model import DigitsCNN

    x = torch.randn(3, 1, 8, 8)
    torch.manual_seed(0)
    base = DigitsCNN(batch_norm="keep", residual="keep")
    torch.manual_seed(0)
    no_bn = DigitsCNN(batch_norm="identity", residual="keep")
    torch.manual_seed(0)
    skip = DigitsCNN(batch_norm="keep", residual="skip")
    for model in (base, no_bn, skip):
        assert model(x).shape == (3, 10)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in no_bn.modules())
    assert sum(p.numel() for p in skip.parameters()) < sum(p.numel() for p in base.parameters())
    # Same initial weights for the parts a variant keeps.
    assert torch.equal(base.head[-1].weight, skip.head[-1].weight)
    assert torch.equal(base.block.body.shortcut.weight, skip.block.body.weight)
    with pytest.raises(ValueError, match="output shape == input"):
        DigitsCNN(residual="identity")(x)


def test_chord_model_removed_head_is_gone_from_optimizer_and_loss():
    from components.chord.model import ChordModel

    torch.manual_seed(0)
    both = ChordModel(32, 16, 0.0, ctc_head=True, ar_head=True)
    torch.manual_seed(0)
    ctc_only = ChordModel(32, 16, 0.0, ctc_head=True, ar_head=False)
    assert ctc_only.head_names == ("ctc",)
    assert trainable_parameters(ctc_only) == list(ctc_only.heads.heads["ctc"].parameters())
    for (name_a, a), (name_b, b) in zip(
        both.heads.heads["ctc"].named_parameters(), ctc_only.heads.heads["ctc"].named_parameters()
    ):
        assert name_a == name_b and torch.equal(a, b)
    batch = {
        "features": torch.randn(2, 12, 32),
        "frames": torch.randint(0, 25, (2, 12)),
        "segments": [[3, 4], [7]],
    }
    _, terms = ctc_only.loss(ctc_only(batch), batch)
    assert set(terms) == {"ctc"}
    _, terms = both.loss(both(batch), batch)
    assert set(terms) == {"ctc", "ar"}
