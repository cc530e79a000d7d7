"""Capture of the UNet's cross-attention maps while it samples.

InstructRL4Pix rewards an edit by how well the instruction's cross-attention lines up with the
edit mask. `CrossAttentionCapture` installs an attention processor on every attention layer:

* self-attention, and cross-attention at other resolutions, keep torch's fused
  `scaled_dot_product_attention`;
* cross-attention layers at the captured resolution compute softmax(QK^T / sqrt(d)) explicitly,
  use it for their output, and add its mean over heads and instruction tokens to a running sum.

Only the text-conditioned branch of the three-way guidance batch (the first third) is recorded.
The running sum has one map per sample, so memory does not grow with the number of steps.
The processor calls `attn.to_q`, `to_k`, `to_v` and `to_out`, so an active peft LoRA applies.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from rl4pix_core.errors import InvalidInputError

logger = logging.getLogger(__name__)


def level_grids(latent_hw: tuple[int, int], levels: int = 5) -> dict[int, tuple[int, int]]:
    """Map each UNet downsampling factor (1, 2, 4, ...) to its feature grid for a latent of size `latent_hw`.

    A stride-2 convolution with padding 1 turns n into ceil(n / 2), so odd sizes round up.
    """
    height, width = latent_hw
    grids = {}
    for level in range(levels):
        grids[2**level] = (height, width)
        height, width = math.ceil(height / 2), math.ceil(width / 2)
    return grids


class AttentionStore:
    """Running sum of the captured cross-attention maps of one sampling run."""

    def __init__(self, downsample: int) -> None:
        self.downsample = downsample
        self.active = False
        self.grid: tuple[int, int] | None = None
        self.token_weights: torch.Tensor | None = None  # [B, L], each row sums to 1 over instruction tokens
        self.map_sum: torch.Tensor | None = None  # [B, h * w], float32
        self.count = 0

    def start(self, latent_hw: tuple[int, int], token_weights: torch.Tensor) -> None:
        """Reset the sums for a new run on latents of size `latent_hw`."""
        grids = level_grids(latent_hw)
        if self.downsample not in grids:
            raise InvalidInputError(
                f"attention_downsample={self.downsample} is not a UNet level: use one of {sorted(grids)}"
            )
        self.grid = grids[self.downsample]
        self.token_weights = token_weights.float()
        self.map_sum = torch.zeros(
            token_weights.shape[0], self.grid[0] * self.grid[1], device=token_weights.device
        )
        self.count = 0
        self.active = True

    def stop(self) -> None:
        self.active = False

    def wants(self, query_length: int) -> bool:
        return self.active and self.grid is not None and query_length == self.grid[0] * self.grid[1]

    def add(self, probs: torch.Tensor) -> None:
        """Add attention probabilities [B_total, heads, Nq, L] of one layer call; rows past B are ignored."""
        batch = self.map_sum.shape[0]
        text_branch = probs[:batch].float().mean(dim=1)  # [B, Nq, L]
        per_pixel = torch.einsum("bql,bl->bq", text_branch, self.token_weights)
        self.map_sum += per_pixel
        self.count += 1

    def result(self) -> torch.Tensor:
        """Return the mean map over layers and steps, shape [B, h, w], float32 on the CPU."""
        if self.map_sum is None or self.count == 0:
            raise InvalidInputError(
                f"no cross-attention layer ran at downsampling factor {self.downsample}: "
                "choose an attention_downsample at which the UNet has cross-attention"
            )
        maps = self.map_sum / self.count
        return maps.view(-1, *self.grid).cpu()


class CapturingAttnProcessor:
    """Attention processor that records cross-attention probabilities into an `AttentionStore`."""

    def __init__(self, store: AttentionStore) -> None:
        self.store = store

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        is_cross = encoder_hidden_states is not None
        context = encoder_hidden_states if is_cross else hidden_states
        if is_cross and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        batch_size, query_length, _ = hidden_states.shape
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, context.shape[1], batch_size)
            attention_mask = attention_mask.view(batch_size, attn.heads, -1, attention_mask.shape[-1])

        query = self._split_heads(attn, attn.to_q(hidden_states))
        key = self._split_heads(attn, attn.to_k(context))
        value = self._split_heads(attn, attn.to_v(context))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        if is_cross and self.store.wants(query_length):
            scores = torch.matmul(query.float(), key.float().transpose(-1, -2)) * attn.scale
            if attention_mask is not None:
                scores = scores + attention_mask.float()
            probs = scores.softmax(dim=-1)
            self.store.add(probs.detach())
            out = torch.matmul(probs.to(value.dtype), value)
        else:
            out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, scale=attn.scale)

        out = out.transpose(1, 2).reshape(batch_size, -1, attn.heads * out.shape[-1]).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if input_ndim == 4:
            out = out.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor

    @staticmethod
    def _split_heads(attn, tensor: torch.Tensor) -> torch.Tensor:
        batch_size = tensor.shape[0]
        head_dim = tensor.shape[-1] // attn.heads
        return tensor.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)


def install_capture(unet, downsample: int) -> AttentionStore:
    """Install a `CapturingAttnProcessor` on every attention layer of `unet` and return its store."""
    store = AttentionStore(downsample)
    unet.set_attn_processor(CapturingAttnProcessor(store))
    return store


def instruction_token_weights(input_ids: torch.Tensor, tokenizer) -> torch.Tensor:
    """Return [B, L] weights that average over each instruction's own tokens.

    Start, end and padding tokens get weight 0. CLIP pads with its end token, so the end of the
    instruction is the first end token after the start token.
    """
    special = {tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}
    weights = torch.zeros(input_ids.shape, dtype=torch.float32)
    for row, ids in enumerate(input_ids.tolist()):
        for position, token in enumerate(ids):
            if position == 0 and token == tokenizer.bos_token_id:
                continue
            if token in special:
                break
            weights[row, position] = 1.0
        total = weights[row].sum()
        if total == 0:
            raise InvalidInputError("the instruction has no tokens: pass a non-empty instruction")
        weights[row] /= total
    return weights


def attention_overlay(image: Image.Image, attention_map: torch.Tensor | np.ndarray, alpha: float = 0.5) -> Image.Image:
    """Return `image` blended with a heat map of `attention_map` [h, w], upsampled to the image's size."""
    from matplotlib import colormaps

    values = torch.as_tensor(np.asarray(attention_map), dtype=torch.float32)[None, None]
    values = F.interpolate(values, size=(image.height, image.width), mode="bilinear", align_corners=False)[0, 0]
    low, high = float(values.min()), float(values.max())
    scaled = (values - low) / (high - low) if high > low else torch.zeros_like(values)
    heat = colormaps["inferno"](scaled.numpy())[..., :3]
    base = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    blended = (1 - alpha) * base + alpha * heat
    return Image.fromarray((blended.clip(0, 1) * 255).round().astype(np.uint8))
