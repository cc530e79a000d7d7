"""The InstructRL4Pix reward: attention-map similarity to the edit mask, minus a clipped MAE.

For one edit with cross-attention map A (at attention resolution), edit mask M (1 = edit, pooled to
A's grid), input image x and output image y, both in [0, 1]:

    reward = attention_weight * cos(A, M) + mae_weight * clip_loss(x, y)
    clip_loss(x, y) = mean over pixels and channels of |x - y| * [|x - y| > mae_threshold]

With the defaults (1, -1) the policy is rewarded for attending where the mask is and penalized for
large pixel changes. Every function returns finite values: degenerate inputs are mapped to
documented constants and logged as a WARNING, so PPO never gets a NaN reward from them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from rl4pix_core.errors import InvalidInputError
from rl4pix_core.reward_defaults import DEFAULT_ATTENTION_WEIGHT, DEFAULT_MAE_THRESHOLD, DEFAULT_MAE_WEIGHT

logger = logging.getLogger(__name__)

# The difference assigned to a pixel where the input or output is NaN or infinite: the largest
# possible difference between two images in [0, 1].
NON_FINITE_PIXEL_DIFFERENCE = 1.0

MaskInput = torch.Tensor | np.ndarray | Sequence[np.ndarray] | Sequence[torch.Tensor]


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the two reward terms and the clip threshold of the MAE term.

    The defaults and the reason for the threshold's value are in `rl4pix_core.reward_defaults`.
    """

    attention_weight: float = DEFAULT_ATTENTION_WEIGHT
    mae_weight: float = DEFAULT_MAE_WEIGHT
    mae_threshold: float = DEFAULT_MAE_THRESHOLD

    def __post_init__(self) -> None:
        for name in ("attention_weight", "mae_weight", "mae_threshold"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise InvalidInputError(f"RewardConfig.{name} must be finite, got {value}")
        if not 0.0 <= self.mae_threshold < 1.0:
            raise InvalidInputError(
                f"RewardConfig.mae_threshold must be in [0, 1) (pixel units), got {self.mae_threshold}"
            )


@dataclass(frozen=True)
class RewardBreakdown:
    """The reward of one edit and its two terms, before weighting."""

    attention_similarity: float
    clip_loss: float
    total: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _as_float_tensor(value: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value)).to(torch.float32)
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float32)
    raise InvalidInputError(f"{name} must be a tensor or numpy array, got {type(value).__name__}")


def mask_to_attention_grid(mask: torch.Tensor | np.ndarray, grid_hw: tuple[int, int]) -> torch.Tensor:
    """Pool a mask [H, W] or [B, H, W] to the attention grid (h, w) by area averaging.

    Each grid cell gets the fraction of its pixels that are marked (adaptive average pooling, so H
    and W need not be multiples of h and w). NaN mask values count as 0 and values are clamped to
    [0, 1]. Returns float32 with the same leading shape as the input.
    """
    tensor = _as_float_tensor(mask, "mask")
    if tensor.ndim not in (2, 3):
        raise InvalidInputError(f"mask must have shape [H, W] or [B, H, W], got {list(tensor.shape)}")
    height, width = int(grid_hw[0]), int(grid_hw[1])
    if height < 1 or width < 1:
        raise InvalidInputError(f"attention grid must have positive sides, got {grid_hw}")
    tensor = torch.nan_to_num(tensor, nan=0.0, posinf=1.0, neginf=0.0).clamp(0.0, 1.0)
    batched = tensor if tensor.ndim == 3 else tensor.unsqueeze(0)
    pooled = F.adaptive_avg_pool2d(batched.unsqueeze(1), (height, width)).squeeze(1)
    return pooled if tensor.ndim == 3 else pooled[0]


def _batched(tensor: torch.Tensor, name: str) -> torch.Tensor:
    if tensor.ndim == 2:
        return tensor.unsqueeze(0)
    if tensor.ndim != 3:
        raise InvalidInputError(f"{name} must have shape [B, h, w] or [h, w], got {list(tensor.shape)}")
    return tensor


