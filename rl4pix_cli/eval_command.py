"""The `rl4pix eval` command: generate edits for a MagicBrush-format set and score them."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from rl4pix_cli.model_options import add_model_options, load_model

logger = logging.getLogger(__name__)

METRIC_COLUMNS = ("l1", "l2", "clip_t", "ssim", "psnr")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="edit a MagicBrush-format data set and report L1, L2, CLIP-T, SSIM and PSNR",
        description="Edit every turn of a MagicBrush-format data set and score the outputs against the ground truth.",
    )
    add_model_options(parser)
    parser.add_argument("--data", required=True, type=Path, help="MagicBrush folder (with edit_sessions.json) or parquet file(s)")
    parser.add_argument("--setting", default="single-turn", choices=("single-turn", "multi-turn"), help="single-turn: each turn starts from the ground truth before it; multi-turn: from the model's previous output (default single-turn)")
    parser.add_argument("--limit", type=int, help="evaluate at most this many turns")
    parser.add_argument("--output", type=Path, help="write the metrics as JSON to this file")
    parser.add_argument("--images-dir", type=Path, help="also save the edited images here, as <id>/<id>-output<k>.png (the MagicBrush layout)")
    parser.add_argument("--steps", type=int, default=20, help="DDIM sampling steps (default 20)")
    parser.add_argument("--guidance-scale", type=float, default=7.5, help="text guidance scale (default 7.5)")
    parser.add_argument("--image-guidance-scale", type=float, default=1.5, help="image guidance scale (default 1.5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first turn; turn i uses seed + i (default 0)")
    parser.add_argument("--batch-size", type=int, default=4, help="edits per UNet batch (default 4)")
    parser.add_argument("--clip-model", default="openai/clip-vit-base-patch32", help="CLIP model for CLIP-T: hub id, local path or 'tiny' (default openai/clip-vit-base-patch32)")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rl4pix_core.data.magicbrush import load_magicbrush
    from rl4pix_core.editing import InstructEditor
    from rl4pix_core.errors import InvalidInputError
    from rl4pix_core.evaluation import EvalSettings, evaluate
    from rl4pix_core.metrics import ClipScorer

    # 1. Read the data and check the settings before loading any model.
    if args.limit is not None and args.limit < 1:
        raise InvalidInputError(f"--limit {args.limit} is invalid: use a positive number of turns")
    if args.batch_size < 1:
        raise InvalidInputError(f"--batch-size {args.batch_size} is invalid: use 1 or more")
    sessions = load_magicbrush(args.data)
    settings = EvalSettings(
        setting=args.setting,
        limit=args.limit,
        steps=args.steps,
        guidance_scale=args.guidance_scale,
        image_guidance_scale=args.image_guidance_scale,
        seed=args.seed,
        batch_size=args.batch_size,
    )

    # 2. Load the models.
    components = load_model(args)
    editor = InstructEditor(components, max_side=args.max_side)
    clip_scorer = ClipScorer(args.clip_model, device=components.device)

    # 3. Edit and score.
    with tqdm(desc="editing", unit="turn") as bar:

        def on_progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        result = evaluate(editor, sessions, settings, clip_scorer, args.images_dir, on_progress)

    # 4. Report.
    report = result.as_dict()
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        temporary = args.output.with_name(f".{args.output.name}.partial")
        temporary.write_text(json.dumps(report, indent=2), encoding="utf-8")
        temporary.replace(args.output)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_table(report))
    return 0


def format_table(report: dict) -> str:
    """Format the five means as a one-row markdown table."""
    header = "| turns | " + " | ".join(name.upper().replace("_", "-") for name in METRIC_COLUMNS) + " |"
    rule = "|" + "---|" * (len(METRIC_COLUMNS) + 1)
    cells = [_cell(report[name]) for name in METRIC_COLUMNS]
    return "\n".join([header, rule, f"| {report['count']} | " + " | ".join(cells) + " |"])


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
