"""The `rl4pix train` command: PPO fine-tuning of the UNet's LoRA.

Run it under `accelerate launch` for several processes or GPUs; see docs/training.md.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="fine-tune the UNet's LoRA by PPO (InstructRL4Pix)",
        description="Fine-tune the LoRA of an InstructPix2Pix UNet by PPO with the attention-mask reward. "
        "Settings come from the defaults, then --config, then each --set in order.",
    )
    parser.add_argument("--config", metavar="FILE", help="YAML config file; keys as in --print-config")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one key, dotted for sections (train.learning_rate=1e-4); repeatable",
    )
    parser.add_argument(
        "--resume-from",
        metavar="DIR",
        help="checkpoint folder, or a logdir for its latest checkpoint; same as --set resume_from=DIR",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the full configuration (defaults, --config and --set applied) as YAML and exit",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rl4pix_core.ppo.config import dump_config, load_config

    overrides = list(args.overrides)
    if args.resume_from:
        overrides.append(f"resume_from={args.resume_from}")
    config = load_config(args.config, overrides)
    if args.print_config:
        print(dump_config(config), end="")
        return 0
    return _train(config, show_progress=not args.no_progress)


def _train(config, show_progress: bool) -> int:
    from tqdm import tqdm

    from rl4pix_core.ppo.trainer import TrainerCallbacks, train

    bar = tqdm(total=config.num_epochs, unit="epoch", disable=not show_progress, dynamic_ncols=True)

    def on_progress(epoch: int, step: int, metrics: dict) -> None:
        if metrics.get("phase") == "epoch":
            bar.n = epoch
            bar.set_postfix(
                step=step, reward=f"{metrics['reward_mean']:.4f}", kl=f"{metrics['approx_kl']:.2g}"
            )
            bar.refresh()
        elif metrics.get("phase") == "train":
            bar.set_postfix(step=step, loss=f"{metrics['loss']:.4g}", clipfrac=f"{metrics['clipfrac']:.2f}")

    try:
        result = train(config, TrainerCallbacks(on_progress=on_progress))
    finally:
        bar.close()
    checkpoint = result.checkpoint or "none"
    print(f"training {result.status} after {result.epochs_completed} epochs; last checkpoint: {checkpoint}")
    return 0 if result.status == "completed" else 1
