"""Cross-attention capture: exact values on a small layer, branch and token selection, LoRA."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from PIL import Image

from rl4pix_core.attention import (
    AttentionStore,
    CapturingAttnProcessor,
    attention_overlay,
    instruction_token_weights,
    level_grids,
)
from rl4pix_core.editing import EditRequest, InstructEditor
from rl4pix_core.errors import InvalidInputError
from rl4pix_core.loading import load_components
from rl4pix_core.tokenizer import offline_clip_tokenizer

BATCH = 2
HEADS = 2
HEAD_DIM = 4
TOKENS = 5
GRID = (2, 3)


def make_layer(cross: bool) -> Attention:
    torch.manual_seed(0)
    return Attention(
        query_dim=8,
        cross_attention_dim=6 if cross else None,
        heads=HEADS,
        dim_head=HEAD_DIM,
        bias=False,
    ).eval()


def layer_inputs(cross: bool):
    generator = torch.Generator().manual_seed(1)
    hidden = torch.randn(3 * BATCH, GRID[0] * GRID[1], 8, generator=generator)
    context = torch.randn(3 * BATCH, TOKENS, 6, generator=generator) if cross else None
    return hidden, context


def token_weights() -> torch.Tensor:
    # Sample 0 attends to tokens 1..3, sample 1 to token 1 only.
    weights = torch.zeros(BATCH, TOKENS)
    weights[0, 1:4] = 1 / 3
    weights[1, 1] = 1.0
    return weights


def hand_computed_map(layer: Attention, hidden: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    query = layer.to_q(hidden[:BATCH]).view(BATCH, -1, HEADS, HEAD_DIM).transpose(1, 2)
    key = layer.to_k(context[:BATCH]).view(BATCH, -1, HEADS, HEAD_DIM).transpose(1, 2)
    scores = query @ key.transpose(-1, -2) / math.sqrt(HEAD_DIM)
    probs = scores.softmax(dim=-1).mean(dim=1)  # [B, Nq, L]
    per_pixel = (probs * token_weights()[:, None, :]).sum(dim=-1)
    return per_pixel.view(BATCH, *GRID)


def run_captured(layer: Attention, hidden: torch.Tensor, context: torch.Tensor | None, calls: int = 1):
    store = AttentionStore(downsample=1)
    store.start(GRID, token_weights())
    layer.set_processor(CapturingAttnProcessor(store))
    with torch.no_grad():
        for _ in range(calls):
            output = layer(hidden, encoder_hidden_states=context)
    return store, output


def test_capture_matches_hand_softmax():
    layer = make_layer(cross=True)
    hidden, context = layer_inputs(cross=True)
    store, _ = run_captured(layer, hidden, context)
    expected = hand_computed_map(layer, hidden, context)
    assert torch.allclose(store.result(), expected, atol=1e-6)


def test_captured_layer_output_matches_fused():
    layer = make_layer(cross=True)
    hidden, context = layer_inputs(cross=True)
    _, captured = run_captured(layer, hidden, context)
    layer.set_processor(AttnProcessor2_0())
    with torch.no_grad():
        fused = layer(hidden, encoder_hidden_states=context)
    assert torch.allclose(captured, fused, atol=1e-5)


def test_self_attention_not_captured():
    layer = make_layer(cross=False)
    hidden, _ = layer_inputs(cross=False)
    store, captured = run_captured(layer, hidden, None)
    layer.set_processor(AttnProcessor2_0())
    with torch.no_grad():
        fused = layer(hidden)
    assert store.count == 0
    assert torch.allclose(captured, fused, atol=1e-5)


def test_only_text_branch_recorded():
    layer = make_layer(cross=True)
    hidden, context = layer_inputs(cross=True)
    first, _ = run_captured(layer, hidden, context)
    altered = context.clone()
    altered[BATCH:] = torch.randn_like(altered[BATCH:])
    second, _ = run_captured(layer, hidden, altered)
    assert torch.equal(first.result(), second.result())


def test_map_is_mean_over_calls_with_constant_memory():
    layer = make_layer(cross=True)
    hidden, context = layer_inputs(cross=True)
    store, _ = run_captured(layer, hidden, context, calls=7)
    assert store.count == 7
    assert store.map_sum.shape == (BATCH, GRID[0] * GRID[1])
    assert torch.allclose(store.result(), hand_computed_map(layer, hidden, context), atol=1e-6)


def test_other_resolution_not_captured():
    layer = make_layer(cross=True)
    hidden, context = layer_inputs(cross=True)
    store = AttentionStore(downsample=2)
    store.start((4, 4), token_weights())  # the factor-2 grid is 2x2 = 4 positions, the layer has 6
    layer.set_processor(CapturingAttnProcessor(store))
    with torch.no_grad():
        layer(hidden, encoder_hidden_states=context)
    assert store.count == 0


def test_level_grids_round_odd_sides_up():
    grids = level_grids((37, 56))
    assert grids[1] == (37, 56)
    assert grids[2] == (19, 28)
    assert grids[4] == (10, 14)


def test_unknown_level_rejected():
    store = AttentionStore(downsample=3)
    with pytest.raises(InvalidInputError, match="attention_downsample=3"):
        store.start((8, 8), token_weights())


def test_token_weights_skip_special_tokens():
    tokenizer = offline_clip_tokenizer()
    ids = tokenizer(["ab", "xyz"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    weights = instruction_token_weights(ids, tokenizer)
    assert weights[0, 0] == 0
    assert torch.allclose(weights[0, 1:3], torch.full((2,), 0.5))
    assert weights[0, 3:].abs().sum() == 0
    assert torch.allclose(weights.sum(dim=1), torch.ones(2))


def test_token_weights_reject_empty_instruction():
    tokenizer = offline_clip_tokenizer()
    ids = tokenizer([""], padding="max_length", max_length=77, return_tensors="pt").input_ids
    with pytest.raises(InvalidInputError, match="no tokens"):
        instruction_token_weights(ids, tokenizer)


@pytest.fixture(scope="module")
def gradient_image() -> Image.Image:
    x = torch.linspace(0, 255, 96).to(torch.uint8)
    pixels = torch.stack([x.expand(64, 96), x.flip(0).expand(64, 96), torch.full((64, 96), 90, dtype=torch.uint8)], -1)
    return Image.fromarray(pixels.numpy())


def test_editor_map_at_configured_level(gradient_image):
    editor = InstructEditor(load_components("tiny"), attention_downsample=4)
    result = editor.edit([EditRequest(gradient_image, "make it red", seed=0, steps=3)])[0]
    # 96x64 px -> latent 12x8 (VAE factor 8) -> factor-4 grid 3x2
    assert tuple(result.attention_map.shape) == (2, 3)
    assert bool(torch.isfinite(result.attention_map).all())


def test_capture_works_with_lora(gradient_image):
    from peft import LoraConfig

    components = load_components("tiny")
    editor = InstructEditor(components, attention_downsample=2)
    request = EditRequest(gradient_image, "make it red", seed=0, steps=3)
    before = editor.edit([request])[0].attention_map

    components.unet.add_adapter(
        LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k"], init_lora_weights="gaussian")
    )
    with torch.no_grad():
        for name, parameter in components.unet.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
    after = editor.edit([request])[0].attention_map
    processors = {type(processor).__name__ for processor in components.unet.attn_processors.values()}
    assert processors == {"CapturingAttnProcessor"}
    assert not torch.allclose(before, after)


def test_overlay_has_image_size(gradient_image):
    overlay = attention_overlay(gradient_image, torch.rand(2, 3))
    assert overlay.size == gradient_image.size
    assert overlay.mode == "RGB"


def test_overlay_of_flat_map_is_finite(gradient_image):
    overlay = attention_overlay(gradient_image, torch.zeros(2, 3))
    assert overlay.size == gradient_image.size
