"""The `rl4pix edit` command: edit one image with an instruction."""

from __future__ import annotations

import argparse
import json
import logging
import secrets
from pathlib import Path

from rl4pix_cli.model_options import add_model_options, load_model

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "edit",
        help="edit an image with an instruction",
        description="Edit an image with an instruction, save the result and, with a mask, print the reward.",
    )
    add_model_options(parser)
    parser.add_argument("--image", required=True, type=Path, help="input image file (PNG, JPEG, WebP, TIFF, ...)")
    parser.add_argument("--instruction", required=True, help="the edit, in words, such as 'make the sky pink'")
    parser.add_argument("--output", required=True, type=Path, help="where to write the edited image; the suffix sets the format (PNG when there is none)")
    parser.add_argument("--mask", type=Path, help="edit mask (white marks the region); adds the reward to the output")
    parser.add_argument("--attention-output", type=Path, help="where to write the cross-attention heat map over the input image (PNG)")
    parser.add_argument("--steps", type=int, default=20, help="DDIM sampling steps (default 20)")
    parser.add_argument("--guidance-scale", type=float, default=7.5, help="text guidance scale s_T (default 7.5)")
    parser.add_argument("--image-guidance-scale", type=float, default=1.5, help="image guidance scale s_I (default 1.5)")
    parser.add_argument("--eta", type=float, default=0.0, help="DDIM eta: 0 is deterministic given the seed (default 0)")
    parser.add_argument("--seed", type=int, help="random seed, 0 to 2^32-1 (default: a random one, printed with the result)")
    parser.add_argument("--attention-downsample", type=int, default=4, help="UNet level whose cross-attention is captured, as its factor relative to the latent grid (default 4)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rl4pix_core.attention import attention_overlay
    from rl4pix_core.editing import EditRequest, InstructEditor
    from rl4pix_core.images import load_image, load_mask

    # 1. Check and read the inputs before loading the model.
    image = load_image(args.image)
    mask = load_mask(args.mask, image.size) if args.mask else None
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    output_format = _format_for(args.output)
    attention_format = _format_for(args.attention_output) if args.attention_output else None

    # 2. Load the model and the adapter.
    components = load_model(args)
    editor = InstructEditor(components, attention_downsample=args.attention_downsample, max_side=args.max_side)

    # 3. Edit.
    request = EditRequest(
        image=image,
        instruction=args.instruction,
        seed=seed,
        steps=args.steps,
        guidance_scale=args.guidance_scale,
        image_guidance_scale=args.image_guidance_scale,
        eta=args.eta,
        mask=mask,
    )
    logger.info("editing %s with seed %d, %d steps", args.image, seed, args.steps)
    result = editor.edit([request])[0]

    # 4. Write the outputs.
    _save(result.image, args.output, output_format)
    summary = {
        "output": str(args.output),
        "seed": seed,
        "width": result.image.width,
        "height": result.image.height,
        "model": args.model,
        "lora": args.lora,
        "steps": args.steps,
        "timings": result.timings,
    }
    if args.attention_output:
        _save(attention_overlay(image, result.attention_map), args.attention_output, attention_format)
        summary["attention_output"] = str(args.attention_output)
    if result.reward is not None:
        summary["reward"] = result.reward.as_dict()
    _print_summary(summary, as_json=args.json)
    return 0


def _save(image, path: Path, image_format: str) -> None:
    """Write `image` to `path` through a temporary file, so a failed write leaves no partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    try:
        image.save(temporary, format=image_format)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def _format_for(path: Path) -> str:
    """Return the PIL format name for `path`'s suffix; PNG when it has none."""
    from PIL import Image

    extension = path.suffix.lower()
    if not extension:
        return "PNG"
    registered = Image.registered_extensions()
    if extension not in registered:
        from rl4pix_core.errors import InvalidInputError

        raise InvalidInputError(f"output suffix {path.suffix!r} is not an image format PIL can write: use .png or .jpg")
    return registered[extension]


def _print_summary(summary: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    print(f"wrote {summary['output']} ({summary['width']}x{summary['height']}, seed {summary['seed']})")
    if "attention_output" in summary:
        print(f"wrote {summary['attention_output']}")
    if "reward" in summary:
        reward = summary["reward"]
        print(
            f"reward {reward['total']:.4f} = attention_similarity {reward['attention_similarity']:.4f}, "
            f"clip_loss {reward['clip_loss']:.4f}"
        )
