"""Command-line options that every model-loading command shares."""

from __future__ import annotations

import argparse


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Add --model, --lora, --max-side, --device and --dtype to `parser`."""
    parser.add_argument(
        "--model",
        required=True,
        help="preset (tiny, sd15-random), diffusers directory, .ckpt/.safetensors file or hub id",
    )
    parser.add_argument(
        "--lora", help="LoRA to apply: a pytorch_lora_weights.safetensors file or its checkpoint directory"
    )
    parser.add_argument(
        "--max-side",
        type=int,
        help="longer side, in pixels, above which inputs are downscaled (default: the model's, 512; 128 for tiny)",
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default auto)")
    parser.add_argument(
        "--dtype", default="auto", help="fp32, fp16, bf16 or auto (default auto: bf16 on CUDA, fp32 on CPU)"
    )


def load_model(args: argparse.Namespace):
    """Load the model and the optional LoRA named by the options of `add_model_options`."""
    from rl4pix_core.loading import load_components, load_lora

    components = load_components(args.model, device=args.device, dtype=args.dtype)
    if args.lora:
        load_lora(components, args.lora)
    return components
