"""A worker runs one trial after another: each trial's seeding applies its own reproducibility setting."""

from __future__ import annotations

import torch

from orchestrator.trial import set_seeds


def test_deterministic_algorithms_follow_each_trials_setting_in_a_reused_worker():
    before = torch.are_deterministic_algorithms_enabled()
    try:
        set_seeds(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        set_seeds(1, deterministic=False)  # the next trial in the same worker process
        assert not torch.are_deterministic_algorithms_enabled()
        set_seeds(2, deterministic=False)
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before)
