"""The PPO clipped surrogate loss for one denoising step of a batch of trajectories."""

from __future__ import annotations

import torch


def ppo_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    clip_range: float,
    adv_clip_max: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Compute the clipped surrogate loss, to minimize, and detached diagnostics.

    All inputs are [B]. Advantages are clipped to +-adv_clip_max first. The loss is
    mean(max(-A * ratio, -A * clip(ratio, 1 - clip_range, 1 + clip_range))) with
    ratio = exp(log_prob - old_log_prob).

    `info` contains `approx_kl`, the k2 estimator 0.5 * mean((log_prob - old_log_prob)^2) of
    KL(old || new) from John Schulman's note "Approximating KL Divergence". It is never negative and
    is close to the true KL while the ratio is near 1. `clipfrac` is the fraction of samples whose
    ratio lies outside [1 - clip_range, 1 + clip_range], and `ratio` is the mean ratio.
    """
    advantages = torch.clamp(advantages, -adv_clip_max, adv_clip_max)
    log_ratio = log_prob - old_log_prob
    ratio = torch.exp(log_ratio)

    unclipped_loss = -advantages * ratio
    clipped_loss = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = torch.mean(torch.maximum(unclipped_loss, clipped_loss))

    with torch.no_grad():
        info = {
            "approx_kl": 0.5 * torch.mean(log_ratio**2),
            "clipfrac": torch.mean((torch.abs(ratio - 1.0) > clip_range).float()),
            "ratio": torch.mean(ratio),
        }
    return loss, info
