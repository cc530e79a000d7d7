"""The `rl4pix metrics` command: MagicBrush metrics between two folders of images."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
MAX_LISTED_STEMS = 20
TABLE_METRICS = ("l1", "l2", "ssim", "psnr", "clip_t")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "metrics",
        help="compute L1, L2, SSIM, PSNR and CLIP-T between generated and reference images",
        description=(
            "Pair the images of two folders by file name without extension and compute the MagicBrush "
            "metrics; the generated image is resized to its reference's size (bicubic)."
        ),
    )
    parser.add_argument("--generated", required=True, type=Path, help="folder of edited images, searched with its subfolders")
    parser.add_argument("--reference", required=True, type=Path, help="folder of ground-truth images, searched with its subfolders; images with no generated partner are skipped")
    parser.add_argument(
        "--captions",
        type=Path,
        help=(
            "JSON file of captions for CLIP-T: {stem: caption}, or MagicBrush local_captions.json "
            "({img_id: {file name: caption}}); without it CLIP-T is not computed"
        ),
    )
    parser.add_argument(
        "--clip-model",
        default="openai/clip-vit-base-patch32",
        help="CLIP model for CLIP-T: hub id, local directory, or 'tiny' (random weights, for tests)",
    )
    parser.add_argument(
        "--device", default=None, help="torch device for CLIP (default: cuda if available, else cpu)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    parser.set_defaults(handler=run_metrics)


def _images_by_stem(folder: Path) -> dict[str, Path]:
    from rl4pix_core.errors import InvalidInputError

    if not folder.is_dir():
        raise InvalidInputError(f"image folder not found: {folder}; check the path")
    by_stem: dict[str, Path] = {}
    # Subfolders count too, so the MagicBrush layout (images/<id>/<id>-output1.png) works as it is.
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if path.stem in by_stem:
            raise InvalidInputError(
                f"{folder} has two images with the stem {path.stem!r} ({by_stem[path.stem]}, {path}); keep one"
            )
        by_stem[path.stem] = path
    if not by_stem:
        raise InvalidInputError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return by_stem


def _list_stems(stems: list[str]) -> str:
    listed = ", ".join(stems[:MAX_LISTED_STEMS])
    return listed + (f" and {len(stems) - MAX_LISTED_STEMS} more" if len(stems) > MAX_LISTED_STEMS else "")


def match_stems(generated: dict[str, Path], reference: dict[str, Path]) -> list[str]:
    """Return the generated stems, raising InvalidInputError listing those without a reference.

    The reference folder may contain more images, such as the inputs and masks of a MagicBrush
    folder; those are skipped and counted in the log.
    """
    from rl4pix_core.errors import InvalidInputError

    only_generated = sorted(set(generated) - set(reference))
    if only_generated:
        raise InvalidInputError(
            "images are paired by file name without extension, and some generated images have no reference "
            f"image of the same name: {_list_stems(only_generated)}"
        )
    unused = len(set(reference) - set(generated))
    if unused:
        logger.info("skipping %d reference images that have no generated image of the same name", unused)
    return sorted(generated)


def load_captions(path: Path) -> dict[str, str]:
    """Read {stem: caption} or MagicBrush's {img_id: {file name: caption}} into {stem: caption}."""
    from rl4pix_core.errors import InvalidInputError

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise InvalidInputError(f"captions file not found: {path}") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidInputError(f"captions file {path} is not valid JSON ({error})") from error
    if not isinstance(raw, dict):
        raise InvalidInputError(f"captions file {path} must hold a JSON object")

    captions: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            for file_name, caption in value.items():
                captions[Path(file_name).stem] = str(caption)
        elif isinstance(value, str):
            captions[Path(key).stem] = value
        else:
            raise InvalidInputError(
                f"captions file {path}: the value for {key!r} must be a caption or an object of captions"
            )
    return captions


def _format_table(result: dict[str, Any]) -> str:
    lines = [f"pairs    {result['count']}"]
    for name in TABLE_METRICS:
        value = result[name]
        lines.append(f"{name:<8} {'n/a (no captions)' if value is None else f'{value:.6f}'}")
    lines.append("settings:")
    lines.extend(f"  {key}: {value}" for key, value in result["settings"].items())
    return "\n".join(lines)


def run_metrics(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rl4pix_core.images import load_image
    from rl4pix_core.metrics import ClipScorer, score_pairs

    generated = _images_by_stem(args.generated)
    reference = _images_by_stem(args.reference)
    stems = match_stems(generated, reference)

    captions = None
    clip_scorer = None
    if args.captions is not None:
        caption_by_stem = load_captions(args.captions)
        captions = [caption_by_stem.get(stem) for stem in stems]
        missing = [stem for stem, caption in zip(stems, captions) if caption is None]
        if missing:
            logger.warning(
                "no caption for %d of %d images (%s); CLIP-T skips them",
                len(missing),
                len(stems),
                _list_stems(missing),
            )
        if len(missing) < len(stems):
            clip_scorer = ClipScorer(args.clip_model, device=args.device)

    logger.info("scoring %d image pairs from %s against %s", len(stems), args.generated, args.reference)
    progress = tqdm(stems, desc="scoring", unit="pair")
    pairs = ((load_image(generated[stem]), load_image(reference[stem])) for stem in progress)
    result = score_pairs(pairs, captions, clip_scorer, names=stems).as_dict()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(_format_table(result))
    return 0
