"""The PPO clipped surrogate loss against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from rl4pix_core.ppo.loss import ppo_loss


def test_ppo_loss_hand_computed():
    log_prob = torch.tensor([0.1, -0.2, 0.0])
    old_log_prob = torch.zeros(3)
    advantages = torch.tensor([1.0, -2.0, 10.0])  # 10 is clipped to adv_clip_max = 5

    loss, info = ppo_loss(log_prob, old_log_prob, advantages, clip_range=0.05, adv_clip_max=5.0)

    # ratios e^0.1, e^-0.2, 1 clip to 1.05, 0.95, 1. Per sample, the larger of -A*ratio and
    # -A*clipped_ratio is -1.05, 1.9 and -5.
    assert loss.item() == pytest.approx((-1.05 + 1.9 - 5.0) / 3, abs=1e-6)
    assert info["approx_kl"].item() == pytest.approx(0.5 * (0.01 + 0.04 + 0.0) / 3, abs=1e-7)
    assert info["clipfrac"].item() == pytest.approx(2 / 3)
    assert info["ratio"].item() == pytest.approx((math.exp(0.1) + math.exp(-0.2) + 1.0) / 3, abs=1e-6)


def test_ppo_loss_ratio_one_is_policy_gradient():
    log_prob = torch.zeros(4, requires_grad=True)
    advantages = torch.tensor([1.0, -1.0, 2.0, 0.5])

    loss, info = ppo_loss(log_prob, log_prob.detach(), advantages, clip_range=1e-4, adv_clip_max=5.0)
    loss.backward()

    assert loss.item() == pytest.approx(-advantages.mean().item())
    assert torch.allclose(log_prob.grad, -advantages / 4)
    assert info["clipfrac"].item() == 0.0
    assert info["approx_kl"].item() == 0.0


def test_ppo_loss_clipped_sample_has_no_gradient():
    # A positive advantage with a ratio above 1 + clip_range: the clipped term is active and flat.
    log_prob = torch.tensor([0.5], requires_grad=True)

    loss, _ = ppo_loss(log_prob, torch.zeros(1), torch.tensor([1.0]), clip_range=0.1, adv_clip_max=5.0)
    loss.backward()

    assert loss.item() == pytest.approx(-1.1)
    assert log_prob.grad.item() == 0.0


def test_ppo_loss_info_is_detached():
    log_prob = torch.zeros(2, requires_grad=True)

    _, info = ppo_loss(log_prob, torch.zeros(2), torch.ones(2), clip_range=0.1, adv_clip_max=5.0)

    for name, value in info.items():
        assert not value.requires_grad, name