def attention_similarity(attention_map: torch.Tensor, mask_grid: torch.Tensor) -> torch.Tensor:
    """Return the cosine similarity of each flattened attention map and mask grid, shape [B].

    Inputs are [B, h, w] (or [h, w], giving [1]) with equal shapes. Edge cases, each logged as a
    WARNING: NaN or infinite attention or mask values count as 0; a map or mask that is all zeros (for a
    mask: nothing to edit) has no direction, so its similarity is 0, the value of an uninformative
    map, rather than NaN.
    """
    attention = _batched(_as_float_tensor(attention_map, "attention_map"), "attention_map")
    mask = _batched(_as_float_tensor(mask_grid, "mask_grid"), "mask_grid")
    if attention.shape != mask.shape:
        raise InvalidInputError(
            f"attention map shape {list(attention.shape)} differs from mask grid shape {list(mask.shape)}; "
            "pool the mask with mask_to_attention_grid(mask, attention_map.shape[-2:])"
        )
    if not torch.isfinite(attention).all():
        logger.warning("attention map contains NaN or infinite values; counting them as 0")
        attention = torch.nan_to_num(attention, nan=0.0, posinf=0.0, neginf=0.0)
    if not torch.isfinite(mask).all():
        logger.warning("mask grid contains NaN or infinite values; counting them as 0")
        mask = torch.nan_to_num(mask, nan=0.0, posinf=0.0, neginf=0.0)

    attention = attention.flatten(1).to(torch.float64)
    mask = mask.to(attention.device).flatten(1).to(torch.float64)
    attention_norm = attention.norm(dim=1)
    mask_norm = mask.norm(dim=1)
    _warn_zero_rows(mask_norm, "edit mask is empty (all zeros)")
    _warn_zero_rows(attention_norm, "attention map is all zeros")

    denominator = attention_norm * mask_norm
    valid = denominator > 0
    cosine = (attention * mask).sum(dim=1) / torch.where(valid, denominator, torch.ones_like(denominator))
    cosine = torch.where(valid, cosine, torch.zeros_like(cosine))
    return cosine.clamp(-1.0, 1.0).to(torch.float32)


def _warn_zero_rows(norms: torch.Tensor, description: str) -> None:
    zero_rows = (norms == 0).nonzero().flatten().tolist()
    if zero_rows:
        logger.warning(
            "%s for batch items %s of %d; their attention similarity is set to 0",
            description,
            zero_rows,
            norms.shape[0],
        )


def clip_loss(
    input_images: torch.Tensor,
    output_images: torch.Tensor,
    threshold: float = RewardConfig.mae_threshold,
) -> torch.Tensor:
    """Return the clipped MAE of each image pair, shape [B].

    Images are [B, 3, H, W] (or [3, H, W]) in [0, 1] with equal shapes. Per-pixel, per-channel
    differences |input - output| at or below `threshold` count as 0, the rest count fully, and the
    result is the mean over channels and pixels. Where either image is NaN or infinite the difference
    is NON_FINITE_PIXEL_DIFFERENCE (1.0, the maximum), logged as a WARNING: a broken output is
    penalized as much as possible instead of poisoning the batch.
    """
    inputs = _as_float_tensor(input_images, "input_images")
    outputs = _as_float_tensor(output_images, "output_images").to(inputs.device)
    if inputs.ndim == 3:
        inputs = inputs.unsqueeze(0)
    if outputs.ndim == 3:
        outputs = outputs.unsqueeze(0)
    if inputs.shape != outputs.shape or inputs.ndim != 4:
        raise InvalidInputError(
            f"input images {list(inputs.shape)} and output images {list(outputs.shape)} must both be "
            "[B, 3, H, W] with equal shapes; resize the output to the input size first"
        )

    difference = (inputs - outputs).abs()
    non_finite = ~torch.isfinite(difference)
    if non_finite.any():
        per_item = non_finite.flatten(1).sum(dim=1).tolist()
        logger.warning(
            "non-finite pixel values in reward images (count per batch item: %s); "
            "counting them as a difference of %.1f",
            per_item,
            NON_FINITE_PIXEL_DIFFERENCE,
        )
        difference = torch.where(
            non_finite, torch.full_like(difference, NON_FINITE_PIXEL_DIFFERENCE), difference
        )
    clipped = torch.where(difference > threshold, difference, torch.zeros_like(difference))
    return clipped.flatten(1).mean(dim=1)


