"""Per-prompt reward normalization: rewards become advantages.

Each key is an (image id, instruction) pair, so an edit is compared with earlier samples of the same
edit and not with edits that are easier or harder. A key with fewer than `min_count` rewards in its
buffer is normalized with the statistics of the whole batch instead.

The standard deviation is the population one (numpy's ddof=0). The advantages normalize exactly
the rewards in the buffer or batch rather than estimate a wider distribution, and the population
form stays defined for a single reward, where it is 0 and so gives a zero advantage.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from rl4pix_core.errors import RewardError
from rl4pix_core.ppo.config import TrainConfig

logger = logging.getLogger(__name__)

# A standard deviation at or below this is treated as zero: the rewards carry no ranking.
ZERO_STD = 1e-6

PromptKey = tuple[str, str]


class PerPromptStatTracker:
    """Buffers of recent rewards per (image id, instruction) key, turned into advantages."""

    def __init__(self, buffer_size: int, min_count: int, max_nonfinite_batches: int = 3) -> None:
        self.buffer_size = buffer_size
        self.min_count = min_count
        self.max_nonfinite_batches = max_nonfinite_batches
        self.buffers: dict[PromptKey, deque[float]] = {}
        self.nonfinite_total = 0
        self.nonfinite_streak = 0

    def update(self, keys: Sequence[PromptKey], rewards: Sequence[float] | np.ndarray) -> np.ndarray:
        """Add a batch of rewards and return their advantages, float64 [N].

        Non-finite rewards are left out of every statistic and get advantage 0. A batch with any of
        them counts as bad, and `max_nonfinite_batches` bad batches in a row raise RewardError.
        """
        rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
        keys = [(str(image_id), str(instruction)) for image_id, instruction in keys]
        if len(keys) != len(rewards):
            raise ValueError(f"got {len(keys)} keys for {len(rewards)} rewards; pass one key per reward")

        finite = np.isfinite(rewards)
        self._count_nonfinite(keys, finite)
        advantages = np.zeros_like(rewards)
        if not finite.any():
            return advantages

        batch_mean, batch_std = _mean_std(rewards[finite])
        for key in dict.fromkeys(keys):
            rows = np.array([index for index, row_key in enumerate(keys) if row_key == key and finite[index]])
            if rows.size == 0:
                continue
            buffer = self.buffers.setdefault(key, deque(maxlen=self.buffer_size))
            buffer.extend(rewards[rows].tolist())
            if len(buffer) < self.min_count:
                mean, std = batch_mean, batch_std
            else:
                mean, std = _mean_std(np.asarray(buffer))
            advantages[rows] = self._normalize(rewards[rows], mean, std, key)
        return advantages

    def _count_nonfinite(self, keys: list[PromptKey], finite: np.ndarray) -> None:
        bad = int((~finite).sum())
        if bad == 0:
            self.nonfinite_streak = 0
            return
        self.nonfinite_total += bad
        self.nonfinite_streak += 1
        bad_keys = [keys[index] for index in np.flatnonzero(~finite)]
        logger.warning(
            "dropped %d non-finite rewards (keys %s); %d in total, %d bad batches in a row",
            bad,
            bad_keys[:4],
            self.nonfinite_total,
            self.nonfinite_streak,
        )
        if self.nonfinite_streak >= self.max_nonfinite_batches:
            raise RewardError(
                f"{self.nonfinite_streak} batches in a row had non-finite rewards (last keys {bad_keys[:4]}); "
                "check the reward inputs (attention maps, images) or lower the learning rate"
            )

    @staticmethod
    def _normalize(rewards: np.ndarray, mean: float, std: float, key: PromptKey) -> np.ndarray:
        if std <= ZERO_STD:
            logger.warning("reward std %.3g is zero for key %s; its advantages are 0", std, key)
            return np.zeros_like(rewards)
        return (rewards - mean) / std

    def stats(self) -> dict[str, float]:
        """Return counters for logging: tracked keys and non-finite rewards seen."""
        return {"tracked_keys": float(len(self.buffers)), "nonfinite_rewards": float(self.nonfinite_total)}

    def state_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable state for checkpoints."""
        return {
            "buffer_size": self.buffer_size,
            "min_count": self.min_count,
            "nonfinite_total": self.nonfinite_total,
            "nonfinite_streak": self.nonfinite_streak,
            "buffers": [
                [image_id, instruction, list(buffer)]
                for (image_id, instruction), buffer in self.buffers.items()
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the buffers and counters; the buffer size of this tracker wins over the saved one."""
        self.nonfinite_total = int(state["nonfinite_total"])
        self.nonfinite_streak = int(state["nonfinite_streak"])
        self.buffers = {
            (image_id, instruction): deque((float(value) for value in values), maxlen=self.buffer_size)
            for image_id, instruction, values in state["buffers"]
        }


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values))


def warn_if_degenerate(
    config: TrainConfig, num_processes: int = 1, num_prompts: int | None = None
) -> list[str]:
    """Log and return a warning for each setting that makes every advantage (or the reward) constant.

    The tracker sees all samples of an epoch at once, gathered from every process. With a single
    sample per epoch the batch statistics have std 0, so a prompt gets nonzero advantages only once
    its own buffer contains at least two rewards and has reached `min_count`.
    """
    tracking = config.per_prompt_stat_tracking
    samples_per_epoch = config.sample.batch_size * config.sample.num_batches_per_epoch * num_processes
    warnings: list[str] = []

    if config.reward.attention_weight == 0 and config.reward.mae_weight == 0:
        warnings.append("reward.attention_weight and reward.mae_weight are both 0: the reward is constant")

    per_prompt_reachable = tracking.buffer_size >= max(tracking.min_count, 2)
    if tracking.buffer_size < 2 and tracking.min_count <= tracking.buffer_size:
        warnings.append(
            f"per_prompt_stat_tracking.buffer_size {tracking.buffer_size} keeps one reward per prompt, so "
            "per-prompt std is 0 and every advantage is 0; raise buffer_size to 2 or more"
        )
    if samples_per_epoch == 1:
        if not per_prompt_reachable:
            warnings.append(
                "one sample per epoch and per-prompt statistics that never apply (buffer_size "
                f"{tracking.buffer_size} < max(min_count {tracking.min_count}, 2)): every advantage is 0; "
                "raise sample.batch_size or sample.num_batches_per_epoch"
            )
        else:
            warnings.append(
                "one sample per epoch: advantages are 0 until a prompt has been sampled "
                f"{max(tracking.min_count, 2)} times; raise sample.batch_size or sample.num_batches_per_epoch"
            )
            if num_prompts is not None:
                visits = config.num_epochs / max(num_prompts, 1)
                if visits < max(tracking.min_count, 2):
                    warnings.append(
                        f"with {num_prompts} prompts and {config.num_epochs} epochs each prompt is sampled about "
                        f"{visits:.1f} times, fewer than min_count {tracking.min_count}: every advantage is 0"
                    )

    for message in warnings:
        logger.warning("degenerate training config: %s", message)
    return warnings
