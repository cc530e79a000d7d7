from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from rl4pix_core.errors import InvalidInputError
from rl4pix_core.reward import (
    RewardBreakdown,
    RewardConfig,
    attention_similarity,
    clip_loss,
    compute_reward,
    compute_rewards,
    mask_to_attention_grid,
    reward_tensors,
)


def _warnings(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]


def test_grid_area_average():
    mask = torch.zeros(4, 4)
    mask[:2, :2] = 1.0
    mask[2, 2] = 1.0
    grid = mask_to_attention_grid(mask, (2, 2))
    assert torch.allclose(grid, torch.tensor([[1.0, 0.0], [0.0, 0.25]]))


def test_grid_not_divisible():
    mask = np.zeros((5, 5), dtype=np.float32)
    mask[0, 0] = 1.0
    grid = mask_to_attention_grid(mask, (2, 2))
    # Adaptive pooling of 5 to 2 uses the overlapping bins 0..2 and 2..4 (3 pixels each).
    assert grid[0, 0].item() == pytest.approx(1 / 9)
    assert grid[1, 1].item() == 0.0


def test_grid_keeps_batch():
    grid = mask_to_attention_grid(torch.ones(3, 16, 12), (4, 3))
    assert grid.shape == (3, 4, 3)
    assert torch.all(grid == 1.0)


def test_grid_nan_counts_as_zero():
    mask = torch.ones(2, 2)
    mask[0, 0] = float("nan")
    assert mask_to_attention_grid(mask, (1, 1)).item() == pytest.approx(0.75)


def test_cosine_hand_computed():
    attention = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    mask = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    assert attention_similarity(attention, mask).tolist() == pytest.approx([0.5])


def test_cosine_scale_invariant():
    attention = torch.rand(2, 8, 8)
    assert torch.allclose(attention_similarity(attention * 7.0, attention), torch.ones(2))


def test_cosine_unbatched():
    assert attention_similarity(torch.ones(4, 4), torch.ones(4, 4)).shape == (1,)


def test_empty_mask_gives_zero(caplog):
    attention = torch.rand(2, 4, 4)
    masks = torch.ones(2, 4, 4)
    masks[1] = 0.0
    with caplog.at_level(logging.WARNING):
        similarity = attention_similarity(attention, masks)
    assert similarity[1].item() == 0.0
    assert similarity[0].item() > 0.0
    assert any("mask is empty" in message for message in _warnings(caplog))


def test_zero_attention_gives_zero(caplog):
    with caplog.at_level(logging.WARNING):
        similarity = attention_similarity(torch.zeros(1, 4, 4), torch.ones(1, 4, 4))
    assert similarity.item() == 0.0
    assert any("attention map is all zeros" in message for message in _warnings(caplog))


def test_nan_attention_finite(caplog):
    attention = torch.ones(1, 2, 2)
    attention[0, 0, 0] = float("nan")
    with caplog.at_level(logging.WARNING):
        similarity = attention_similarity(attention, torch.ones(1, 2, 2))
    assert similarity.item() == pytest.approx(3 / math.sqrt(3 * 4))
    assert any("NaN" in message for message in _warnings(caplog))


def test_similarity_shape_mismatch_rejected():
    with pytest.raises(InvalidInputError, match="mask_to_attention_grid"):
        attention_similarity(torch.ones(1, 4, 4), torch.ones(1, 8, 8))


def test_clip_loss_hand_computed():
    inputs = torch.zeros(1, 3, 2, 2)
    outputs = torch.tensor([0.05, 0.2, 0.5, 0.1]).view(1, 1, 2, 2).expand(1, 3, 2, 2)
    # 0.05 and 0.1 are not above the threshold 0.1; 0.2 and 0.5 count fully: (0.2 + 0.5) / 4.
    assert clip_loss(inputs, outputs, threshold=0.1).tolist() == pytest.approx([0.175])


def test_clip_loss_zero_threshold_is_mae():
    inputs = torch.rand(2, 3, 4, 4)
    outputs = torch.rand(2, 3, 4, 4)
    expected = (inputs - outputs).abs().flatten(1).mean(dim=1)
    assert torch.allclose(clip_loss(inputs, outputs, threshold=0.0), expected)


def test_clip_loss_identical_is_zero():
    images = torch.rand(2, 3, 4, 4)
    assert clip_loss(images, images).tolist() == [0.0, 0.0]