def _mask_grids(masks: MaskInput, grid_hw: tuple[int, int]) -> torch.Tensor:
    if isinstance(masks, (torch.Tensor, np.ndarray)):
        grids = mask_to_attention_grid(masks, grid_hw)
        return grids if grids.ndim == 3 else grids.unsqueeze(0)
    # A list of masks may hold different sizes, so each is pooled on its own.
    return torch.stack([mask_to_attention_grid(mask, grid_hw) for mask in masks])


def reward_tensors(
    attention_maps: torch.Tensor,
    masks: MaskInput,
    input_images: torch.Tensor,
    output_images: torch.Tensor,
    config: RewardConfig | None = None,
) -> dict[str, torch.Tensor]:
    """Compute the reward terms of a batch as float32 tensors [B] for PPO.

    `attention_maps` is [B, h, w]. `masks` is [B, H, W] at any size, or a list of [H, W] arrays,
    and is pooled to (h, w). Images are [B, 3, H, W] in [0, 1]. Returns the keys
    "attention_similarity", "clip_loss" and "total", all finite.
    """
    config = config or RewardConfig()
    attention = _batched(_as_float_tensor(attention_maps, "attention_maps"), "attention_maps")
    grids = _mask_grids(masks, (attention.shape[-2], attention.shape[-1]))
    similarity = attention_similarity(attention, grids)
    losses = clip_loss(input_images, output_images, config.mae_threshold).to(similarity.device)
    if similarity.shape != losses.shape:
        raise InvalidInputError(
            f"batch sizes differ: {similarity.shape[0]} attention maps and masks, {losses.shape[0]} image pairs"
        )
    total = config.attention_weight * similarity + config.mae_weight * losses
    return {"attention_similarity": similarity, "clip_loss": losses, "total": total}


def compute_rewards(
    attention_maps: torch.Tensor,
    masks: MaskInput,
    input_images: torch.Tensor,
    output_images: torch.Tensor,
    config: RewardConfig | None = None,
) -> list[RewardBreakdown]:
    """Compute one `RewardBreakdown` per batch item; arguments as in `reward_tensors`."""
    tensors = reward_tensors(attention_maps, masks, input_images, output_images, config)
    rows = zip(
        tensors["attention_similarity"].tolist(), tensors["clip_loss"].tolist(), tensors["total"].tolist()
    )
    return [RewardBreakdown(attention_similarity=s, clip_loss=c, total=t) for s, c, t in rows]


def compute_reward(
    attention_map: torch.Tensor,
    mask: torch.Tensor | np.ndarray,
    input_image: torch.Tensor,
    output_image: torch.Tensor,
    config: RewardConfig | None = None,
) -> RewardBreakdown:
    """Compute the reward of one edit: attention map [h, w], mask [H, W], images [3, H, W] in [0, 1]."""
    attention = _as_float_tensor(attention_map, "attention_map")
    return compute_rewards(
        attention.unsqueeze(0) if attention.ndim == 2 else attention,
        [_as_float_tensor(mask, "mask")],
        input_image.unsqueeze(0) if input_image.ndim == 3 else input_image,
        output_image.unsqueeze(0) if output_image.ndim == 3 else output_image,
        config,
    )[0]
