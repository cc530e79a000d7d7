"""Built-in model presets with seeded random weights, for tests, demos and benchmarks.

`tiny` is a complete InstructPix2Pix pipeline small enough to run a 64 px edit on a CPU in well
under a second. `sd15-random` has the real InstructPix2Pix architecture and sizes (the Stable
Diffusion 1.5 UNet with 8 input channels, its VAE and the CLIP ViT-L/14 text encoder), so its
speed and memory match the released checkpoints. Neither preset can produce a meaningful edit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from rl4pix_core.tokenizer import offline_clip_tokenizer, vocab_size

logger = logging.getLogger(__name__)

PRESET_SEED = 0

# The noise schedule of Stable Diffusion 1.5, which InstructPix2Pix keeps.
SD15_SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
}


@dataclass(frozen=True)
class PresetSpec:
    unet: dict
    vae: dict
    text_encoder: dict
    default_max_side: int
    description: str


TINY = PresetSpec(
    unet={
        "sample_size": 16,
        "in_channels": 8,
        "out_channels": 4,
        "block_out_channels": (32, 64, 64),
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        "layers_per_block": 1,
        "cross_attention_dim": 32,
        "attention_head_dim": (2, 4, 4),
        "norm_num_groups": 16,
    },
    vae={
        "in_channels": 3,
        "out_channels": 3,
        "block_out_channels": (16, 32, 32, 32),
        "down_block_types": ("DownEncoderBlock2D",) * 4,
        "up_block_types": ("UpDecoderBlock2D",) * 4,
        "latent_channels": 4,
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "sample_size": 128,
        "scaling_factor": 0.18215,
    },
    text_encoder={
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "projection_dim": 32,
    },
    default_max_side=128,
    description="small random InstructPix2Pix pipeline (VAE factor 8, cross-attention at UNet factors 2 and 4)",
)

SD15_RANDOM = PresetSpec(
    unet={
        "sample_size": 64,
        "in_channels": 8,
        "out_channels": 4,
        "block_out_channels": (320, 640, 1280, 1280),
        "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        "layers_per_block": 2,
        "cross_attention_dim": 768,
        "attention_head_dim": 8,
    },
    vae={
        "in_channels": 3,
        "out_channels": 3,
        "block_out_channels": (128, 256, 512, 512),
        "down_block_types": ("DownEncoderBlock2D",) * 4,
        "up_block_types": ("UpDecoderBlock2D",) * 4,
        "latent_channels": 4,
        "layers_per_block": 2,
        "sample_size": 512,
        "scaling_factor": 0.18215,
    },
    text_encoder={
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "projection_dim": 768,
        "hidden_act": "quick_gelu",
    },
    default_max_side=512,
    description="the InstructPix2Pix (Stable Diffusion 1.5) architecture with random weights",
)

PRESETS: dict[str, PresetSpec] = {"tiny": TINY, "sd15-random": SD15_RANDOM}


def _seeded(build: Callable[[], torch.nn.Module], seed: int) -> torch.nn.Module:
    """Build a module under a fixed seed without touching the caller's global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def build_text_encoder(spec: dict) -> CLIPTextModel:
    tokenizer = offline_clip_tokenizer()
    config = CLIPTextConfig(
        vocab_size=vocab_size() if spec["hidden_size"] < 768 else 49408,
        max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **spec,
    )
    return CLIPTextModel(config)


def build_preset_modules(name: str) -> dict:
    """Build the unet, vae, text_encoder, tokenizer and scheduler of preset `name` on the CPU in fp32."""
    spec = PRESETS[name]
    logger.info("building preset %r: %s", name, spec.description)
    unet = _seeded(lambda: UNet2DConditionModel(**spec.unet), PRESET_SEED)
    vae = _seeded(lambda: AutoencoderKL(**spec.vae), PRESET_SEED + 1)
    text_encoder = _seeded(lambda: build_text_encoder(spec.text_encoder), PRESET_SEED + 2)
    return {
        "unet": unet,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": offline_clip_tokenizer(),
        "scheduler": DDIMScheduler(**SD15_SCHEDULER_CONFIG),
    }