def test_clip_loss_nan_pixel_is_max_difference(caplog):
    inputs = torch.zeros(1, 3, 2, 2)
    outputs = torch.zeros(1, 3, 2, 2)
    outputs[0, 1, 0, 0] = float("nan")
    with caplog.at_level(logging.WARNING):
        loss = clip_loss(inputs, outputs)
    assert loss.item() == pytest.approx(1 / 12)
    assert any("non-finite pixel" in message for message in _warnings(caplog))


def test_clip_loss_shape_mismatch_rejected():
    with pytest.raises(InvalidInputError, match="equal shapes"):
        clip_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 8, 8))


def test_rewards_total_combines_terms():
    attention = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    mask = torch.zeros(1, 4, 4)
    mask[0, :2, :] = 1.0  # pools to [[1, 1], [0, 0]]
    inputs = torch.zeros(1, 3, 4, 4)
    outputs = torch.zeros(1, 3, 4, 4)
    outputs[0, :, 0, 0] = 0.8  # 3 of 48 values differ by 0.8
    (reward,) = compute_rewards(attention, mask, inputs, outputs)
    assert reward.attention_similarity == pytest.approx(0.5)
    assert reward.clip_loss == pytest.approx(0.8 * 3 / 48)
    assert reward.total == pytest.approx(0.5 - 0.8 * 3 / 48)


def test_rewards_use_config_weights():
    attention = torch.rand(2, 4, 4)
    masks = torch.rand(2, 16, 16)
    inputs = torch.rand(2, 3, 16, 16)
    outputs = torch.rand(2, 3, 16, 16)
    config = RewardConfig(attention_weight=2.0, mae_weight=-0.5, mae_threshold=0.3)
    tensors = reward_tensors(attention, masks, inputs, outputs, config)
    expected = 2.0 * tensors["attention_similarity"] - 0.5 * tensors["clip_loss"]
    assert torch.allclose(tensors["total"], expected)
    assert torch.allclose(tensors["clip_loss"], clip_loss(inputs, outputs, threshold=0.3))


def test_reward_tensors_shapes_finite():
    tensors = reward_tensors(
        torch.rand(3, 8, 8), torch.rand(3, 32, 32), torch.rand(3, 3, 32, 32), torch.rand(3, 3, 32, 32)
    )
    assert set(tensors) == {"attention_similarity", "clip_loss", "total"}
    for value in tensors.values():
        assert value.shape == (3,)
        assert torch.isfinite(value).all()


def test_rewards_degenerate_batch_finite(caplog):
    attention = torch.zeros(2, 4, 4)
    attention[1] = float("nan")
    masks = torch.zeros(2, 16, 16)
    outputs = torch.full((2, 3, 16, 16), float("nan"))
    with caplog.at_level(logging.WARNING):
        rewards = compute_rewards(attention, masks, torch.zeros(2, 3, 16, 16), outputs)
    for reward in rewards:
        assert math.isfinite(reward.total)
        assert reward.attention_similarity == 0.0
        assert reward.clip_loss == 1.0
    assert len(_warnings(caplog)) >= 3


def test_rewards_masks_of_different_sizes():
    masks = [np.ones((16, 16), dtype=np.float32), np.ones((20, 12), dtype=np.float32)]
    rewards = compute_rewards(torch.ones(2, 4, 4), masks, torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8))
    assert [reward.attention_similarity for reward in rewards] == pytest.approx([1.0, 1.0])


def test_rewards_batch_mismatch_rejected():
    with pytest.raises(InvalidInputError, match="batch sizes differ"):
        reward_tensors(
            torch.ones(2, 4, 4), torch.ones(2, 8, 8), torch.zeros(3, 3, 8, 8), torch.zeros(3, 3, 8, 8)
        )


def test_single_reward():
    reward = compute_reward(
        torch.ones(4, 4), np.ones((8, 8), dtype=np.float32), torch.zeros(3, 8, 8), torch.zeros(3, 8, 8)
    )
    assert isinstance(reward, RewardBreakdown)
    assert reward.as_dict() == {
        "attention_similarity": pytest.approx(1.0),
        "clip_loss": 0.0,
        "total": pytest.approx(1.0),
    }


def test_config_defaults():
    config = RewardConfig()
    assert config.attention_weight == 1.0
    assert config.mae_weight == -1.0
    assert 0.0 < config.mae_threshold < 1.0


@pytest.mark.parametrize("field", ["attention_weight", "mae_weight", "mae_threshold"])
def test_config_non_finite_rejected(field):
    with pytest.raises(InvalidInputError, match=field):
        RewardConfig(**{field: float("nan")})


def test_config_threshold_range_rejected():
    with pytest.raises(InvalidInputError, match="mae_threshold"):
        RewardConfig(mae_threshold=1.5)
