"""Per-prompt advantages, non-finite rewards and degenerate-config warnings."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from rl4pix_core.errors import RewardError
from rl4pix_core.ppo.config import load_config
from rl4pix_core.ppo.stat_tracking import PerPromptStatTracker, warn_if_degenerate

A = ("img-a", "make it blue")
B = ("img-b", "add a hat")


def test_tracker_below_min_count_uses_batch_stats():
    tracker = PerPromptStatTracker(buffer_size=16, min_count=16)
    rewards = np.array([1.0, 2.0, 3.0, 6.0])

    advantages = tracker.update([A, A, B, B], rewards)

    expected = (rewards - rewards.mean()) / rewards.std()  # population std, ddof=0
    assert np.allclose(advantages, expected)


def test_tracker_at_min_count_uses_prompt_buffer():
    tracker = PerPromptStatTracker(buffer_size=16, min_count=2)
    tracker.update([A, B], [0.0, 100.0])

    advantages = tracker.update([A, B], [2.0, 50.0])

    # A's buffer is [0, 2] and B's is [100, 50]: each is normalized within its own prompt.
    assert np.allclose(advantages, [1.0, -1.0])


def test_tracker_buffer_keeps_last_rewards():
    tracker = PerPromptStatTracker(buffer_size=3, min_count=1)
    tracker.update([A] * 5, [1.0, 2.0, 3.0, 4.0, 5.0])

    assert list(tracker.buffers[A]) == [3.0, 4.0, 5.0]


def test_tracker_zero_std_gives_zero_advantages(caplog):
    tracker = PerPromptStatTracker(buffer_size=16, min_count=16)

    with caplog.at_level(logging.WARNING, logger="rl4pix_core.ppo.stat_tracking"):
        advantages = tracker.update([A, B], [0.7, 0.7])

    assert np.array_equal(advantages, [0.0, 0.0])
    assert "std" in caplog.text


def test_tracker_single_sample_gives_zero_advantage():
    tracker = PerPromptStatTracker(buffer_size=16, min_count=16)

    assert np.array_equal(tracker.update([A], [0.3]), [0.0])


def test_tracker_drops_nonfinite_rewards(caplog):
    tracker = PerPromptStatTracker(buffer_size=16, min_count=16)

    with caplog.at_level(logging.WARNING, logger="rl4pix_core.ppo.stat_tracking"):
        advantages = tracker.update([A, A, B, B], [1.0, np.nan, 3.0, np.inf])

    assert advantages[1] == 0.0
    assert advantages[3] == 0.0
    assert np.allclose(advantages[[0, 2]], [-1.0, 1.0])  # statistics of [1, 3] only
    assert list(tracker.buffers[A]) == [1.0]
    assert tracker.nonfinite_total == 2
    assert "non-finite" in caplog.text


def test_tracker_all_nonfinite_batch():
    tracker = PerPromptStatTracker(buffer_size=16, min_count=16)

    advantages = tracker.update([A, B], [np.nan, np.nan])

    assert np.array_equal(advantages, [0.0, 0.0])
    assert tracker.buffers == {}


def test_tracker_raises_after_bad_batches_in_row():
    tracker = PerPromptStatTracker(buffer_size=16, min_count=16, max_nonfinite_batches=3)
    tracker.update([A, B], [np.nan, 1.0])
    tracker.update([A, B], [np.nan, 1.0])

    with pytest.raises(RewardError, match="3 batches in a row"):
        tracker.update([A, B], [1.0, -np.inf])


def test_tracker_clean_batch_resets_streak():
    tracker = PerPromptStatTracker(buffer_size=16, min_count=16, max_nonfinite_batches=2)
    tracker.update([A, B], [np.nan, 1.0])
    tracker.update([A, B], [0.0, 1.0])

    tracker.update([A, B], [np.nan, 1.0])

    assert tracker.nonfinite_streak == 1


def test_tracker_rejects_mismatched_lengths():
    tracker = PerPromptStatTracker(buffer_size=16, min_count=16)

    with pytest.raises(ValueError, match="2 keys for 3 rewards"):
        tracker.update([A, B], [1.0, 2.0, 3.0])


def test_tracker_state_round_trip():
    tracker = PerPromptStatTracker(buffer_size=4, min_count=2)
    tracker.update([A, B, A], [1.0, 2.0, np.nan])
    restored = PerPromptStatTracker(buffer_size=4, min_count=2)

    restored.load_state_dict(tracker.state_dict())

    assert restored.state_dict() == tracker.state_dict()
    assert np.array_equal(restored.update([A, B], [3.0, 5.0]), tracker.update([A, B], [3.0, 5.0]))


def test_degenerate_paper_defaults_clean():
    assert warn_if_degenerate(load_config(None, [])) == []


def test_degenerate_one_sample_per_epoch():
    config = load_config(None, ["sample.num_batches_per_epoch=1"])

    warnings = warn_if_degenerate(config, num_processes=1)

    assert any("one sample per epoch" in message for message in warnings)


def test_degenerate_one_sample_two_processes_clean():
    config = load_config(None, ["sample.num_batches_per_epoch=1"])

    assert warn_if_degenerate(config, num_processes=2) == []


def test_degenerate_one_sample_unreachable_buffer():
    config = load_config(None, ["sample.num_batches_per_epoch=1", "per_prompt_stat_tracking.buffer_size=4"])

    warnings = warn_if_degenerate(config)

    assert any("every advantage is 0" in message for message in warnings)


def test_degenerate_too_few_visits():
    config = load_config(None, ["sample.num_batches_per_epoch=1", "num_epochs=100"])

    warnings = warn_if_degenerate(config, num_prompts=50)

    assert any("sampled about 2.0 times" in message for message in warnings)


def test_degenerate_buffer_of_one():
    config = load_config(
        None, ["per_prompt_stat_tracking.buffer_size=1", "per_prompt_stat_tracking.min_count=1"]
    )

    warnings = warn_if_degenerate(config)

    assert any("keeps one reward per prompt" in message for message in warnings)


def test_degenerate_constant_reward():
    config = load_config(None, ["reward.attention_weight=0", "reward.mae_weight=0"])

    warnings = warn_if_degenerate(config)

    assert any("reward is constant" in message for message in warnings)
